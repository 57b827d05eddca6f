//! pcapng files (draft-ietf-opsawg-pcapng): sections, each with its own
//! byte order and interfaces, and the three kinds of packet block, each
//! frame decoded with the link type of its interface.

use std::path::Path;

use pcap_parser::{
    EnhancedPacketBlock, InterfaceDescriptionBlock, PcapError, PcapNGReader, SectionHeaderBlock,
    SimplePacketBlock, UnknownBlock,
};

use super::{
    decode, dlt_name, open_error, truncated_header, FileError, Frame, Interface, Layout, Reader,
    Source, State, Step, BUFFER_BYTES,
};
use crate::capture::decode::LinkType;

/// Section Header Block type (draft-ietf-opsawg-pcapng section 4.1); the
/// same bytes in either byte order.
pub(super) const SHB_TYPE: u32 = 0x0a0d_0d0a;
/// Obsolete Packet Block (draft-ietf-opsawg-pcapng appendix A).
const OPB_TYPE: u32 = 2;

/// Checks the Section Header Block's size (`head_len` bytes of the file
/// were there to read) and starts a reader at it.
pub(super) fn open(
    path: &Path,
    source: Source,
    head_len: usize,
) -> Result<(Reader, Layout), FileError> {
    // Type, length, byte-order magic, version, section length,
    // length again.
    if head_len < 28 {
        return Err(truncated_header(
            path,
            "pcapng section header",
            head_len,
            28,
        ));
    }
    let reader = PcapNGReader::new(BUFFER_BYTES, source).map_err(|e| match e {
        PcapError::Incomplete(_) => open_error(path, "the pcapng section header is truncated"),
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
    Ok((Box::new(reader), layout))
}

/// Whether an unknown block is an obsolete Packet Block.
pub(super) fn is_opb(u: &UnknownBlock<'_>, layout: &Layout) -> bool {
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
    /// At open, after the blocks before the first packet: the error if
    /// interfaces were described and none of them can be decoded.
    pub(super) fn undecodable(&self) -> Option<FileError> {
        let Layout::Ng { interfaces, .. } = &self.layout else {
            return None;
        };
        if interfaces.is_empty() || interfaces.iter().any(|i| i.decoder.is_some()) {
            return None;
        }
        Some(match &interfaces[..] {
            [one] if LinkType::from_dlt(one.dlt as i32).is_none() => {
                FileError::UnsupportedLinkType {
                    path: self.path.clone(),
                    dlt: one.dlt,
                    name: dlt_name(one.dlt),
                }
            }
            all => FileError::NoDecodableInterface {
                path: self.path.clone(),
                interfaces: all
                    .iter()
                    .enumerate()
                    .map(|(i, f)| format!("{i}: {}", f.why_not.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        })
    }

    /// A Section Header Block: a new section describes its interfaces
    /// afresh (section 4.1).
    pub(super) fn section(&mut self, shb: &SectionHeaderBlock<'_>) -> Step {
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

    /// An Interface Description Block.
    pub(super) fn interface(&mut self, idb: &InterfaceDescriptionBlock<'_>) -> Step {
        if let Layout::Ng {
            big_endian,
            interfaces,
            ..
        } = &mut self.layout
        {
            interfaces.push(Interface::new(idb, *big_endian, self.checksum));
        }
        Step::Skip
    }

    /// An Enhanced Packet Block.
    pub(super) fn enhanced(&mut self, b: &EnhancedPacketBlock<'_>) -> Step {
        // pcap-parser has checked that the data holds `caplen` bytes.
        let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
        self.packet(b.if_id, Some((b.ts_high, b.ts_low)), data, b.origlen)
    }

    /// A Simple Packet Block has no interface (it is interface 0), no
    /// captured length (the packet, cut at the snapshot length) and no time
    /// (section 4.4). It takes the previous frame's time, so that it moves
    /// no clock; libpcap gives it 0, which would look like a jump back.
    pub(super) fn simple(&mut self, b: &SimplePacketBlock<'_>) -> Step {
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
    pub(super) fn obsolete(&mut self, b: &UnknownBlock<'_>) -> Step {
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
}
