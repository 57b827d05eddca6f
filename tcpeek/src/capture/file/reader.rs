//! The reader loop: blocks from pcap-parser's streaming reader, refilled
//! and grown as needed, handed to the state one by one; and, when the
//! reader stops short, the error that says where and why the file is
//! damaged.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use pcap_parser::{Block, PcapBlockOwned, PcapError};

use super::{pcapng, FileCapture, FileError, Frame, Layout, State, Step, BUFFER_BYTES};

/// The largest pcapng block read, as libpcap's sf-pcapng.c
/// (`INITIAL_MAX_BLOCKSIZE`, 16 MiB); the buffer grows up to it.
const MAX_BLOCK_BYTES: usize = 16 << 20;

/// The file, remembering the last I/O error for messages.
pub(super) struct Source {
    pub(super) file: File,
    pub(super) error: Arc<Mutex<Option<String>>>,
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

impl FileCapture {
    /// Reads blocks until a frame, the end or an error. With `scan`, stops
    /// before the first packet block instead (it stays in the buffer).
    pub(super) fn pump(&mut self, scan: bool) -> Result<Option<Frame>, FileError> {
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

impl State {
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
