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
use pcap_parser::{Block, PcapBlockOwned, PcapError};
use tcpeek_common::Event;

use super::decode::{ChecksumMode, Decoder};
use super::CaptureStats;
pub use banner::dlt_name;
use interface::Interface;

mod banner;
mod classic;
mod interface;
mod pcapng;

/// The reader's buffer. Every classic record fits (at most
/// [`classic::MAX_SNAPLEN`] bytes), and large reads keep system calls rare.
const BUFFER_BYTES: usize = 1 << 20;

/// The largest pcapng block read, as libpcap's sf-pcapng.c
/// (`INITIAL_MAX_BLOCKSIZE`, 16 MiB); the buffer grows up to it.
const MAX_BLOCK_BYTES: usize = 16 << 20;

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

/// The reader, over the file's bytes.
type Reader = Box<dyn PcapReaderIterator + Send>;

/// The error for a file that cannot be opened.
fn open_error(path: &Path, detail: impl Into<String>) -> FileError {
    FileError::OpenFile {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// The error for a file too short for its header (`got` of `need` bytes).
fn truncated_header(path: &Path, what: &str, got: usize, need: usize) -> FileError {
    open_error(
        path,
        format!("the {what} is truncated: {got} of {need} bytes"),
    )
}

/// A capture file being read, frame by frame.
pub struct FileCapture {
    reader: Reader,
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
        let open_err = |detail: String| open_error(path, detail);
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
        let (reader, layout) = if classic::PCAP_MAGICS.contains(&magic) {
            classic::open(path, source, head.len(), checksum)?
        } else if magic == pcapng::SHB_TYPE {
            pcapng::open(path, source, head.len())?
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
            if let Some(e) = cap.state.undecodable() {
                return Err(e);
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
        PcapBlockOwned::NG(Block::Unknown(u)) => pcapng::is_opb(u, layout),
        PcapBlockOwned::NG(_) => false,
    }
}

impl State {
    /// Handles one block.
    fn block(&mut self, block: PcapBlockOwned<'_>) -> Step {
        match block {
            PcapBlockOwned::LegacyHeader(_) => Step::Skip,
            PcapBlockOwned::Legacy(b) => self.classic(&b),
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => self.section(&shb),
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => self.interface(&idb),
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => self.enhanced(&epb),
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => self.simple(&spb),
            PcapBlockOwned::NG(Block::Unknown(u)) if pcapng::is_opb(&u, &self.layout) => {
                self.obsolete(&u)
            }
            PcapBlockOwned::NG(_) => Step::Skip,
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
                let big_endian = if kind == Some(pcapng::SHB_TYPE) {
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

#[cfg(test)]
mod tests;
