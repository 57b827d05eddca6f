//! The packet walk both capture backends use: from the first byte of a
//! frame to the TCP segment or the ICMP error quoting one, or the reason
//! there is none.
//!
//! The eBPF classifier runs it on the packet in the kernel, the libpcap
//! decoder on a captured frame; both then build the same [`Event`] from
//! what it found ([`Found::event`]). Whatever one side decodes, the other
//! does too, by construction (and `tests/wire_parity.rs` checks it on a
//! corpus of fixture frames and mutations of them).
//!
//! What is walked (offsets of IEEE 802.3/802.1Q, RFC 791, RFC 8200,
//! RFC 4302, RFC 9293, RFC 792 and RFC 4443):
//! - link: Ethernet with up to two VLAN tags (802.1Q, 802.1ad and the
//!   pre-standard 0x9100), or the IP header at byte 0 (L3 devices, raw-IP
//!   captures); a caller that has parsed its own link header (Linux cooked
//!   captures) starts at the EtherType ([`from_ethertype`]);
//! - network: IPv4 with options, and AH after it; IPv6 with its extension
//!   headers (hop-by-hop, routing, fragment, AH, destination options, at
//!   most [`MAX_IPV6_EXT`]); a non-first fragment carries no layer-4 header
//!   and is [`Stop::Ignored`];
//! - transport: TCP, and ICMP type 3 / ICMPv6 type 1 quoting a TCP segment.
//!
//! Lengths. A frame has `wire_len` bytes on the wire, of which the
//! [`Packet`] can read a prefix (a capture's snapshot length, or the linear
//! part of a socket buffer). A header past the readable bytes is
//! [`Stop::Short`]; a packet shorter than its IP length field says is
//! [`Stop::Truncated`]. Layer-4 lengths come from the IP header, never from
//! what was captured. A TCP header is read up to its flags (14 bytes, what a
//! verdict needs): a capture cut inside its options still gives the
//! segment, and [`Tcp::cut`] says so.

mod ip;
mod link;
mod packet;
mod transport;

pub use packet::{Header, Packet, Unreadable};

use crate::{Event, FAMILY_V4, FAMILY_V6, KIND_ICMP_UNREACH, KIND_TCP};

/// Ethernet header: two addresses and the EtherType at byte 12.
pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
pub const ETHERTYPE_8021Q: u16 = 0x8100;
/// 802.1ad service tag (the outer tag of QinQ).
pub const ETHERTYPE_8021AD: u16 = 0x88a8;
/// The pre-standard QinQ tag some switches still send.
pub const ETHERTYPE_QINQ: u16 = 0x9100;
/// A VLAN tag: TCI, then the next EtherType.
pub const VLAN_TAG_LEN: usize = 4;
/// VLAN tags walked through; a third is [`Unsupported::VlanTags`].
pub const MAX_VLAN_TAGS: usize = 2;

/// The IPv4 header without options.
pub const IPV4_MIN_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;

pub const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_AH: u8 = 51;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_DSTOPTS: u8 = 60;

/// Most IPv6 extension headers walked through. RFC 8200 section 4.1 allows
/// each at most once (destination options twice): hop-by-hop, destination
/// options, routing, fragment, AH, destination options is the longest
/// well-formed chain of the headers walked here (ESP ends the walk). More
/// is hostile, and [`Unsupported::Ipv6Chain`]. (The kernel verifier also
/// bounds it: at 8 the walk, quoted twice in ICMPv6, exceeds its
/// one-million-instruction budget.)
pub const MAX_IPV6_EXT: usize = 6;

/// The TCP header without options (RFC 9293 section 3.1).
pub const TCP_MIN_HLEN: usize = 20;
/// Offset of the TCP flags byte.
pub const TCP_FLAGS_OFFSET: usize = 13;
/// What a verdict reads of a TCP header: ports, sequence and
/// acknowledgement numbers, data offset and flags. `-s 68` leaves an IPv6
/// segment on Ethernet exactly these 14 bytes.
pub const TCP_VERDICT_LEN: usize = TCP_FLAGS_OFFSET + 1;

/// ICMP and ICMPv6 error messages: type, code, checksum, 4 more bytes, then
/// the quote (RFC 792; RFC 4443 section 3.1).
pub const ICMP_HLEN: usize = 8;
/// ICMP type 3, destination unreachable (RFC 792).
pub const ICMP_DEST_UNREACH: u8 = 3;
/// ICMPv6 type 1, destination unreachable (RFC 4443 section 3.1).
pub const ICMPV6_DEST_UNREACH: u8 = 1;
/// RFC 792 guarantees the quoted IP header plus 64 bits of its data: for
/// TCP the ports and the sequence number.
pub const QUOTED_TCP_MIN: usize = 8;

/// The header a [`Stop`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Ethernet,
    Vlan,
    /// The first byte of a frame that starts with an IP header.
    Ip,
    Ipv4,
    /// An IPv4 packet as its total length describes it.
    Ipv4Packet,
    Ipv6,
    /// An IPv6 packet as its payload length describes it.
    Ipv6Packet,
    Ipv6Ext,
    /// IPsec AH after an IPv4 header.
    Ah,
    Tcp,
    Icmp,
    Icmpv6,
    QuotedIpv4,
    QuotedIpv6,
    QuotedIpv6Ext,
    QuotedTcp,
}

