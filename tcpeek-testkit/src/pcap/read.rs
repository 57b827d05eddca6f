//! Classic pcap files read back ([`read_classic`], [`ClassicFile::parse`]):
//! for tests that feed a capture's frames to something other than
//! `tcpeek -r` (the kernel classifier, a decoder) or check what a generator
//! wrote. The parsing is pcap-parser's, the reader `tcpeek -r` uses; this
//! module only turns its records into times in nanoseconds and owned
//! bytes, and its errors into messages that say where the file is damaged.
//!
//! Read: both byte orders, microsecond and nanosecond magics
//! (pcap-savefile(5)). Refused: any other magic, among them pcapng and the
//! "modified" format (`a1b2cd34`, whose records are longer), and a file
//! header or record cut short. The version, thiszone and sigfigs fields are
//! not looked at.

use std::io;
use std::path::Path;

use pcap_parser::nom;
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header, LegacyPcapBlock, PcapError,
};

use super::{ByteOrder, PcapHeader, Resolution, NS_PER_S};

/// A classic pcap file, read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicFile {
    /// The file header: link type field (as the file holds it, reserved
    /// bits and all), snapshot length, resolution and byte order.
    pub header: PcapHeader,
    pub records: Vec<Record>,
}

/// One record of a classic file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Nanoseconds since the epoch: the seconds, plus the fraction in the
    /// file's resolution taken as it stands (even past a second).
    pub ts_ns: u64,
    /// The captured bytes: the frame, or its first snapshot-length bytes.
    pub data: Vec<u8>,
    /// The frame's length on the wire.
    pub origlen: u32,
}

/// Reads the classic pcap file at `path`; an error names the file.
pub fn read_classic(path: &Path) -> io::Result<ClassicFile> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(named)?;
    ClassicFile::parse(&bytes).map_err(named)
}

impl ClassicFile {
    /// The file in `bytes`. Errors are `InvalidData`, saying what is wrong
    /// and at which byte.
    pub fn parse(bytes: &[u8]) -> io::Result<ClassicFile> {
        let (mut rest, head) = match parse_pcap_header(bytes) {
            Ok(parsed) => parsed,
            Err(nom::Err::Incomplete(_)) => {
                return Err(invalid(format!(
                    "the file header is cut short: {} of 24 bytes",
                    bytes.len()
                )))
            }
            Err(nom::Err::Error(PcapError::HeaderNotRecognized)) => {
                return Err(bad_magic(bytes));
            }
            Err(e) => return Err(invalid(format!("the file header does not parse: {e}"))),
        };
        if head.is_modified_format() {
            return Err(bad_magic(bytes));
        }
        let header = PcapHeader {
            // The field's bits as written: pcap-parser holds them signed.
            linktype: head.network.0 as u32,
            snaplen: head.snaplen,
            resolution: if head.is_nanosecond_precision() {
                Resolution::Nano
            } else {
                Resolution::Micro
            },
            byte_order: if head.is_bigendian() {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            },
        };
        let mut records = Vec::new();
        while !rest.is_empty() {
            let at = bytes.len() - rest.len();
            let parsed = match header.byte_order {
                ByteOrder::Little => parse_pcap_frame(rest),
                ByteOrder::Big => parse_pcap_frame_be(rest),
            };
            let (next, block) = parsed.map_err(|e| {
                let what = match e {
                    nom::Err::Incomplete(nom::Needed::Size(n)) => {
                        format!("is cut short: {n} more bytes were due")
                    }
                    nom::Err::Incomplete(nom::Needed::Unknown) => "is cut short".to_string(),
                    e => format!("does not parse: {e}"),
                };
                invalid(format!("record {} (at byte {at}) {what}", records.len()))
            })?;
            records.push(record(&header, &block));
            rest = next;
        }
        Ok(ClassicFile { header, records })
    }
}

fn record(header: &PcapHeader, block: &LegacyPcapBlock<'_>) -> Record {
    let frac_ns = match header.resolution {
        Resolution::Micro => u64::from(block.ts_usec) * 1_000,
        Resolution::Nano => u64::from(block.ts_usec),
    };
    Record {
        ts_ns: u64::from(block.ts_sec) * NS_PER_S + frac_ns,
        data: block.data.to_vec(),
        origlen: block.origlen,
    }
}

fn bad_magic(bytes: &[u8]) -> io::Error {
    let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    invalid(format!(
        "not a classic pcap file: it starts {}, not the magic a1b2c3d4 (microseconds) \
         or a1b23c4d (nanoseconds) in either byte order",
        magic.join(" ")
    ))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
