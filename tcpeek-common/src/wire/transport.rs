//! The transport layer: a TCP header (read up to its flags), and ICMP /
//! ICMPv6 destination-unreachable errors quoting one.

use super::{
    ip, within, Found, Ip, Layer, Malformed, Packet, Stop, Tcp, Unreachable, ICMPV6_DEST_UNREACH,
    ICMP_DEST_UNREACH, ICMP_HLEN, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, QUOTED_TCP_MIN,
    TCP_FLAGS_OFFSET, TCP_MIN_HLEN, TCP_VERDICT_LEN,
};

/// What `ip` carries.
#[inline(always)]
pub(super) fn layer4<'a>(pkt: &Packet<'a>, ip: Ip) -> Result<Found<'a>, Stop> {
    match (ip.proto, ip.v6) {
        (IPPROTO_TCP, _) => tcp(pkt, ip).map(Found::Tcp),
        (IPPROTO_ICMP, false) | (IPPROTO_ICMPV6, true) => {
            unreachable(pkt, ip).map(Found::Unreachable)
        }
        _ => Err(Stop::Ignored),
    }
}

/// A TCP header at `ip.l4`. Linux drops a segment whose data offset is
/// below 5 words or whose header ends past the packet (tcp_v4_rcv,
/// tcp_v6_rcv), so both are errors here too.
#[inline(always)]
fn tcp<'a>(pkt: &Packet<'a>, ip: Ip) -> Result<Tcp<'a>, Stop> {
    let th = pkt
        .header::<TCP_VERDICT_LEN>(ip.l4)
        .map_err(|u| Stop::Short {
            layer: Layer::Tcp,
            needed: TCP_MIN_HLEN,
            available: u.available,
        })?;
    let doff = ((th.u8::<12>() >> 4) as u32) * 4;
    if doff < TCP_MIN_HLEN as u32 {
        return Err(Stop::Malformed {
            layer: Layer::Tcp,
            why: Malformed::DataOffset(doff as usize),
        });
    }
    if doff > ip.l4_len {
        return Err(Stop::Truncated {
            layer: Layer::Tcp,
            needed: doff as usize,
            available: ip.l4_len as usize,
        });
    }
    Ok(Tcp {
        ip,
        th,
        doff,
        // The header's last 4 bytes (doff >= 20) are not readable.
        cut: pkt.header::<4>(ip.l4 + doff as usize - 4).is_err(),
    })
}

/// An ICMP (type 3) or ICMPv6 (type 1) error at `ip.l4` quoting a TCP
/// segment: the quoted IP header and at least the first 8 bytes of its TCP
/// header (RFC 792 only guarantees those: ports and sequence number).
#[inline(always)]
fn unreachable<'a>(pkt: &Packet<'a>, ip: Ip) -> Result<Unreachable<'a>, Stop> {
    let end = ip.end();
    let (layer, dest_unreach) = if ip.v6 {
        (Layer::Icmpv6, ICMPV6_DEST_UNREACH)
    } else {
        (Layer::Icmp, ICMP_DEST_UNREACH)
    };
    let h = within::<ICMP_HLEN>(pkt, ip.l4, end, layer)?;
    let (icmp_type, icmp_code) = (h.u8::<0>(), h.u8::<1>());
    if icmp_type != dest_unreach {
        return Err(Stop::Ignored);
    }
    let quoted = if ip.v6 {
        ip::quoted_ipv6(pkt, ip.l4 + ICMP_HLEN, end)?
    } else {
        ip::quoted_ipv4(pkt, ip.l4 + ICMP_HLEN, end)?
    };
    if quoted.proto != IPPROTO_TCP {
        return Err(Stop::Ignored);
    }
    let th = within::<QUOTED_TCP_MIN>(pkt, quoted.l4, end, Layer::QuotedTcp)?;
    // The flags byte is at offset 13: only there if the router quoted more
    // than RFC 792's minimum (Linux quotes as much as fits).
    let flags = match within::<TCP_VERDICT_LEN>(pkt, quoted.l4, end, Layer::QuotedTcp) {
        Ok(t) => t.u8::<TCP_FLAGS_OFFSET>(),
        Err(_) => 0,
    };
    Ok(Unreachable {
        ip,
        icmp_type,
        icmp_code,
        quoted,
        th,
        flags,
    })
}
