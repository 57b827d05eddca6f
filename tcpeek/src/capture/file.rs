//! Capture files (`-r`): classic pcap and pcapng, read in pure Rust, each
//! frame decoded with the link type of the interface it was captured on.
//!
//! libpcap refuses pcapng files whose interfaces have different link types
//! (`dumpcap -i eth0 -i wg0` writes Ethernet and raw IP in one file), so
//! files are read with the `pcap-parser` crate instead: a streaming reader
//! over one 1 MiB buffer that hands out each block as a slice of that
//! buffer, so reading costs no copy and no allocation per frame (an
//! Enhanced Packet Block carrying options is the exception: the crate
//! collects them in a `Vec`).
//!
//! Formats: classic pcap (pcap-savefile(5), draft-ietf-opsawg-pcap) with
//! microsecond (magic `a1b2c3d4`) or nanosecond (`a1b23c4d`) times in
//! either byte order; pcapng (draft-ietf-opsawg-pcapng) with any number of
//! sections, each with its own byte order and interfaces, and packets in
//! Enhanced, Simple and obsolete Packet Blocks.
//!
//! pcap-parser 0.17 leaves some of pcapng to us (checked in its source):
//! its `build_ts_resolution` refuses every power-of-2 `if_tsresol` (it
//! compares the byte, flag bit included, with 63), it reads `if_tsoffset`
//! as little-endian in big-endian sections, its `build_ts` truncates
//! seconds to 32 bits and can overflow, and it returns the obsolete Packet
//! Block (type 2) as an unknown block. Interfaces' resolutions and offsets
//! and every timestamp are therefore computed here, saturating.
//!
//! Frames that do not decode are counted as `malformed`, as are frames on
//! an interface tcpeek cannot decode (one warning per such interface) and
//! frames naming an interface that was never described. Damage to the file
//! itself (a record cut short, an impossible length) ends the read with an
//! error naming the file, after the frames before it.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    Block, EnhancedPacketBlock, InterfaceDescriptionBlock, LegacyPcapBlock, LegacyPcapReader,
    PcapBlockOwned, PcapError, PcapNGReader, SimplePacketBlock, UnknownBlock,
};
use tcpeek_common::Event;

use super::decode::{ChecksumMode, Decoder, LinkType};
use super::CaptureStats;

/// The reader's buffer. Every classic record fits (at most
/// [`MAX_SNAPLEN`] bytes), and large reads keep system calls rare.
const BUFFER_BYTES: usize = 1 << 20;

/// The largest snapshot length libpcap accepts (`MAXIMUM_SNAPLEN`,
/// pcap-int.h); a header claiming 0 or more means "unlimited", which
/// libpcap also turns into this.
const MAX_SNAPLEN: u32 = 262_144;

/// The largest pcapng block read, as libpcap's sf-pcapng.c
/// (`INITIAL_MAX_BLOCKSIZE`, 16 MiB); the buffer grows up to it.
const MAX_BLOCK_BYTES: usize = 16 << 20;

/// Link type field of a classic header: the low 26 bits are the link type,
/// the bits above it FCS information (libpcap's `LT_LINKTYPE`, pcap-int.h).
const LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// Classic pcap magic numbers as read little-endian (pcap-savefile(5)):
/// microseconds, nanoseconds, Kuznetsov's modified format, and the first
/// two byte-swapped.
const PCAP_MAGICS: [u32; 5] = [
    0xa1b2_c3d4,
    0xa1b2_3c4d,
    0xa1b2_cd34,
    0xd4c3_b2a1,
    0x4d3c_b2a1,
];
/// Section Header Block type (draft-ietf-opsawg-pcapng section 4.1); the
/// same bytes in either byte order.
const SHB_TYPE: u32 = 0x0a0d_0d0a;
/// Obsolete Packet Block (draft-ietf-opsawg-pcapng appendix A).
const OPB_TYPE: u32 = 2;
/// Interface Description Block options (draft-ietf-opsawg-pcapng section
/// 4.2): timestamp resolution and offset.
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
/// Microseconds, when an interface has no `if_tsresol`.
const DEFAULT_TSRESOL: u8 = 6;

const NS_PER_S: u64 = 1_000_000_000;

/// One frame read from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's time, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// The event, if the frame is relevant and decoded.
    pub event: Option<Event>,
}

/// Why a capture file could not be opened or read. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot open {}: {detail}", path.display())]
    OpenFile { path: PathBuf, detail: String },
    #[error("cannot open {}: not a pcap or pcapng capture file ({detail})", path.display())]
    NotACaptureFile { path: PathBuf, detail: String },
    #[error("{}: capture file is truncated: {detail}", path.display())]
    TruncatedFile { path: PathBuf, detail: String },
    #[error("cannot read {}: {detail}", path.display())]
    ReadFile { path: PathBuf, detail: String },
    #[error("{}: unsupported link type {dlt} ({name}); tcpeek decodes Ethernet, Linux cooked v1/v2 and raw IP", path.display())]
    UnsupportedLinkType {
        path: PathBuf,
        dlt: u32,
        name: String,
    },
    #[error("{}: no interface can be decoded ({interfaces}); tcpeek decodes Ethernet, Linux cooked v1/v2 and raw IP", path.display())]
    NoDecodableInterface { path: PathBuf, interfaces: String },
}

/// A capture file being read, frame by frame.
pub struct FileCapture {
    reader: Box<dyn PcapReaderIterator + Send>,
    /// The last I/O error of the reader's source: pcap-parser reports only
    /// that one happened.
    io_error: Arc<Mutex<Option<String>>>,
    state: State,
    banner: String,
    /// The end or an error was reported; later reads return `None`.
    done: bool,
}

/// Everything a block updates, apart from the reader that holds it.
struct State {
    path: PathBuf,
    checksum: ChecksumMode,
    layout: Layout,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    frames: u64,
    malformed: u64,
    truncated: u64,
    /// Time of the last frame (for blocks without a time of their own).
    last_ts_ns: u64,
}

