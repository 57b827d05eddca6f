//! A pcapng interface, as its Interface Description Block describes it
//! (draft-ietf-opsawg-pcapng section 4.2): link type, snapshot length, the
//! decoder for its frames, and its clock (`if_tsresol`, `if_tsoffset`),
//! which turns each packet's timestamp into nanoseconds since the epoch.

use pcap_parser::InterfaceDescriptionBlock;

use super::{dlt_name, NS_PER_S};
use crate::capture::decode::{ChecksumMode, Decoder, LinkType};

/// Interface Description Block options (draft-ietf-opsawg-pcapng section
/// 4.2): timestamp resolution and offset.
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
/// Microseconds, when an interface has no `if_tsresol`.
const DEFAULT_TSRESOL: u8 = 6;

/// A pcapng interface (Interface Description Block) of the current section.
pub(super) struct Interface {
    pub(super) dlt: u32,
    pub(super) snaplen: u32,
    /// `None` when its frames cannot be decoded (see `why_not`).
    pub(super) decoder: Option<Decoder>,
    pub(super) why_not: Option<String>,
    /// Timestamp units per second.
    units_per_s: u64,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
    /// The warning about undecodable frames was printed.
    pub(super) warned: bool,
}

impl Interface {
    pub(super) fn new(
        idb: &InterfaceDescriptionBlock<'_>,
        big_endian: bool,
        checksum: ChecksumMode,
    ) -> Self {
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
    pub(super) fn ts_ns(&self, high: u32, low: u32) -> u64 {
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