impl Layer {
    /// What error messages call it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "Ethernet header",
            Layer::Vlan => "VLAN tag",
            Layer::Ip => "IP header",
            Layer::Ipv4 => "IPv4 header",
            Layer::Ipv4Packet => "IPv4 packet",
            Layer::Ipv6 => "IPv6 header",
            Layer::Ipv6Packet => "IPv6 packet",
            Layer::Ipv6Ext => "IPv6 extension header",
            Layer::Ah => "IP authentication header",
            Layer::Tcp => "TCP header",
            Layer::Icmp => "ICMP header",
            Layer::Icmpv6 => "ICMPv6 header",
            Layer::QuotedIpv4 => "quoted IPv4 header",
            Layer::QuotedIpv6 => "quoted IPv6 header",
            Layer::QuotedIpv6Ext => "quoted IPv6 extension header",
            Layer::QuotedTcp => "quoted TCP header",
        }
    }
}

/// An impossible header field (the endpoint drops such a packet too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The IP version nibble, for a header that must be IPv4 or IPv6.
    Version(u8),
    /// IPv4 header length (IHL x 4) below 20 bytes.
    HeaderLength(usize),
    /// IPv4 total length shorter than its own header.
    TotalLength { total: usize, header: usize },
    /// TCP data offset (x 4) below 20 bytes.
    DataOffset(usize),
    /// AH payload length 0: shorter than AH's own fixed fields.
    AhLength,
}

impl core::fmt::Display for Malformed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Malformed::Version(v) => write!(f, "IP version {v}"),
            Malformed::HeaderLength(n) => {
                write!(f, "header length {n} is shorter than 20 bytes")
            }
            Malformed::TotalLength { total, header } => write!(
                f,
                "total length {total} is shorter than the {header}-byte header"
            ),
            Malformed::DataOffset(n) => {
                write!(f, "data offset {n} is shorter than the 20-byte header")
            }
            Malformed::AhLength => write!(f, "payload length 0, shorter than its fixed fields"),
        }
    }
}

/// A well-formed packet the walk does not follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// More than [`MAX_VLAN_TAGS`] VLAN tags.
    VlanTags,
    /// More than [`MAX_IPV6_EXT`] IPv6 extension headers.
    Ipv6Chain,
}

impl Unsupported {
    pub fn what(self) -> &'static str {
        match self {
            Unsupported::VlanTags => "frame with more than two VLAN tags",
            Unsupported::Ipv6Chain => "chain of more than 6 IPv6 extension headers",
        }
    }
}

/// Why the walk found no TCP segment or ICMP error to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Nothing tcpeek reports: not IP, not TCP or ICMP, a non-first
    /// fragment, another ICMP type, an ICMP error quoting something else.
    Ignored,
    /// A header ends past the readable bytes: `needed` bytes where only
    /// `available` could be read (0 in the kernel). In the kernel the rest
    /// may sit in the socket buffer's non-linear part.
    Short {
        layer: Layer,
        needed: usize,
        available: usize,
    },
    /// The packet is shorter than one of its length fields says: `needed`
    /// bytes where it has `available`.
    Truncated {
        layer: Layer,
        needed: usize,
        available: usize,
    },
    Malformed {
        layer: Layer,
        why: Malformed,
    },
    Unsupported(Unsupported),
}

/// Where an IP header and its layer-4 payload are.
#[derive(Clone, Copy, Debug)]
pub struct Ip {
    /// Offset of the IP header.
    pub l3: usize,
    /// Its length (IHL x 4 for IPv4, 40 for IPv6).
    pub header_len: usize,
    /// Offset of the layer-4 header (after AH and IPv6 extension headers).
    pub l4: usize,
    /// Layer-4 protocol.
    pub proto: u8,
    pub v6: bool,
    /// Length of the layer-4 header and payload according to the IP
    /// header. 0 for a quoted packet (an ICMP quote is cut short).
    pub l4_len: u32,
    /// Every byte the IP header announces is readable.
    pub complete: bool,
    /// A first fragment: more fragments follow.
    pub fragmented: bool,
    /// An IPv6 routing header is present (so the pseudo-header's
    /// destination is not the one in the IP header).
    pub routed: bool,
}

impl Ip {
    /// Where the layer-4 payload ends, by the IP length.
    #[inline(always)]
    pub fn end(&self) -> usize {
        self.l4 + self.l4_len as usize
    }

