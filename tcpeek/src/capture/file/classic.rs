//! Classic pcap files (pcap-savefile(5), draft-ietf-opsawg-pcap): the file
//! header, which fixes one link type, byte order and time resolution for
//! the whole file, and its records.

use std::path::Path;

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapBlock, LegacyPcapReader, PcapBlockOwned};

use super::{
    decode, dlt_name, open_error, truncated_header, FileError, Layout, Reader, Source, State, Step,
    BUFFER_BYTES, NS_PER_S,
};
use crate::capture::decode::{ChecksumMode, Decoder, LinkType};

/// The largest snapshot length libpcap accepts (`MAXIMUM_SNAPLEN`,
/// pcap-int.h); a header claiming 0 or more means "unlimited", which
/// libpcap also turns into this.
pub(super) const MAX_SNAPLEN: u32 = 262_144;

/// The link type field of a classic header (draft-ietf-opsawg-pcap section
/// 4; libpcap's `LT_LINKTYPE` and `LT_RESERVED1`, pcap-common.h): the link
/// type in the low 16 bits, 10 reserved bits that must be zero, then the
/// FCS flag and length. A trailing FCS needs nothing here: lengths come
/// from the IP header, so it is ignored like Ethernet padding.
const LINKTYPE_MASK: u32 = 0x0000_ffff;
const LINKTYPE_RESERVED: u32 = 0x03ff_0000;

/// Classic pcap magic numbers as read little-endian (pcap-savefile(5)):
/// microseconds, nanoseconds, Kuznetsov's modified format, and the first
/// two byte-swapped.
pub(super) const PCAP_MAGICS: [u32; 5] = [
    0xa1b2_c3d4,
    0xa1b2_3c4d,
    0xa1b2_cd34,
    0xd4c3_b2a1,
    0x4d3c_b2a1,
];

/// Reads the file header (`head_len` bytes of the file were there to
/// read) and the layout it describes.
pub(super) fn open(
    path: &Path,
    source: Source,
    head_len: usize,
    checksum: ChecksumMode,
) -> Result<(Reader, Layout), FileError> {
    if head_len < 24 {
        return Err(truncated_header(path, "pcap file header", head_len, 24));
    }
    let mut reader = LegacyPcapReader::new(BUFFER_BYTES, source)
        .map_err(|e| open_error(path, format!("the pcap file header: {e}")))?;
    let header = match reader.next() {
        Ok((_, PcapBlockOwned::LegacyHeader(h))) => h,
        _ => return Err(open_error(path, "the pcap file header is unreadable")),
    };
    reader.consume(header.size());
    let field = header.network.0 as u32;
    if field & LINKTYPE_RESERVED != 0 {
        // libpcap's sf-pcap.c refuses these files too.
        return Err(FileError::NotACaptureFile {
            path: path.to_owned(),
            detail: format!("link type field 0x{field:08x} has reserved bits set"),
        });
    }
    let dlt = field & LINKTYPE_MASK;
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
    Ok((Box::new(reader), layout))
}

impl State {
    /// A record: its time, in the file's resolution, and its frame.
    pub(super) fn classic(&mut self, b: &LegacyPcapBlock<'_>) -> Step {
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

    /// The error for a classic record longer than the file's snapshot
    /// length (libpcap's sf-pcap.c refuses those too, rather than allocate
    /// what a damaged header claims).
    pub(super) fn bad_caplen(&self, caplen: u32) -> Option<FileError> {
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
}