enum Layout {
    Classic {
        decoder: Decoder,
        nanos: bool,
        big_endian: bool,
        /// Bytes before each frame: 16, or 24 in the modified format.
        record_header: usize,
        /// As in the header, for the banner.
        header_snaplen: u32,
        /// What a record may hold (see [`MAX_SNAPLEN`]).
        snaplen: u32,
        dlt: u32,
    },
    Ng {
        /// Sections seen so far, counting from 1.
        sections: u32,
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// A pcapng interface (Interface Description Block) of the current section.
struct Interface {
    dlt: u32,
    snaplen: u32,
    /// `None` when its frames cannot be decoded (see `why_not`).
    decoder: Option<Decoder>,
    why_not: Option<String>,
    /// Timestamp units per second.
    units_per_s: u64,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
    /// The warning about undecodable frames was printed.
    warned: bool,
}

impl Interface {
    fn new(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool, checksum: ChecksumMode) -> Self {
        // The link type is 16 bits in an IDB; pcap-parser widens it.
        let dlt = idb.linktype.0 as u32 & 0xffff;
        let mut tsresol = DEFAULT_TSRESOL;
        let mut offset_s = 0;
        for opt in &idb.options {
            let value = opt.value();
            match opt.code.0 {
                IF_TSRESOL => tsresol = value.first().copied().unwrap_or(DEFAULT_TSRESOL),
                IF_TSOFFSET => {
                    if let Some(&bytes) = value.first_chunk::<8>() {
                        offset_s = if big_endian {
                            i64::from_be_bytes(bytes)
                        } else {
                            i64::from_le_bytes(bytes)
                        };
                    }
                }
                _ => {}
            }
        }
        let units_per_s = units_per_second(tsresol);
        let link = LinkType::from_dlt(dlt as i32);
        let why_not = match (link, units_per_s) {
            (None, _) => Some(format!("link type {dlt} ({})", dlt_name(dlt))),
            (Some(_), None) => Some(format!(
                "if_tsresol 0x{tsresol:02x} is not a resolution tcpeek can use"
            )),
            _ => None,
        };
        Interface {
            dlt,
            snaplen: idb.snaplen,
            decoder: match why_not {
                None => link.map(|l| Decoder::new(l, checksum)),
                Some(_) => None,
            },
            why_not,
            units_per_s: units_per_s.unwrap_or(1),
            offset_s,
            warned: false,
        }
    }

    /// A timestamp in this interface's units, as nanoseconds since the
    /// epoch. Never panics: before the epoch is 0, past 2554 saturates.
    fn ts_ns(&self, high: u32, low: u32) -> u64 {
        let units = (u64::from(high) << 32) | u64::from(low);
        let ns = match self.units_per_s {
            1_000_000 => i128::from(units) * 1_000,
            NS_PER_S => i128::from(units),
            r => i128::from(units) * i128::from(NS_PER_S) / i128::from(r),
        };
        let ns = ns + i128::from(self.offset_s) * i128::from(NS_PER_S);
        u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
    }
}

/// `if_tsresol` as units per second (draft-ietf-opsawg-pcapng section 4.2:
/// the high bit chooses a power of 2, else a power of 10, of the rest);
/// `None` when that does not fit in 64 bits.
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp)
    }
}

/// What one block amounted to.
enum Step {
    Frame(Frame),
    Skip,
    Fail(FileError),
}

/// Why the reader could not return a block, without its borrow.
enum Failure {
    Eof,
    Incomplete,
    BufferTooSmall,
    UnexpectedEof,
    Read,
    Parse(String),
}

impl From<PcapError<&[u8]>> for Failure {
    fn from(e: PcapError<&[u8]>) -> Failure {
        match e {
            PcapError::Eof => Failure::Eof,
            PcapError::Incomplete(_) => Failure::Incomplete,
            PcapError::BufferTooSmall => Failure::BufferTooSmall,
            PcapError::UnexpectedEof => Failure::UnexpectedEof,
            PcapError::ReadError => Failure::Read,
            PcapError::HeaderNotRecognized => Failure::Parse("unknown header".to_owned()),
            PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                Failure::Parse(format!("{kind:?}"))
            }
        }
    }
}

/// The file, remembering the last I/O error for messages.
struct Source {
    file: File,
    error: Arc<Mutex<Option<String>>>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e.to_string());
                    }
                    return Err(e);
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

impl FileCapture {
    /// Opens a pcap or pcapng file. A pcapng file is read up to its first
    /// packet, so that an error can say no interface there is decodable.
    pub fn open(path: &Path, checksum: ChecksumMode) -> Result<FileCapture, FileError> {
        let open_err = |detail: String| FileError::OpenFile {
            path: path.to_owned(),
            detail,
        };
        let mut file = File::open(path).map_err(|e| open_err(e.to_string()))?;
        let meta = file.metadata().map_err(|e| open_err(e.to_string()))?;
        if meta.is_dir() {
            return Err(open_err("is a directory".to_owned()));
        }
        if meta.len() == 0 {
            return Err(open_err("the file is empty".to_owned()));
        }
        // Enough for a classic file header (24 bytes) and the smallest
        // pcapng Section Header Block (28).
        let mut head = Vec::with_capacity(28);
        (&mut file)
            .take(28)
            .read_to_end(&mut head)
            .and_then(|_| file.rewind())
            .map_err(|e| open_err(e.to_string()))?;
        let magic = head
            .first_chunk::<4>()
            .map(|b| u32::from_le_bytes(*b))
            .unwrap_or(0);
        let io_error = Arc::new(Mutex::new(None));
        let source = Source {
            file,
            error: io_error.clone(),
        };
        let truncated_header = |what: &str, need: usize| {
            open_err(format!(
                "the {what} is truncated: {} of {need} bytes",
                head.len()
            ))
        };
        let (reader, layout): (Box<dyn PcapReaderIterator + Send>, Layout) = if PCAP_MAGICS
            .contains(&magic)
        {
            if head.len() < 24 {
                return Err(truncated_header("pcap file header", 24));
            }
            let mut reader = LegacyPcapReader::new(BUFFER_BYTES, source)
                .map_err(|e| open_err(format!("the pcap file header: {e}")))?;
            let header = match reader.next() {
                Ok((_, PcapBlockOwned::LegacyHeader(h))) => h,
                _ => return Err(open_err("the pcap file header is unreadable".to_owned())),
            };
            reader.consume(header.size());
            let dlt = header.network.0 as u32 & LINKTYPE_MASK;
            let Some(link) = LinkType::from_dlt(dlt as i32) else {
                return Err(FileError::UnsupportedLinkType {
                    path: path.to_owned(),
                    dlt,
                    name: dlt_name(dlt),
                });
            };
            let snaplen = match header.snaplen {
                0 => MAX_SNAPLEN,
                n => n.min(MAX_SNAPLEN),
            };
            let layout = Layout::Classic {
                decoder: Decoder::new(link, checksum),
                nanos: header.is_nanosecond_precision(),
                big_endian: header.is_bigendian(),
                record_header: if header.is_modified_format() { 24 } else { 16 },
                header_snaplen: header.snaplen,
                snaplen,
                dlt,
            };
            (Box::new(reader), layout)
        } else if magic == SHB_TYPE {
            // Type, length, byte-order magic, version, section length,
            // length again.
            if head.len() < 28 {
                return Err(truncated_header("pcapng section header", 28));
            }
            let reader = PcapNGReader::new(BUFFER_BYTES, source).map_err(|e| match e {
                PcapError::Incomplete(_) => {
                    open_err("the pcapng section header is truncated".to_owned())
                }
                e => FileError::NotACaptureFile {
                    path: path.to_owned(),
                    detail: format!("bad pcapng section header: {e}"),
                },
            })?;
            let layout = Layout::Ng {
                sections: 0,
                big_endian: false,
                interfaces: Vec::new(),
            };
            (Box::new(reader), layout)
        } else if head.len() < 4 {
            return Err(FileError::NotACaptureFile {
                path: path.to_owned(),
                detail: format!("only {} bytes", head.len()),
            });
        } else {
            return Err(FileError::NotACaptureFile {
                path: path.to_owned(),
                detail: format!("it starts with 0x{magic:08x}, not a pcap or pcapng magic number"),
            });
        };
        let mut cap = FileCapture {
            reader,
            io_error,
            state: State {
                path: path.to_owned(),
                checksum,
                layout,
                counts: Counts::default(),
            },
            banner: String::new(),
            done: false,
        };
        if let Layout::Ng { .. } = cap.state.layout {
            cap.pump(true)?;
            if let Layout::Ng { interfaces, .. } = &cap.state.layout {
                if !interfaces.is_empty() && interfaces.iter().all(|i| i.decoder.is_none()) {
                    return Err(match &interfaces[..] {
                        [one] if LinkType::from_dlt(one.dlt as i32).is_none() => {
                            FileError::UnsupportedLinkType {
                                path: path.to_owned(),
                                dlt: one.dlt,
                                name: dlt_name(one.dlt),
                            }
                        }
                        all => FileError::NoDecodableInterface {
                            path: path.to_owned(),
                            interfaces: all
                                .iter()
                                .enumerate()
                                .map(|(i, f)| {
                                    format!("{i}: {}", f.why_not.as_deref().unwrap_or(""))
                                })
                                .collect::<Vec<_>>()
                                .join(", "),
                        },
                    });
                }
            }
        }
        cap.banner = cap.state.banner();
        Ok(cap)
    }

