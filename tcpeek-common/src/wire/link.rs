//! The link layer: Ethernet and its VLAN tags, or nothing (the IP header
//! at byte 0).

use super::{
    ip, read, Found, Layer, Malformed, Packet, Stop, Unsupported, ETHERTYPE_8021AD,
    ETHERTYPE_8021Q, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETH_HLEN, IPV4_MIN_HLEN,
    MAX_VLAN_TAGS, VLAN_TAG_LEN,
};

/// A frame that starts with an Ethernet header.
#[inline(always)]
pub fn ethernet<'a>(pkt: &Packet<'a>, wire_len: usize) -> Result<Found<'a>, Stop> {
    let eth = read::<ETH_HLEN>(pkt, 0, Layer::Ethernet)?;
    from_ethertype(pkt, eth.be16::<12>(), ETH_HLEN, wire_len)
}

/// The rest of a frame whose link header, ending at `off`, announced
/// `ethertype`: up to [`MAX_VLAN_TAGS`] VLAN tags, then IPv4 or IPv6.
#[inline(always)]
pub fn from_ethertype<'a>(
    pkt: &Packet<'a>,
    mut ethertype: u16,
    mut off: usize,
    wire_len: usize,
) -> Result<Found<'a>, Stop> {
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(ethertype) {
            break;
        }
        ethertype = read::<VLAN_TAG_LEN>(pkt, off, Layer::Vlan)?.be16::<2>();
        off += VLAN_TAG_LEN;
    }
    match ethertype {
        ETHERTYPE_IPV4 => ip::ipv4_packet(pkt, off, wire_len),
        ETHERTYPE_IPV6 => ip::ipv6_packet(pkt, off, wire_len),
        t if is_vlan(t) => Err(Stop::Unsupported(Unsupported::VlanTags)),
        _ => Err(Stop::Ignored),
    }
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_8021Q || ethertype == ETHERTYPE_8021AD || ethertype == ETHERTYPE_QINQ
}

/// Bytes read to learn the IP version of a frame without a link header:
/// 20, the shortest IP header. One would do, but the verifier cannot use a
/// bounds check of `start + 1`, which LLVM turns into `end > start`, and
/// the host reads as many so that a shorter frame is short on both sides,
/// whatever its first byte.
const VERSION_READ: usize = IPV4_MIN_HLEN;

/// A frame that starts with the IP header, its version in the first nibble.
#[inline(always)]
pub fn raw_ip<'a>(pkt: &Packet<'a>, wire_len: usize) -> Result<Found<'a>, Stop> {
    match read::<VERSION_READ>(pkt, 0, Layer::Ip)?.u8::<0>() >> 4 {
        4 => ip::ipv4_packet(pkt, 0, wire_len),
        6 => ip::ipv6_packet(pkt, 0, wire_len),
        v => Err(Stop::Malformed {
            layer: Layer::Ip,
            why: Malformed::Version(v),
        }),
    }
}
