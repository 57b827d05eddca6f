//! The transport layer: a TCP header (whole, or cut after the bytes a
//! verdict reads) and ICMP/ICMPv6 destination-unreachable quoting one.

use super::*;

pub(super) fn tcp_event(
    transport: &Transport<'_>,
    saddr: [u8; 16],
    daddr: [u8; 16],
    family: u8,
) -> Result<Option<Decoded>, DecodeError> {
    const LAYER: &str = "TCP header";
    let tcp = match TcpHeaderSlice::from_slice(transport.segment) {
        Ok(tcp) => tcp,
        // The capture cut the options off: the fixed header is enough.
        Err(err::tcp::HeaderSliceError::Len(_))
            if transport.cut && transport.segment.len() >= TCP_VERDICT_LEN =>
        {
            return fixed_tcp_event(transport, saddr, daddr, family).map(Some);
        }
        Err(err::tcp::HeaderSliceError::Len(e)) => return Err(len_err(LAYER, e)),
        Err(err::tcp::HeaderSliceError::Content(e)) => return Err(malformed(LAYER, e)),
    };
    let header_len = tcp.slice().len();
    let flags = tcp.slice().get(TCP_FLAGS_OFFSET).copied().unwrap_or(0);
    let payload = transport.declared_len.saturating_sub(header_len);
    Ok(Some(Decoded::whole(Event {
        saddr,
        daddr,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        payload_len: u16::try_from(payload).unwrap_or(u16::MAX),
        kind: KIND_TCP,
        family,
        tcp_flags: flags,
        ..Event::ZERO
    })))
}

/// The event of a TCP segment whose header the capture cut after the bytes
/// a verdict reads ([`TCP_VERDICT_LEN`]; the caller checked there are at
/// least that many). The data
/// offset must still be possible (RFC 9293 section 3.1: at least 5 words),
/// and the payload length comes from the IP length minus the data offset,
/// as for a whole header.
pub(super) fn fixed_tcp_event(
    transport: &Transport<'_>,
    saddr: [u8; 16],
    daddr: [u8; 16],
    family: u8,
) -> Result<Decoded, DecodeError> {
    let head = need(transport.segment, TCP_VERDICT_LEN, "TCP header")?;
    let be32 = |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let data_offset = usize::from(head[12] >> 4) * 4;
    if data_offset < TCP_FIXED_LEN {
        return Err(DecodeError::Malformed {
            layer: "TCP header",
            reason: format!("data offset {data_offset} is shorter than the 20-byte header"),
        });
    }
    let payload = transport.declared_len.saturating_sub(data_offset);
    Ok(Decoded {
        event: Event {
            saddr,
            daddr,
            seq: be32(4),
            ack: be32(8),
            sport: be16(head, 0),
            dport: be16(head, 2),
            payload_len: u16::try_from(payload).unwrap_or(u16::MAX),
            kind: KIND_TCP,
            family,
            tcp_flags: head[TCP_FLAGS_OFFSET],
            ..Event::ZERO
        },
        header_cut: true,
    })
}

/// ICMP destination unreachable (type 3, any code) quoting IPv4 + TCP.
pub(super) fn icmp4_event(icmp: &[u8]) -> Result<Option<Event>, DecodeError> {
    let header = need(icmp, ICMP_HEADER_LEN, "ICMP header")?;
    let (icmp_type, icmp_code) = (header[0], header[1]);
    if icmp_type != ICMP_DEST_UNREACH {
        return Ok(None);
    }
    const LAYER: &str = "quoted IPv4 header";
    let quote = icmp.get(ICMP_HEADER_LEN..).unwrap_or_default();
    let ip = Ipv4HeaderSlice::from_slice(quote).map_err(|e| match e {
        err::ipv4::HeaderSliceError::Len(e) => len_err(LAYER, e),
        err::ipv4::HeaderSliceError::Content(e) => malformed(LAYER, e),
    })?;
    if ip.protocol() != ip_number::TCP || ip.fragments_offset().value() != 0 {
        return Ok(None);
    }
    let tcp = quote.get(ip.slice().len()..).unwrap_or_default();
    quoted_tcp_event(
        tcp,
        v4_addr(ip.source()),
        v4_addr(ip.destination()),
        FAMILY_V4,
        icmp_type,
        icmp_code,
    )
}

/// ICMPv6 destination unreachable (type 1, any code) quoting IPv6 + TCP.
pub(super) fn icmp6_event(icmp: &[u8]) -> Result<Option<Event>, DecodeError> {
    let header = need(icmp, ICMP_HEADER_LEN, "ICMPv6 header")?;
    let (icmp_type, icmp_code) = (header[0], header[1]);
    if icmp_type != ICMPV6_DEST_UNREACH {
        return Ok(None);
    }
    const LAYER: &str = "quoted IPv6 header";
    let quote = icmp.get(ICMP_HEADER_LEN..).unwrap_or_default();
    let ip = Ipv6HeaderSlice::from_slice(quote).map_err(|e| match e {
        err::ipv6::HeaderSliceError::Len(e) => len_err(LAYER, e),
        err::ipv6::HeaderSliceError::Content(e) => malformed(LAYER, e),
    })?;
    // The quote is cut short by the ICMPv6 size limit (RFC 4443 section
    // 2.4 (c)), so its payload length field does not describe it.
    let rest = quote.get(IPV6_HEADER_LEN..).unwrap_or_default();
    let Some(upper) = ipv6_upper_layer(ip.next_header(), rest, "quoted IPv6 extension header")?
    else {
        return Ok(None);
    };
    if upper.proto != ip_number::TCP {
        return Ok(None);
    }
    quoted_tcp_event(
        upper.payload,
        ip.source(),
        ip.destination(),
        FAMILY_V6,
        icmp_type,
        icmp_code,
    )
}

/// The event for an ICMP error quoting `tcp` (at least ports and sequence
/// number; the flags only if the quote reaches byte 13).
pub(super) fn quoted_tcp_event(
    tcp: &[u8],
    saddr: [u8; 16],
    daddr: [u8; 16],
    family: u8,
    icmp_type: u8,
    icmp_code: u8,
) -> Result<Option<Event>, DecodeError> {
    let head = need(tcp, QUOTED_TCP_MIN, "quoted TCP header")?;
    Ok(Some(Event {
        saddr,
        daddr,
        sport: be16(head, 0),
        dport: be16(head, 2),
        seq: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
        kind: KIND_ICMP_UNREACH,
        family,
        tcp_flags: tcp.get(TCP_FLAGS_OFFSET).copied().unwrap_or(0),
        icmp_type,
        icmp_code,
        ..Event::ZERO
    }))
}