    /// An event with this header's addresses and family.
    #[inline(always)]
    pub fn event(&self, pkt: &Packet<'_>, direction: u8) -> Result<Event, Stop> {
        let mut ev = Event::ZERO;
        if self.v6 {
            let h = read::<IPV6_HLEN>(pkt, self.l3, Layer::Ipv6)?;
            ev.saddr = h.bytes16::<8>();
            ev.daddr = h.bytes16::<24>();
            ev.family = FAMILY_V6;
        } else {
            let h = read::<IPV4_MIN_HLEN>(pkt, self.l3, Layer::Ipv4)?;
            ev.saddr[..4].copy_from_slice(&h.bytes4::<12>());
            ev.daddr[..4].copy_from_slice(&h.bytes4::<16>());
            ev.family = FAMILY_V4;
        }
        ev.direction = direction;
        Ok(ev)
    }
}

/// A TCP segment.
#[derive(Clone, Copy)]
pub struct Tcp<'a> {
    pub ip: Ip,
    /// The header up to its flags.
    pub th: Header<'a, TCP_VERDICT_LEN>,
    /// The header length (data offset x 4), at least 20 and within the
    /// IP length.
    pub doff: u32,
    /// The readable bytes end inside the header (a capture's snapshot
    /// length cut its options off).
    pub cut: bool,
}

impl Tcp<'_> {
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.th.u8::<TCP_FLAGS_OFFSET>()
    }

    /// Bytes of data after the header, by the IP length.
    #[inline(always)]
    pub fn payload_len(&self) -> u32 {
        self.ip.l4_len - self.doff
    }

    #[inline(always)]
    pub fn event(&self, pkt: &Packet<'_>, direction: u8) -> Result<Event, Stop> {
        let mut ev = self.ip.event(pkt, direction)?;
        ev.kind = KIND_TCP;
        ev.sport = self.th.be16::<0>();
        ev.dport = self.th.be16::<2>();
        ev.seq = self.th.be32::<4>();
        ev.ack = self.th.be32::<8>();
        ev.tcp_flags = self.flags();
        ev.payload_len = u16::try_from(self.payload_len()).unwrap_or(u16::MAX);
        Ok(ev)
    }
}

/// An ICMP or ICMPv6 destination-unreachable error quoting a TCP segment.
#[derive(Clone, Copy)]
pub struct Unreachable<'a> {
    /// The IP header carrying the error.
    pub ip: Ip,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The quoted IP header.
    pub quoted: Ip,
    /// The quoted TCP header's first 8 bytes: ports and sequence number.
    pub th: Header<'a, QUOTED_TCP_MIN>,
    /// Its flags if the quote reaches them (Linux quotes as much as fits),
    /// else 0.
    pub flags: u8,
}

impl Unreachable<'_> {
    /// The event: addresses, ports and sequence number of the quoted
    /// segment (see [`Event`]).
    #[inline(always)]
    pub fn event(&self, pkt: &Packet<'_>, direction: u8) -> Result<Event, Stop> {
        let mut ev = self.quoted.event(pkt, direction)?;
        ev.kind = KIND_ICMP_UNREACH;
        ev.sport = self.th.be16::<0>();
        ev.dport = self.th.be16::<2>();
        ev.seq = self.th.be32::<4>();
        ev.tcp_flags = self.flags;
        ev.icmp_type = self.icmp_type;
        ev.icmp_code = self.icmp_code;
        Ok(ev)
    }
}

/// What the walk found.
#[derive(Clone, Copy)]
pub enum Found<'a> {
    Tcp(Tcp<'a>),
    Unreachable(Unreachable<'a>),
}

impl Found<'_> {
    #[inline(always)]
    pub fn event(&self, pkt: &Packet<'_>, direction: u8) -> Result<Event, Stop> {
        match self {
            Found::Tcp(t) => t.event(pkt, direction),
            Found::Unreachable(u) => u.event(pkt, direction),
        }
    }
}

/// Walks a frame that begins as `framing` says ([`crate::framing`]): an
/// Ethernet header, or the IP header.
#[inline(always)]
pub fn walk<'a>(pkt: &Packet<'a>, framing: u32, wire_len: usize) -> Result<Found<'a>, Stop> {
    if framing == crate::framing::IP {
        link::raw_ip(pkt, wire_len)
    } else {
        link::ethernet(pkt, wire_len)
    }
}

pub use link::{ethernet, from_ethertype, raw_ip};

/// `N` readable bytes at `off`, or [`Stop::Short`] about `layer`.
#[inline(always)]
fn read<'a, const N: usize>(
    pkt: &Packet<'a>,
    off: usize,
    layer: Layer,
) -> Result<Header<'a, N>, Stop> {
    pkt.header::<N>(off).map_err(|u| Stop::Short {
        layer,
        needed: N,
        available: u.available,
    })
}

/// [`read`] of a header that must also end by `limit`, where a length field
/// says its packet or message ends ([`Stop::Truncated`] otherwise).
#[inline(always)]
fn within<'a, const N: usize>(
    pkt: &Packet<'a>,
    off: usize,
    limit: usize,
    layer: Layer,
) -> Result<Header<'a, N>, Stop> {
    if off + N > limit {
        return Err(Stop::Truncated {
            layer,
            needed: N,
            available: limit.saturating_sub(off),
        });
    }
    read(pkt, off, layer)
}

#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "invariants"))]
pub mod invariants;