    /// Every frame read, relevant or not (its timestamp is a clock sample);
    /// `None` at the end. An error (the file is damaged) is returned once;
    /// later calls return `None`.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FileError> {
        if self.done {
            return Ok(None);
        }
        let r = self.pump(false);
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    /// Counters: frames read, those that did not decode, those decoded from
    /// a cut TCP header. Nothing is dropped reading a file.
    pub fn stats(&self) -> CaptureStats {
        let c = &self.state.counts;
        CaptureStats {
            recv: c.frames,
            drop: 0,
            ifdrop: 0,
            malformed: c.malformed,
            truncated: c.truncated,
        }
    }

    /// The startup line, worded like tcpdump's: `reading from file x.pcap,
    /// link-type EN10MB (Ethernet), snapshot length 65535`; a pcapng file
    /// with interfaces of different kinds lists each.
    pub fn banner(&self) -> String {
        self.banner.clone()
    }

    /// Reads blocks until a frame, the end or an error. With `scan`, stops
    /// before the first packet block instead (it stays in the buffer).
    fn pump(&mut self, scan: bool) -> Result<Option<Frame>, FileError> {
        loop {
            let (len, step) = match self.reader.next() {
                Ok((len, block)) => {
                    if scan && is_packet(&block, &self.state.layout) {
                        return Ok(None);
                    }
                    (len, self.state.block(block))
                }
                Err(e) => {
                    match Failure::from(e) {
                        Failure::Eof => return Ok(None),
                        Failure::Incomplete => {
                            if self.reader.refill().is_err() {
                                return Err(self.read_error());
                            }
                        }
                        Failure::Read => return Err(self.read_error()),
                        Failure::BufferTooSmall => self.oversized()?,
                        Failure::UnexpectedEof => return Err(self.damage(true, None)),
                        Failure::Parse(kind) => return Err(self.damage(false, Some(kind))),
                    }
                    continue;
                }
            };
            self.reader.consume(len);
            match step {
                Step::Frame(f) => return Ok(Some(f)),
                Step::Skip => {}
                Step::Fail(e) => return Err(e),
            }
        }
    }

    fn read_error(&self) -> FileError {
        let detail = self
            .io_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "read error".to_owned());
        FileError::ReadFile {
            path: self.state.path.clone(),
            detail,
        }
    }

    /// The pending block is larger than the buffer: grow the buffer up to
    /// [`MAX_BLOCK_BYTES`], or report the block.
    fn oversized(&mut self) -> Result<(), FileError> {
        let data = self.reader.data();
        let at = self.reader.consumed();
        match self.state.pending(data) {
            Pending::Record { caplen, .. } => {
                Err(self
                    .state
                    .bad_caplen(caplen)
                    .unwrap_or_else(|| FileError::ReadFile {
                        path: self.state.path.clone(),
                        detail: format!("record at byte {at} holds {caplen} bytes"),
                    }))
            }
            Pending::Block { len, .. } if len <= MAX_BLOCK_BYTES && len > data.len() => {
                self.reader.grow(len + BUFFER_BYTES);
                Ok(())
            }
            Pending::Block { kind, len } => Err(FileError::ReadFile {
                path: self.state.path.clone(),
                detail: format!(
                    "block of type 0x{kind:08x} at byte {at} claims {len} bytes \
                     (at most {MAX_BLOCK_BYTES} are read)"
                ),
            }),
            Pending::Short => Err(FileError::ReadFile {
                path: self.state.path.clone(),
                detail: format!("unreadable record at byte {at}"),
            }),
        }
    }

    /// The error for a record or block the reader could not parse: cut
    /// short by the end of the file (`at_end`), or impossible.
    fn damage(&self, at_end: bool, kind: Option<String>) -> FileError {
        let data = self.reader.data();
        let at = self.reader.consumed();
        let path = self.state.path.clone();
        let truncated = |detail| FileError::TruncatedFile {
            path: path.clone(),
            detail,
        };
        let bad = |detail| FileError::ReadFile {
            path: path.clone(),
            detail,
        };
        match self.state.pending(data) {
            // Worded like libpcap's sf-pcap.c.
            Pending::Record { caplen, header } => match self.state.bad_caplen(caplen) {
                Some(e) => e,
                None if at_end => truncated(format!(
                    "tried to read {caplen} captured bytes, only got {}",
                    data.len() - header
                )),
                None => bad(format!("unreadable record at byte {at}")),
            },
            Pending::Short if at_end => truncated(match &self.state.layout {
                Layout::Classic { record_header, .. } => format!(
                    "tried to read {record_header} header bytes, only got {}",
                    data.len()
                ),
                Layout::Ng { .. } => format!(
                    "a block header at byte {at} is cut short ({} bytes)",
                    data.len()
                ),
            }),
            Pending::Block { kind: t, len } if at_end && len > data.len() => truncated(format!(
                "block of type 0x{t:08x} at byte {at} claims {len} bytes, only got {}",
                data.len()
            )),
            Pending::Block { kind: t, len } => bad(format!(
                "malformed block of type 0x{t:08x} ({len} bytes) at byte {at}{}",
                kind.map(|k| format!(" ({k})")).unwrap_or_default()
            )),
            Pending::Short => bad(format!("unreadable data at byte {at}")),
        }
    }
}

