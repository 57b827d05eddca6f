//! The Linux cooked capture headers (SLL and SLL2), which only libpcap's
//! `any` device produces: a fixed-layout record carrying the EtherType and
//! the packet type, from which the direction comes. (Ethernet, its VLAN
//! tags and raw IP are the shared walk's.)
//!
//! Layouts from libpcap's `pcap/sll.h` and
//! https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html / _SLL2.html.
//! Parsed here rather than by a crate: etherparse lacks SLL2 and rejects the
//! ARPHRD types the `any` device produces on SLL (loopback, tun, ...).

use tcpeek_common::{DIR_EGRESS, DIR_INGRESS, DIR_UNKNOWN};

use super::{need, DecodeError, LinkType};

pub(super) const SLL_LEN: usize = 16;
const SLL_PKTTYPE: usize = 0; // u16
const SLL_PROTOCOL: usize = 14; // u16
pub(super) const SLL2_LEN: usize = 20;
const SLL2_PROTOCOL: usize = 0; // u16
const SLL2_PKTTYPE: usize = 10; // u8

// `sll_pkttype` values (linux/if_packet.h).
pub(super) const PACKET_HOST: u16 = 0;
pub(super) const PACKET_BROADCAST: u16 = 1;
pub(super) const PACKET_MULTICAST: u16 = 2;
pub(super) const PACKET_OUTGOING: u16 = 4;

/// A cooked header: what the walk needs to go on.
pub(super) struct Cooked {
    /// The EtherType of what follows.
    pub(super) protocol: u16,
    /// The header's length.
    pub(super) len: usize,
    pub(super) direction: u8,
}

impl Cooked {
    /// The cooked header of `link` (SLL or SLL2) at the start of `frame`.
    pub(super) fn parse(link: LinkType, frame: &[u8]) -> Result<Cooked, DecodeError> {
        let be16 = |h: &[u8], at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        if link == LinkType::LinuxSll2 {
            let h = need(frame, SLL2_LEN, "Linux cooked v2 (SLL2) header")?;
            Ok(Cooked {
                protocol: be16(h, SLL2_PROTOCOL),
                len: SLL2_LEN,
                direction: sll_direction(u16::from(h[SLL2_PKTTYPE])),
            })
        } else {
            let h = need(frame, SLL_LEN, "Linux cooked (SLL) header")?;
            Ok(Cooked {
                protocol: be16(h, SLL_PROTOCOL),
                len: SLL_LEN,
                direction: sll_direction(be16(h, SLL_PKTTYPE)),
            })
        }
    }
}

/// Maps the SLL packet type to an event direction.
pub(super) fn sll_direction(pkttype: u16) -> u8 {
    match pkttype {
        PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST => DIR_INGRESS,
        PACKET_OUTGOING => DIR_EGRESS,
        _ => DIR_UNKNOWN,
    }
}
