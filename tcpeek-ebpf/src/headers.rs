//! The header walk: Ethernet and up to two VLAN tags (or nothing, on
//! interfaces whose packets start at the IP header), IPv4 or IPv6 with its
//! extension headers, down to the layer-4 protocol.
//!
//! Offsets are those of IEEE 802.3/802.1Q, RFC 791 (IPv4) and RFC 8200
//! (IPv6). The walk is also used on the IP header quoted inside ICMP errors.

use tcpeek_common::framing;

use crate::packet::{Packet, Skip};

pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;

/// IPv6 extension headers followed before giving up. RFC 8200 section 4.1
/// recommends at most one of each (destination options twice), so six covers
/// every well-formed chain of the headers handled here.
const MAX_IPV6_EXT: usize = 6;

/// Where the IP header and its layer-4 payload are.
#[derive(Clone, Copy)]
pub struct Ip {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the layer-4 header.
    pub l4: usize,
    /// Layer-4 protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// true for IPv6.
    pub v6: bool,
    /// Layer-4 header plus payload length according to the IP header.
    pub l4_len: u32,
}

/// How this interface's packets begin (`tcpeek_common::framing`), set by
/// the loader. Read-only data: the verifier knows its value and drops the
/// walk not taken, so each interface pays for its own framing only.
#[no_mangle]
static TCPEEK_FRAMING: u32 = framing::ETHERNET;

/// The IP header: after the Ethernet header and up to two VLAN tags
/// (802.1ad outer, 802.1Q inner), or at byte 0 on interfaces without a
/// link-layer header, where the first nibble is the IP version.
#[inline(always)]
pub fn l3(pkt: &Packet) -> Result<Ip, Skip> {
    // SAFETY: a plain read of a static; volatile so that the compiler
    // cannot fold the value it was built with (the loader patches it).
    if unsafe { core::ptr::read_volatile(&raw const TCPEEK_FRAMING) } == framing::IP {
        // 20 bytes, the shortest IP header, rather than the 1 needed: the
        // verifier cannot use a bounds check of `start + 1` that LLVM turns
        // into `end > start`.
        return match pkt.header::<20>(0)?.u8::<0>() >> 4 {
            4 => ipv4(pkt, 0),
            6 => ipv6(pkt, 0),
            _ => Err(Skip::Pass),
        };
    }
    let eth = pkt.header::<ETH_HLEN>(0)?;
    let mut proto = eth.be16::<12>();
    let mut off = ETH_HLEN;
    // A tag is 4 bytes: TCI, then the next EtherType.
    for _ in 0..2 {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        proto = pkt.header::<4>(off)?.be16::<2>();
        off += 4;
    }
    match proto {
        ETH_P_IP => ipv4(pkt, off),
        ETH_P_IPV6 => ipv6(pkt, off),
        _ => Err(Skip::Pass),
    }
}

/// An IPv4 header at `l3`. Non-first fragments carry no layer-4 header and
/// are skipped.
#[inline(always)]
pub fn ipv4(pkt: &Packet, l3: usize) -> Result<Ip, Skip> {
    let h = pkt.header::<20>(l3)?;
    let vihl = h.u8::<0>();
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(Skip::Pass);
    }
    // Fragment offset (low 13 bits of bytes 6..8).
    if h.be16::<6>() & 0x1fff != 0 {
        return Err(Skip::Pass);
    }
    let (mut proto, mut l4) = (h.u8::<9>(), l3 + ihl);
    if proto == IPPROTO_AH {
        // RFC 4302: IPsec AH may sit between IPv4 and TCP (as the libpcap
        // decoder also follows); its length is in 4-byte units, minus 2.
        let e = pkt.header::<2>(l4)?;
        proto = e.u8::<0>();
        l4 += (e.u8::<1>() as usize + 2) * 4;
    }
    Ok(Ip {
        l3,
        l4,
        proto,
        v6: false,
        // Total length 0 (IPv4 BIG TCP GSO packets) gives 0, not a wrap.
        l4_len: (h.be16::<2>() as u32).saturating_sub((l4 - l3) as u32),
    })
}

/// An IPv6 header at `l3`, followed through hop-by-hop, routing, fragment,
/// AH and destination-options headers.
#[inline(always)]
pub fn ipv6(pkt: &Packet, l3: usize) -> Result<Ip, Skip> {
    let h = pkt.header::<40>(l3)?;
    if h.u8::<0>() >> 4 != 6 {
        return Err(Skip::Pass);
    }
    let mut nh = h.u8::<6>();
    let mut off = l3 + 40;
    for _ in 0..MAX_IPV6_EXT {
        match nh {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let e = pkt.header::<2>(off)?;
                nh = e.u8::<0>();
                off += (e.u8::<1>() as usize + 1) * 8;
            }
            IPPROTO_FRAGMENT => {
                let e = pkt.header::<4>(off)?;
                // Non-first fragment: no layer-4 header here.
                if e.be16::<2>() & 0xfff8 != 0 {
                    return Err(Skip::Pass);
                }
                nh = e.u8::<0>();
                off += 8;
            }
            IPPROTO_AH => {
                // RFC 4302: length in 4-byte units, minus 2.
                let e = pkt.header::<2>(off)?;
                nh = e.u8::<0>();
                off += (e.u8::<1>() as usize + 2) * 4;
            }
            _ => break,
        }
    }
    let ext_len = (off - l3 - 40) as u32;
    Ok(Ip {
        l3,
        l4: off,
        proto: nh,
        v6: true,
        // Payload length 0 (jumbograms, BIG TCP) gives 0, not a wrap.
        l4_len: (h.be16::<4>() as u32).saturating_sub(ext_len),
    })
}