/// What the bytes at the reader's position claim to be.
enum Pending {
    /// A classic record header: captured length, header size.
    Record { caplen: u32, header: usize },
    /// A pcapng block header: type, total length.
    Block { kind: u32, len: usize },
    /// Not even a header.
    Short,
}

/// Whether `block` holds a packet (stops the scan at open).
fn is_packet(block: &PcapBlockOwned<'_>, layout: &Layout) -> bool {
    match block {
        PcapBlockOwned::Legacy(_) => true,
        PcapBlockOwned::LegacyHeader(_) => false,
        PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_)) => true,
        PcapBlockOwned::NG(Block::Unknown(u)) => is_opb(u, layout),
        PcapBlockOwned::NG(_) => false,
    }
}

fn is_opb(u: &UnknownBlock<'_>, layout: &Layout) -> bool {
    // pcap-parser reads the type little-endian whatever the section's order.
    let big_endian = matches!(
        layout,
        Layout::Ng {
            big_endian: true,
            ..
        }
    );
    let kind = if big_endian {
        u.block_type.swap_bytes()
    } else {
        u.block_type
    };
    kind == OPB_TYPE
}

impl State {
    /// Handles one block.
    fn block(&mut self, block: PcapBlockOwned<'_>) -> Step {
        match block {
            PcapBlockOwned::LegacyHeader(_) => Step::Skip,
            PcapBlockOwned::Legacy(b) => self.classic(&b),
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                // A new section describes its interfaces afresh (section 4.1).
                if let Layout::Ng {
                    sections,
                    big_endian,
                    interfaces,
                } = &mut self.layout
                {
                    *sections += 1;
                    *big_endian = shb.big_endian();
                    interfaces.clear();
                }
                Step::Skip
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                if let Layout::Ng {
                    big_endian,
                    interfaces,
                    ..
                } = &mut self.layout
                {
                    interfaces.push(Interface::new(&idb, *big_endian, self.checksum));
                }
                Step::Skip
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => self.enhanced(&epb),
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => self.simple(&spb),
            PcapBlockOwned::NG(Block::Unknown(u)) if is_opb(&u, &self.layout) => self.obsolete(&u),
            PcapBlockOwned::NG(_) => Step::Skip,
        }
    }

    fn classic(&mut self, b: &LegacyPcapBlock<'_>) -> Step {
        let Layout::Classic { decoder, nanos, .. } = &self.layout else {
            return Step::Skip;
        };
        if let Some(e) = self.bad_caplen(b.caplen) {
            return Step::Fail(e);
        }
        let frac = u64::from(b.ts_usec);
        let ts_ns = u64::from(b.ts_sec)
            .saturating_mul(NS_PER_S)
            .saturating_add(if *nanos {
                frac
            } else {
                frac.saturating_mul(1_000)
            });
        Step::Frame(decode(
            &mut self.counts,
            Some(decoder),
            ts_ns,
            b.data,
            b.origlen,
        ))
    }

    fn enhanced(&mut self, b: &EnhancedPacketBlock<'_>) -> Step {
        // pcap-parser has checked that the data holds `caplen` bytes.
        let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
        self.packet(b.if_id, Some((b.ts_high, b.ts_low)), data, b.origlen)
    }

    /// A Simple Packet Block has no interface (it is interface 0), no
    /// captured length (the packet, cut at the snapshot length) and no time:
    /// it takes the previous frame's (section 4.4).
    fn simple(&mut self, b: &SimplePacketBlock<'_>) -> Step {
        let snaplen = match &self.layout {
            Layout::Ng { interfaces, .. } => interfaces.first().map_or(0, |i| i.snaplen),
            Layout::Classic { .. } => 0,
        };
        let mut caplen = b.origlen as usize;
        if snaplen != 0 {
            caplen = caplen.min(snaplen as usize);
        }
        let data = b.data.get(..caplen).unwrap_or(b.data);
        self.packet(0, None, data, b.origlen)
    }

