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
//!
//! This module opens a file and holds what reading it updates (`State`);
//! `classic` and `pcapng` handle each format's header and blocks,
//! `interface` a pcapng interface and its clock, `reader` the loop over
//! blocks and the errors for a damaged file, `banner` what is printed.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, PcapBlockOwned};
use tcpeek_common::Event;

use super::decode::{ChecksumMode, Decoder};
use super::CaptureStats;
pub use banner::dlt_name;
use interface::Interface;
use reader::Source;

mod banner;
mod classic;
mod interface;
mod pcapng;
mod reader;

/// The reader's buffer. Every classic record fits (at most
/// [`classic::MAX_SNAPLEN`] bytes), and large reads keep system calls rare.
const BUFFER_BYTES: usize = 1 << 20;

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

/// What was read so far, for [`FileCapture::stats`].
#[derive(Default)]
struct Counts {
    frames: u64,
    malformed: u64,
    truncated: u64,
    /// Time of the last frame (for blocks without a time of their own).
    last_ts_ns: u64,
}

/// What the file's header (classic) or headers (pcapng) said.
enum Layout {
    Classic {
        decoder: Decoder,
        nanos: bool,
        big_endian: bool,
        /// Bytes before each frame: 16, or 24 in the modified format.
        record_header: usize,
        /// As in the header, for the banner.
        header_snaplen: u32,
        /// What a record may hold (see [`classic::MAX_SNAPLEN`]).
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
