//! The link layer: Linux cooked headers' packet types, VLAN tags, and the
//! fast path for the common untagged Ethernet frame.

use super::*;

/// Maps the SLL packet type to an event direction.
pub(super) fn sll_direction(pkttype: u16) -> u8 {
    match pkttype {
        PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST => DIR_INGRESS,
        PACKET_OUTGOING => DIR_EGRESS,
        _ => DIR_UNKNOWN,
    }
}

/// Skips up to [`MAX_VLAN_TAGS`] VLAN tags, returning the inner EtherType and
/// the bytes after the last tag.
pub(super) fn strip_vlan_tags(
    mut ethertype: u16,
    mut rest: &[u8],
) -> Result<(u16, &[u8]), DecodeError> {
    let mut tags = 0;
    while ETHERTYPE_VLAN.contains(&ethertype) {
        if tags == MAX_VLAN_TAGS {
            return Err(DecodeError::Unsupported {
                what: "frame with more than two VLAN tags",
            });
        }
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|e| len_err("VLAN tag", e))?;
        ethertype = tag.ether_type().0;
        rest = rest.get(SingleVlanHeader::LEN..).unwrap_or_default();
        tags += 1;
    }
    Ok((ethertype, rest))
}

/// The common case decoded in a few loads: an untagged Ethernet frame with
/// IPv4 without options (or IPv6 without extension headers) carrying a
/// whole, unfragmented TCP segment. Anything else, or anything odd about
/// these, returns `None` and goes the full way through etherparse, which
/// gives exactly the same event for the frames accepted here (checked by
/// `fast_path_agrees_with_the_full_decoder`). Decoding is most of the
/// per-frame cost of reading a capture file.
#[inline]
pub(super) fn fast_ethernet_tcp(frame: &[u8]) -> Option<Event> {
    const ETH: usize = 14;
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?))
    };
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
    };
    let (family, ip_len, l4_len, saddr, daddr) = match be16(12)? {
        ETHERTYPE_IPV4 => {
            // Version 4, 20-byte header, no fragment offset, TCP.
            if *frame.get(ETH)? != 0x45 || be16(ETH + 6)? & 0x1fff != 0 || *frame.get(ETH + 9)? != 6
            {
                return None;
            }
            let total = usize::from(be16(ETH + 2)?);
            let mut s = [0; 16];
            let mut d = [0; 16];
            s[..4].copy_from_slice(frame.get(ETH + 12..ETH + 16)?);
            d[..4].copy_from_slice(frame.get(ETH + 16..ETH + 20)?);
            (FAMILY_V4, 20, total.checked_sub(20)?, s, d)
        }
        ETHERTYPE_IPV6 => {
            // Version 6, next header TCP, a payload length (not a jumbogram).
            if *frame.get(ETH)? >> 4 != 6 || *frame.get(ETH + 6)? != 6 {
                return None;
            }
            let payload = usize::from(be16(ETH + 4)?);
            if payload == 0 {
                return None;
            }
            let s: [u8; 16] = frame.get(ETH + 8..ETH + 24)?.try_into().ok()?;
            let d: [u8; 16] = frame.get(ETH + 24..ETH + 40)?.try_into().ok()?;
            (FAMILY_V6, IPV6_HEADER_LEN, payload, s, d)
        }
        _ => return None,
    };
    let tcp = ETH + ip_len;
    // The whole segment was captured and holds the whole TCP header.
    if tcp + l4_len > frame.len() {
        return None;
    }
    let doff = usize::from(*frame.get(tcp + 12)? >> 4) * 4;
    if doff < 20 || doff > l4_len {
        return None;
    }
    Some(Event {
        saddr,
        daddr,
        seq: be32(tcp + 4)?,
        ack: be32(tcp + 8)?,
        sport: be16(tcp)?,
        dport: be16(tcp + 2)?,
        payload_len: u16::try_from(l4_len - doff).unwrap_or(u16::MAX),
        kind: KIND_TCP,
        family,
        tcp_flags: *frame.get(tcp + TCP_FLAGS_OFFSET)?,
        direction: DIR_UNKNOWN,
        ..Event::ZERO
    })
}