    /// Obsolete Packet Block (appendix A): interface (16 bits), drops count
    /// (16 bits), timestamp high and low, captured and original length,
    /// data.
    fn obsolete(&mut self, b: &UnknownBlock<'_>) -> Step {
        let big_endian = matches!(
            self.layout,
            Layout::Ng {
                big_endian: true,
                ..
            }
        );
        let u16_at = |at: usize| {
            let b = [b.data[at], b.data[at + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |at: usize| {
            let b = [b.data[at], b.data[at + 1], b.data[at + 2], b.data[at + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        if b.data.len() < 20 {
            return Step::Fail(FileError::ReadFile {
                path: self.path.clone(),
                detail: format!("obsolete Packet Block of {} bytes", b.block_len1),
            });
        }
        let caplen = u32_at(12);
        let Some(data) = b.data.get(20..20 + caplen as usize) else {
            return Step::Fail(FileError::ReadFile {
                path: self.path.clone(),
                detail: format!(
                    "obsolete Packet Block of {} bytes claims {caplen} captured bytes",
                    b.block_len1
                ),
            });
        };
        let (high, low, origlen) = (u32_at(4), u32_at(8), u32_at(16));
        self.packet(u32::from(u16_at(0)), Some((high, low)), data, origlen)
    }

    /// A pcapng packet on interface `if_id`, with its time in that
    /// interface's units (`None`: the previous frame's time).
    fn packet(&mut self, if_id: u32, ts: Option<(u32, u32)>, data: &[u8], origlen: u32) -> Step {
        let Layout::Ng {
            sections,
            interfaces,
            ..
        } = &mut self.layout
        else {
            return Step::Skip;
        };
        let last = self.counts.last_ts_ns;
        let Some(iface) = interfaces.get_mut(if_id as usize) else {
            // Never described: neither its link type nor its clock is known.
            self.counts.frames += 1;
            self.counts.malformed += 1;
            return Step::Frame(Frame {
                ts_ns: last,
                event: None,
            });
        };
        let ts_ns = ts.map_or(last, |(h, l)| iface.ts_ns(h, l));
        if let (None, false) = (&iface.decoder, iface.warned) {
            iface.warned = true;
            let section = match *sections {
                0 | 1 => String::new(),
                n => format!(" of section {n}"),
            };
            log::warn!(
                "{}: interface {if_id}{section}: {}: its frames are counted as malformed",
                self.path.display(),
                iface.why_not.as_deref().unwrap_or("not decodable"),
            );
        }
        Step::Frame(decode(
            &mut self.counts,
            iface.decoder.as_ref(),
            ts_ns,
            data,
            origlen,
        ))
    }

    /// The error for a classic record longer than the file's snapshot
    /// length (libpcap's sf-pcap.c refuses those too, rather than allocate
    /// what a damaged header claims).
    fn bad_caplen(&self, caplen: u32) -> Option<FileError> {
        match self.layout {
            Layout::Classic { snaplen, .. } if caplen > snaplen => Some(FileError::ReadFile {
                path: self.path.clone(),
                detail: format!(
                    "invalid packet capture length {caplen}, bigger than snaplen of {snaplen}"
                ),
            }),
            _ => None,
        }
    }

    /// Reads the header of what is pending in the reader's buffer.
    fn pending(&self, data: &[u8]) -> Pending {
        let word = |at: usize, big_endian: bool| -> Option<u32> {
            let b = *data.get(at..at + 4)?.first_chunk::<4>()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        match self.layout {
            Layout::Classic {
                big_endian,
                record_header,
                ..
            } => match word(8, big_endian) {
                Some(caplen) if data.len() >= record_header => Pending::Record {
                    caplen,
                    header: record_header,
                },
                _ => Pending::Short,
            },
            Layout::Ng { big_endian, .. } => {
                // A section header carries its own byte order.
                let kind = word(0, big_endian);
                let big_endian = if kind == Some(SHB_TYPE) {
                    word(8, false) != Some(0x1a2b_3c4d)
                } else {
                    big_endian
                };
                match (kind, word(4, big_endian)) {
                    (Some(kind), Some(len)) => Pending::Block {
                        kind,
                        len: len as usize,
                    },
                    _ => Pending::Short,
                }
            }
        }
    }

    fn banner(&self) -> String {
        let file = self.path.display();
        match &self.layout {
            Layout::Classic {
                dlt,
                header_snaplen,
                ..
            } => format!(
                "reading from file {file}, link-type {}, snapshot length {header_snaplen}",
                dlt_name(*dlt)
            ),
            Layout::Ng { interfaces, .. } => match &interfaces[..] {
                [] => format!("reading from file {file}, no interface described yet"),
                [first, rest @ ..]
                    if rest
                        .iter()
                        .all(|i| i.dlt == first.dlt && i.snaplen == first.snaplen) =>
                {
                    format!(
                        "reading from file {file}, link-type {}, snapshot length {}",
                        dlt_name(first.dlt),
                        first.snaplen
                    )
                }
                all => {
                    let each: Vec<String> = all
                        .iter()
                        .enumerate()
                        .map(|(n, i)| {
                            format!(
                                "{n}: link-type {}, snapshot length {}{}",
                                dlt_name(i.dlt),
                                i.snaplen,
                                if i.decoder.is_none() {
                                    " (not decoded)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect();
                    format!(
                        "reading from file {file}, {} interfaces: {}",
                        all.len(),
                        each.join("; ")
                    )
                }
            },
        }
    }
}

/// Counts and decodes one frame (`decoder` `None`: undecodable interface).
fn decode(
    counts: &mut Counts,
    decoder: Option<&Decoder>,
    ts_ns: u64,
    data: &[u8],
    origlen: u32,
) -> Frame {
    counts.frames += 1;
    counts.last_ts_ns = ts_ns;
    let wire_len = usize::try_from(origlen).unwrap_or(usize::MAX);
    let event = match decoder.map(|d| d.decode_frame(ts_ns, data, wire_len)) {
        Some(Ok(Some(d))) => {
            counts.truncated += u64::from(d.header_cut);
            Some(d.event)
        }
        Some(Ok(None)) => None,
        Some(Err(e)) => {
            counts.malformed += 1;
            log::debug!("malformed frame {}: {e}", counts.frames);
            None
        }
        None => {
            counts.malformed += 1;
            None
        }
    };
    Frame { ts_ns, event }
}

/// libpcap's name and description of a link type (`pcap_datalink_val_to_name`
/// and `_description`; values from <https://www.tcpdump.org/linktypes.html>),
/// for the common ones.
pub fn dlt_name(dlt: u32) -> String {
    let known = match dlt {
        0 => "NULL (BSD loopback)",
        1 => "EN10MB (Ethernet)",
        6 => "IEEE802 (Token Ring)",
        9 => "PPP (PPP)",
        10 => "FDDI (FDDI)",
        12 | 14 | 101 => "RAW (Raw IP)",
        50 => "PPP_SERIAL (PPP over serial)",
        51 => "PPP_ETHER (PPPoE)",
        104 => "C_HDLC (Cisco HDLC)",
        105 => "IEEE802_11 (802.11)",
        108 => "LOOP (OpenBSD loopback)",
        113 => "LINUX_SLL (Linux cooked v1)",
        117 => "PFLOG (OpenBSD pflog file)",
        119 => "PRISM_HEADER (802.11 plus Prism header)",
        127 => "IEEE802_11_RADIO (802.11 plus radiotap header)",
        143 => "DOCSIS (DOCSIS)",
        192 => "PPI (Per-Packet Information)",
        195 => "IEEE802_15_4_WITHFCS (IEEE 802.15.4 with FCS)",
        197 => "ERF (Extensible Record Format)",
        201 => "BLUETOOTH_HCI_H4_WITH_PHDR (Bluetooth HCI UART transport layer plus pseudo-header)",
        215 => "IEEE802_15_4_NOFCS (IEEE 802.15.4 without FCS)",
        220 => "USB_LINUX_MMAPPED (USB with padded Linux header)",
        227 => "CAN_SOCKETCAN (CAN-bus with SocketCAN headers)",
        228 => "IPV4 (Raw IPv4)",
        229 => "IPV6 (Raw IPv6)",
        239 => "NFLOG (Linux netfilter log messages)",
        249 => "USBPCAP (USB packets, beginning with a USBPcap header)",
        252 => "WIRESHARK_UPPER_PDU (Wireshark Upper PDU export)",
        253 => "NETLINK (Linux netlink)",
        276 => "LINUX_SLL2 (Linux cooked v2)",
        147..=162 => return format!("USER{} (private use)", dlt - 147),
        _ => return format!("LINKTYPE {dlt}, unknown to tcpeek"),
    };
    known.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use tcpeek_common::tcp_flags::SYN;

    /// 2026-01-01T00:00:00Z.
    const START_S: u64 = 1_767_225_600;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    /// A scratch file holding `bytes`, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str, bytes: &[u8]) -> Scratch {
            let path =
                std::env::temp_dir().join(format!("tcpeek-file-{}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn drain(cap: &mut FileCapture) -> (Vec<Frame>, Result<(), FileError>) {
        let mut frames = Vec::new();
        loop {
            match cap.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e)),
            }
        }
    }

    fn events(frames: &[Frame]) -> Vec<Event> {
        frames.iter().filter_map(|f| f.event).collect()
    }

    fn read(name: &str, bytes: &[u8]) -> (FileCapture, Vec<Frame>) {
        let file = Scratch::new(name, bytes);
        let mut cap = FileCapture::open(&file.0, ChecksumMode::IpTcp).expect("opens");
        let (frames, end) = drain(&mut cap);
        end.expect("clean end");
        (cap, frames)
    }

    /// An Ethernet (or, with `raw`, raw IPv4) SYN from port `sport`.
    fn syn(sport: u16, raw: bool) -> Vec<u8> {
        let mut v = Vec::new();
        if raw {
            PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
                .tcp(sport, 80, 1000, 64240)
                .syn()
                .write(&mut v, &[])
                .unwrap();
        } else {
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
                .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
                .tcp(sport, 80, 1000, 64240)
                .syn()
                .write(&mut v, &[])
                .unwrap();
        }
        v
    }

    /// A classic pcap file: `big_endian`, nanosecond magic if `nanos`;
    /// records of (seconds, fraction, frame).
    fn classic(big_endian: bool, nanos: bool, dlt: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        out.extend_from_slice(&w16(2));
        out.extend_from_slice(&w16(4));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&w32(65_535));
        out.extend_from_slice(&w32(dlt));
        for (sec, frac, frame) in records {
            out.extend_from_slice(&w32(*sec));
            out.extend_from_slice(&w32(*frac));
            out.extend_from_slice(&w32(frame.len() as u32));
            out.extend_from_slice(&w32(frame.len() as u32));
            out.extend_from_slice(frame);
        }
        out
    }

    /// A pcapng writer (draft-ietf-opsawg-pcapng: every block is type,
    /// total length, body padded to 32 bits, total length).
    struct Ng {
        out: Vec<u8>,
        big_endian: bool,
    }

    impl Ng {
        fn new(big_endian: bool) -> Ng {
            let mut ng = Ng {
                out: Vec::new(),
                big_endian,
            };
            ng.shb();
            ng
        }
        fn w16(&self, v: u16) -> [u8; 2] {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn w32(&self, v: u32) -> [u8; 4] {
            if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn block(&mut self, kind: u32, body: &[u8]) {
            let padded = body.len().div_ceil(4) * 4;
            let total = self.w32((12 + padded) as u32);
            let kind = self.w32(kind);
            self.out.extend_from_slice(&kind);
            self.out.extend_from_slice(&total);
            self.out.extend_from_slice(body);
            self.out.resize(self.out.len() + padded - body.len(), 0);
            self.out.extend_from_slice(&total);
        }
        fn shb(&mut self) {
            let mut b = self.w32(0x1a2b_3c4d).to_vec();
            b.extend_from_slice(&self.w16(1));
            b.extend_from_slice(&self.w16(0));
            b.extend_from_slice(&[0xff; 8]);
            self.block(SHB_TYPE, &b);
        }
        /// An IDB with options (code, value).
        fn idb(&mut self, dlt: u16, options: &[(u16, Vec<u8>)]) {
            let mut b = self.w16(dlt).to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&self.w32(65_535));
            if !options.is_empty() {
                for (code, value) in options {
                    b.extend_from_slice(&self.w16(*code));
                    b.extend_from_slice(&self.w16(value.len() as u16));
                    b.extend_from_slice(value);
                    b.resize(b.len().div_ceil(4) * 4, 0);
                }
                b.extend_from_slice(&[0; 4]); // opt_endofopt
            }
            self.block(1, &b);
        }
        fn epb(&mut self, if_id: u32, ts: u64, frame: &[u8]) {
            let mut b = self.w32(if_id).to_vec();
            b.extend_from_slice(&self.w32((ts >> 32) as u32));
            b.extend_from_slice(&self.w32(ts as u32));
            b.extend_from_slice(&self.w32(frame.len() as u32));
            b.extend_from_slice(&self.w32(frame.len() as u32));
            b.extend_from_slice(frame);
            self.block(6, &b);
        }
        fn spb(&mut self, frame: &[u8]) {
            let mut b = self.w32(frame.len() as u32).to_vec();
            b.extend_from_slice(frame);
            self.block(3, &b);
        }
        fn opb(&mut self, if_id: u16, ts: u64, frame: &[u8]) {
            let mut b = self.w16(if_id).to_vec();
            b.extend_from_slice(&self.w16(0));
            b.extend_from_slice(&self.w32((ts >> 32) as u32));
            b.extend_from_slice(&self.w32(ts as u32));
            b.extend_from_slice(&self.w32(frame.len() as u32));
            b.extend_from_slice(&self.w32(frame.len() as u32));
            b.extend_from_slice(frame);
            self.block(OPB_TYPE, &b);
        }
    }

    #[test]
    fn file_events_carry_packet_time_and_counts() {
        let mut cap = FileCapture::open(&fixture("success.pcap"), ChecksumMode::IpTcp)
            .expect("fixture opens");
        assert_eq!(
            cap.banner(),
            format!(
                "reading from file {}, link-type EN10MB (Ethernet), snapshot length 65535",
                fixture("success.pcap").display()
            )
        );
        let (frames, end) = drain(&mut cap);
        end.expect("clean end");
        let events = events(&frames);
        let first_syn = events.iter().find(|e| e.tcp_flags == SYN).expect("a SYN");
        // 2026-01-01T00:00:00Z + 100 ms, from the record header.
        assert_eq!(first_syn.ts_ns, 1_767_225_600_100_000_000);
        let stats = cap.stats();
        assert_eq!((stats.drop, stats.ifdrop, stats.malformed), (0, 0, 0));
        assert_eq!(stats.recv, frames.len() as u64, "every frame is returned");
        assert!(frames.len() > events.len(), "ARP and UDP are read too");
        assert!(frames.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
        assert_eq!(cap.next_frame().unwrap(), None, "None again after the end");
    }

    #[test]
    fn sll2_file_has_directions() {
        let mut cap = FileCapture::open(&fixture("sll2.pcap"), ChecksumMode::None).expect("opens");
        assert!(cap.banner().contains("LINUX_SLL2 (Linux cooked v2)"));
        let (frames, end) = drain(&mut cap);
        end.unwrap();
        let events = events(&frames);
        assert!(events
            .iter()
            .any(|e| e.direction == tcpeek_common::DIR_INGRESS));
        assert!(events
            .iter()
            .any(|e| e.direction == tcpeek_common::DIR_EGRESS));
    }

    #[test]
    fn classic_microseconds_nanoseconds_and_both_byte_orders() {
        let frame = syn(40000, false);
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let bytes = classic(big_endian, nanos, 1, &[(START_S as u32, 7, &frame)]);
                let (cap, frames) = read("classic.pcap", &bytes);
                let want = START_S * NS_PER_S + if nanos { 7 } else { 7_000 };
                assert_eq!(frames.len(), 1, "be {big_endian} ns {nanos}");
                assert_eq!(frames[0].ts_ns, want, "be {big_endian} ns {nanos}");
                let ev = frames[0].event.expect("the SYN");
                assert_eq!((ev.sport, ev.seq, ev.ts_ns), (40000, 1000, want));
                assert_eq!(cap.stats().malformed, 0);
            }
        }
    }

    #[test]
    fn classic_raw_ip_link_types() {
        let frame = syn(40001, true);
        for dlt in [101, 228] {
            let (cap, frames) = read("raw.pcap", &classic(false, false, dlt, &[(1, 0, &frame)]));
            assert_eq!(frames[0].event.map(|e| e.sport), Some(40001), "{dlt}");
            assert!(cap.banner().contains("(Raw IP"), "{}", cap.banner());
        }
    }

    #[test]
    fn truncated_last_record_is_an_error_after_the_events_before_it() {
        let bytes = std::fs::read(fixture("reject.pcap")).unwrap();
        let file = Scratch::new("truncated.pcap", &bytes[..bytes.len() - 10]);
        let mut cap = FileCapture::open(&file.0, ChecksumMode::None).expect("opens");
        let (frames, end) = drain(&mut cap);
        let err = end.expect_err("truncation is reported");
        assert!(matches!(err, FileError::TruncatedFile { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("truncated") && msg.contains("truncated.pcap"),
            "{msg}"
        );
        assert!(events(&frames).len() >= 3, "events before the cut count");
        assert_eq!(cap.next_frame().unwrap(), None, "reported once");
    }

    #[test]
    fn caplen_beyond_the_snapshot_length_is_an_error_not_an_allocation() {
        let frame = syn(40000, false);
        let mut bytes = classic(false, false, 1, &[(1, 0, &frame), (2, 0, &frame)]);
        let second = 24 + 16 + frame.len();
        bytes[second + 8..second + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        let file = Scratch::new("huge.pcap", &bytes);
        let mut cap = FileCapture::open(&file.0, ChecksumMode::None).unwrap();
        let (frames, end) = drain(&mut cap);
        assert_eq!(frames.len(), 1);
        let msg = end.unwrap_err().to_string();
        assert!(msg.starts_with("cannot read "), "{msg}");
        assert!(msg.contains("2147483632") && msg.contains("65535"), "{msg}");
    }

    #[test]
    fn not_a_capture_file_is_named() {
        let file = Scratch::new(
            "notpcap.txt",
            b"this is not a capture file at all, just text\n",
        );
        let err = FileCapture::open(&file.0, ChecksumMode::None)
            .err()
            .unwrap();
        assert!(matches!(err, FileError::NotACaptureFile { .. }), "{err}");
        assert!(err.to_string().contains("notpcap.txt"), "{err}");
    }

    #[test]
    fn garbage_after_a_valid_header_is_an_error_not_a_panic() {
        // Random bytes after a classic header and after a pcapng section
        // header: errors or frames, never a panic or a hang.
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let heads = [classic(false, false, 1, &[]), Ng::new(false).out];
        for round in 0..200 {
            let mut bytes = heads[round % 2].clone();
            let n = (next() % 3000) as usize;
            bytes.extend((0..n).map(|_| next() as u8));
            let file = Scratch::new("garbage", &bytes);
            if let Ok(mut cap) = FileCapture::open(&file.0, ChecksumMode::IpTcp) {
                let (_, end) = drain(&mut cap);
                let _ = end;
            }
        }
    }

    #[test]
    fn missing_empty_and_directory_are_named() {
        let err = FileCapture::open(Path::new("/nonexistent/x.pcap"), ChecksumMode::None)
            .err()
            .unwrap();
        assert!(matches!(err, FileError::OpenFile { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
        let err = FileCapture::open(&std::env::temp_dir(), ChecksumMode::None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("directory"), "{err}");
        let empty = Scratch::new("empty.pcap", b"");
        let err = FileCapture::open(&empty.0, ChecksumMode::None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("the file is empty"), "{err}");
        let short = Scratch::new("short.pcap", &classic(false, false, 1, &[])[..10]);
        let err = FileCapture::open(&short.0, ChecksumMode::None)
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot open ") && msg.contains("truncated"),
            "{msg}"
        );
        let short = Scratch::new("short.pcapng", &Ng::new(false).out[..20]);
        let msg = FileCapture::open(&short.0, ChecksumMode::None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with("cannot open ") && msg.contains("truncated"),
            "{msg}"
        );
    }

    #[test]
    fn unsupported_link_type_names_its_number() {
        let mut bytes = std::fs::read(fixture("tfo.pcap")).unwrap();
        bytes[20..24].copy_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
        let file = Scratch::new("wifi.pcap", &bytes);
        let err = FileCapture::open(&file.0, ChecksumMode::None)
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("105") && msg.contains("IEEE802_11"), "{msg}");
        // The same with pcapng's one interface.
        let mut ng = Ng::new(false);
        ng.idb(105, &[]);
        ng.epb(0, 0, &[0; 40]);
        let file = Scratch::new("wifi.pcapng", &ng.out);
        let msg = FileCapture::open(&file.0, ChecksumMode::None)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("105") && msg.contains("IEEE802_11"), "{msg}");
    }

    #[test]
    fn pcapng_is_read_too() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        // Default resolution: microseconds. 2026-01-01T00:00:01Z.
        ng.epb(0, (START_S + 1) * 1_000_000, &syn(40000, false));
        let (cap, frames) = read("one.pcapng", &ng.out);
        assert_eq!(events(&frames).len(), 1);
        assert_eq!(frames[0].ts_ns, (START_S + 1) * NS_PER_S);
        assert!(cap.banner().contains("link-type EN10MB (Ethernet)"));
    }

    /// libpcap refused these files ("an interface has a type different
    /// from the type of the first interface").
    #[test]
    fn pcapng_interfaces_of_different_link_types_each_decode() {
        for big_endian in [false, true] {
            let mut ng = Ng::new(big_endian);
            ng.idb(1, &[]);
            ng.idb(101, &[(IF_TSRESOL, vec![9])]);
            ng.epb(0, START_S * 1_000_000, &syn(40000, false));
            ng.epb(1, START_S * NS_PER_S + 5, &syn(40001, true));
            let (cap, frames) = read("two.pcapng", &ng.out);
            let evs = events(&frames);
            assert_eq!(evs.len(), 2, "be {big_endian}");
            assert_eq!((evs[0].sport, evs[1].sport), (40000, 40001));
            assert_eq!(frames[1].ts_ns, START_S * NS_PER_S + 5);
            assert_eq!(cap.stats().malformed, 0);
            let banner = cap.banner();
            assert!(
                banner.contains("2 interfaces: 0: link-type EN10MB (Ethernet)")
                    && banner.contains("1: link-type RAW (Raw IP)"),
                "{banner}"
            );
        }
    }

    #[test]
    fn pcapng_if_tsresol_powers_of_ten_and_two_and_if_tsoffset() {
        for big_endian in [false, true] {
            let mut ng = Ng::new(big_endian);
            let offset = if big_endian {
                100i64.to_be_bytes()
            } else {
                100i64.to_le_bytes()
            };
            // Milliseconds; 2^-20 s; microseconds 100 s later.
            ng.idb(1, &[(IF_TSRESOL, vec![3])]);
            ng.idb(1, &[(IF_TSRESOL, vec![0x80 | 20])]);
            ng.idb(1, &[(IF_TSOFFSET, offset.to_vec())]);
            let frame = syn(40000, false);
            ng.epb(0, START_S * 1_000 + 250, &frame);
            ng.epb(1, (START_S << 20) + (1 << 19), &frame);
            ng.epb(2, 1_500_000, &frame);
            let (_, frames) = read("tsresol.pcapng", &ng.out);
            let ts: Vec<u64> = frames.iter().map(|f| f.ts_ns).collect();
            assert_eq!(
                ts,
                [
                    START_S * NS_PER_S + 250_000_000,
                    START_S * NS_PER_S + 500_000_000,
                    101 * NS_PER_S + 500_000_000,
                ],
                "be {big_endian}"
            );
        }
    }

    #[test]
    fn pcapng_timestamps_saturate() {
        let mut ng = Ng::new(false);
        ng.idb(
            1,
            &[
                (IF_TSRESOL, vec![0]),
                (IF_TSOFFSET, i64::MAX.to_le_bytes().to_vec()),
            ],
        );
        ng.idb(1, &[(IF_TSOFFSET, i64::MIN.to_le_bytes().to_vec())]);
        ng.idb(1, &[(IF_TSRESOL, vec![0xff])]); // 2^127: unusable
        ng.epb(0, u64::MAX, &syn(1, false));
        ng.epb(1, 5, &syn(2, false));
        ng.epb(2, 5, &syn(3, false));
        let (cap, frames) = read("saturate.pcapng", &ng.out);
        assert_eq!(frames[0].ts_ns, u64::MAX);
        assert_eq!(frames[1].ts_ns, 0);
        assert_eq!(frames[2].event, None);
        assert_eq!(cap.stats().malformed, 1, "the unusable interface");
    }

    #[test]
    fn packet_on_an_undescribed_interface_is_malformed_not_a_panic() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.epb(7, 1, &syn(40000, false));
        ng.opb(9, 1, &syn(40000, false));
        ng.epb(0, 2, &syn(40001, false));
        let (cap, frames) = read("noif.pcapng", &ng.out);
        assert_eq!(frames.len(), 3);
        assert_eq!(events(&frames).len(), 1);
        assert_eq!(cap.stats().malformed, 2);
        assert_eq!(cap.stats().recv, 3);
    }

    #[test]
    fn undecodable_interface_frames_are_malformed() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.idb(105, &[]);
        ng.epb(1, 1, &[0; 40]);
        ng.epb(1, 2, &[0; 40]);
        ng.epb(0, 3, &syn(40000, false));
        let (cap, frames) = read("wifi2.pcapng", &ng.out);
        assert_eq!(events(&frames).len(), 1);
        assert_eq!(cap.stats().malformed, 2);
        assert!(cap
            .banner()
            .contains("IEEE802_11 (802.11), snapshot length 65535 (not decoded)"));
    }

    #[test]
    fn no_decodable_interface_is_an_error_at_open() {
        let mut ng = Ng::new(false);
        ng.idb(105, &[]);
        ng.idb(127, &[]);
        ng.epb(0, 1, &[0; 40]);
        let file = Scratch::new("nodec.pcapng", &ng.out);
        let msg = FileCapture::open(&file.0, ChecksumMode::None)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("no interface can be decoded"), "{msg}");
        assert!(
            msg.contains("0: link type 105") && msg.contains("1: link type 127"),
            "{msg}"
        );
    }

    #[test]
    fn a_new_section_describes_its_interfaces_afresh() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.idb(101, &[]);
        ng.epb(1, 1, &syn(40000, true));
        // Second section, big-endian, one raw interface: interface 1 is gone.
        let mut second = Ng::new(true);
        second.idb(101, &[]);
        second.epb(1, 2, &syn(40001, true));
        second.epb(0, 3, &syn(40002, true));
        ng.out.extend_from_slice(&second.out);
        let (cap, frames) = read("sections.pcapng", &ng.out);
        let ports: Vec<u16> = events(&frames).iter().map(|e| e.sport).collect();
        assert_eq!(ports, [40000, 40002]);
        assert_eq!(cap.stats().malformed, 1);
    }

    #[test]
    fn simple_and_obsolete_packet_blocks_are_read() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.opb(0, 2_000_000, &syn(40000, false));
        ng.spb(&syn(40001, false));
        let (_, frames) = read("old.pcapng", &ng.out);
        let ports: Vec<u16> = events(&frames).iter().map(|e| e.sport).collect();
        assert_eq!(ports, [40000, 40001]);
        // A Simple Packet Block has no time: the previous frame's.
        assert_eq!(frames[1].ts_ns, 2 * NS_PER_S);
    }

    #[test]
    fn truncated_pcapng_block_is_an_error_after_the_frames_before_it() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.epb(0, 1, &syn(40000, false));
        ng.epb(0, 2, &syn(40001, false));
        let cut = ng.out.len() - 20;
        let file = Scratch::new("cut.pcapng", &ng.out[..cut]);
        let mut cap = FileCapture::open(&file.0, ChecksumMode::None).unwrap();
        let (frames, end) = drain(&mut cap);
        assert_eq!(frames.len(), 1);
        let err = end.unwrap_err();
        assert!(matches!(err, FileError::TruncatedFile { .. }), "{err}");
        assert!(err.to_string().contains("cut.pcapng"), "{err}");
    }

    #[test]
    fn pcapng_block_larger_than_the_buffer_is_read() {
        // A 2 MiB custom block the reader must grow its buffer for, then a
        // packet.
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.block(0x0000_0bad, &vec![0; 2 << 20]);
        ng.epb(0, 1, &syn(40000, false));
        let (_, frames) = read("big.pcapng", &ng.out);
        assert_eq!(events(&frames).len(), 1);
    }

    #[test]
    fn pcapng_block_claiming_gigabytes_is_an_error() {
        let mut ng = Ng::new(false);
        ng.idb(1, &[]);
        ng.epb(0, 1, &syn(40000, false));
        let at = ng.out.len();
        ng.epb(0, 2, &syn(40001, false));
        ng.out[at + 4..at + 8].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        ng.out.extend_from_slice(&vec![0; 2 << 20]);
        let file = Scratch::new("huge.pcapng", &ng.out);
        let mut cap = FileCapture::open(&file.0, ChecksumMode::None).unwrap();
        let (frames, end) = drain(&mut cap);
        assert_eq!(frames.len(), 1);
        let msg = end.unwrap_err().to_string();
        assert!(msg.contains("1073741824"), "{msg}");
    }
}
