//! The network layer: IPv4 with options and AH, IPv6 with its extension
//! headers; also the IP header an ICMP error quotes.

use super::{
    read, transport, within, Found, Ip, Layer, Malformed, Packet, Stop, Unsupported, IPPROTO_AH,
    IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPV4_MIN_HLEN, IPV6_HLEN,
    MAX_IPV6_EXT,
};

/// An IPv4 packet at `l3`, then its transport.
#[inline(always)]
pub(super) fn ipv4_packet<'a>(
    pkt: &Packet<'a>,
    l3: usize,
    wire_len: usize,
) -> Result<Found<'a>, Stop> {
    // No limit: readable bytes were on the wire.
    let (h, header_len) = ipv4_header(pkt, l3, usize::MAX, Layer::Ipv4)?;
    // The header was read, and no more can be read than was on the wire.
    let on_wire = wire_len - l3;
    // Total length 0 is what TSO / BIG TCP super-packets carry when seen
    // before segmentation; tcpdump ("GUESS_TSO") then takes the length on
    // the wire, and so does tcpeek.
    let total = match h.be16::<2>() as usize {
        0 => on_wire,
        n => n,
    };
    if total < header_len {
        return Err(Stop::Malformed {
            layer: Layer::Ipv4,
            why: Malformed::TotalLength {
                total,
                header: header_len,
            },
        });
    }
    if total > on_wire {
        return Err(Stop::Truncated {
            layer: Layer::Ipv4Packet,
            needed: total,
            available: on_wire,
        });
    }
    // RFC 791: only the fragment at offset 0 carries the layer-4 header.
    let frag = h.be16::<6>();
    if frag & 0x1fff != 0 {
        return Err(Stop::Ignored);
    }
    let end = l3 + total;
    let (mut proto, mut l4) = (h.u8::<9>(), l3 + header_len);
    if proto == IPPROTO_AH {
        // RFC 4302: AH may sit between IPv4 and TCP (Linux then delivers
        // the segment to TCP).
        let (next, len) = ah(pkt, l4, end, Layer::Ah)?;
        proto = next;
        l4 += len;
    }
    let ip = Ip {
        l3,
        header_len,
        l4,
        proto,
        v6: false,
        l4_len: (end - l4) as u32,
        complete: pkt.header::<1>(end - 1).is_ok(),
        fragmented: frag & 0x2000 != 0,
        routed: false,
    };
    transport::layer4(pkt, ip)
}

/// An IPv4 header at `l3` that must end by `limit`: its first 20 bytes and
/// its length.
#[inline(always)]
fn ipv4_header<'a>(
    pkt: &Packet<'a>,
    l3: usize,
    limit: usize,
    layer: Layer,
) -> Result<(super::Header<'a, IPV4_MIN_HLEN>, usize), Stop> {
    let h = within::<IPV4_MIN_HLEN>(pkt, l3, limit, layer)?;
    let vihl = h.u8::<0>();
    if vihl >> 4 != 4 {
        return Err(Stop::Malformed {
            layer,
            why: Malformed::Version(vihl >> 4),
        });
    }
    let header_len = ((vihl & 0x0f) as usize) * 4;
    if header_len < IPV4_MIN_HLEN {
        return Err(Stop::Malformed {
            layer,
            why: Malformed::HeaderLength(header_len),
        });
    }
    if header_len > IPV4_MIN_HLEN {
        // Options: the whole header must be there too.
        span(pkt, l3, header_len, limit, layer)?;
    }
    Ok((h, header_len))
}

/// An IPv6 packet at `l3`, then its transport.
#[inline(always)]
pub(super) fn ipv6_packet<'a>(
    pkt: &Packet<'a>,
    l3: usize,
    wire_len: usize,
) -> Result<Found<'a>, Stop> {
    // Readable bytes were on the wire: no need to check `wire_len` too.
    let h = read::<IPV6_HLEN>(pkt, l3, Layer::Ipv6)?;
    let version = h.u8::<0>() >> 4;
    if version != 6 {
        return Err(Stop::Malformed {
            layer: Layer::Ipv6,
            why: Malformed::Version(version),
        });
    }
    let on_wire = wire_len - l3;
    // Payload length 0: a jumbogram (RFC 2675) or a BIG TCP super-packet;
    // the length on the wire says how long it is.
    let total = match h.be16::<4>() as usize {
        0 => on_wire,
        n => IPV6_HLEN + n,
    };
    if total > on_wire {
        return Err(Stop::Truncated {
            layer: Layer::Ipv6Packet,
            needed: total,
            available: on_wire,
        });
    }
    let end = l3 + total;
    let Some(chain) = extensions(pkt, h.u8::<6>(), l3 + IPV6_HLEN, end, Layer::Ipv6Ext)? else {
        return Err(Stop::Ignored);
    };
    let ip = Ip {
        l3,
        header_len: IPV6_HLEN,
        l4: chain.end,
        proto: chain.proto,
        v6: true,
        l4_len: (end - chain.end) as u32,
        complete: pkt.header::<1>(end - 1).is_ok(),
        fragmented: chain.fragmented,
        routed: chain.routed,
    };
    transport::layer4(pkt, ip)
}

/// The IPv4 header quoted at `l3` by an ICMP error ending at `limit`. Its
/// total length is ignored: the quote is cut short. AH is not followed:
/// Linux hands an error quoting AH to AH, not to TCP (icmp_unreach).
#[inline(always)]
pub(super) fn quoted_ipv4(pkt: &Packet<'_>, l3: usize, limit: usize) -> Result<Ip, Stop> {
    let (h, header_len) = ipv4_header(pkt, l3, limit, Layer::QuotedIpv4)?;
    if h.be16::<6>() & 0x1fff != 0 {
        return Err(Stop::Ignored);
    }
    Ok(Ip {
        l3,
        header_len,
        l4: l3 + header_len,
        proto: h.u8::<9>(),
        v6: false,
        l4_len: 0,
        complete: false,
        fragmented: false,
        routed: false,
    })
}

/// The IPv6 header quoted at `l3` by an ICMPv6 error ending at `limit`,
/// through its extension headers (as Linux's icmpv6_notify does). Its
/// payload length is ignored: the quote is cut short (RFC 4443 section
/// 2.4 (c)).
#[inline(always)]
pub(super) fn quoted_ipv6(pkt: &Packet<'_>, l3: usize, limit: usize) -> Result<Ip, Stop> {
    let h = within::<IPV6_HLEN>(pkt, l3, limit, Layer::QuotedIpv6)?;
    let version = h.u8::<0>() >> 4;
    if version != 6 {
        return Err(Stop::Malformed {
            layer: Layer::QuotedIpv6,
            why: Malformed::Version(version),
        });
    }
    let Some(chain) = extensions(
        pkt,
        h.u8::<6>(),
        l3 + IPV6_HLEN,
        limit,
        Layer::QuotedIpv6Ext,
    )?
    else {
        return Err(Stop::Ignored);
    };
    Ok(Ip {
        l3,
        header_len: IPV6_HLEN,
        l4: chain.end,
        proto: chain.proto,
        v6: true,
        l4_len: 0,
        complete: false,
        fragmented: false,
        routed: false,
    })
}

/// Where an IPv6 extension header chain ends.
struct Chain {
    /// The upper-layer protocol.
    proto: u8,
    /// Offset of the upper-layer header.
    end: usize,
    /// A fragment header at offset 0 with "more fragments" set.
    fragmented: bool,
    routed: bool,
}

/// Walks the extension headers from `next` at `off` (RFC 8200 section 4;
/// AH: RFC 4302 section 2.2), all ending by `limit`. `None` for a fragment
/// at a non-zero offset, which carries no upper-layer header (RFC 8200
/// section 4.5).
#[inline(always)]
fn extensions(
    pkt: &Packet<'_>,
    mut next: u8,
    mut off: usize,
    limit: usize,
    layer: Layer,
) -> Result<Option<Chain>, Stop> {
    let (mut fragmented, mut routed) = (false, false);
    for _ in 0..MAX_IPV6_EXT {
        let (after, len) = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let e = within::<2>(pkt, off, limit, layer)?;
                routed |= next == IPPROTO_ROUTING;
                // Length in 8-byte units, not counting the first 8 bytes.
                (e.u8::<0>(), (e.u8::<1>() as usize + 1) * 8)
            }
            IPPROTO_FRAGMENT => {
                let e = within::<8>(pkt, off, limit, layer)?;
                // Offset (13 bits, 8-byte units), 2 reserved bits, M flag.
                let field = e.be16::<2>();
                if field & 0xfff8 != 0 {
                    return Ok(None);
                }
                fragmented |= field & 1 == 1;
                (e.u8::<0>(), 8)
            }
            IPPROTO_AH => ah(pkt, off, limit, layer)?,
            proto => {
                return Ok(Some(Chain {
                    proto,
                    end: off,
                    fragmented,
                    routed,
                }))
            }
        };
        // The whole header is there (every extension header is at least 8
        // bytes long).
        span(pkt, off, len, limit, layer)?;
        next = after;
        off += len;
    }
    match next {
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT | IPPROTO_AH => {
            Err(Stop::Unsupported(Unsupported::Ipv6Chain))
        }
        proto => Ok(Some(Chain {
            proto,
            end: off,
            fragmented,
            routed,
        })),
    }
}

/// An AH header at `off` ending by `limit` (RFC 4302 section 2.2): the
/// next protocol and its length, in 4-byte units minus 2. A length field of
/// 0 (8 bytes) is shorter than AH's fixed fields.
#[inline(always)]
fn ah(pkt: &Packet<'_>, off: usize, limit: usize, layer: Layer) -> Result<(u8, usize), Stop> {
    let e = within::<2>(pkt, off, limit, layer)?;
    if e.u8::<1>() == 0 {
        return Err(Stop::Malformed {
            layer,
            why: Malformed::AhLength,
        });
    }
    let len = (e.u8::<1>() as usize + 2) * 4;
    if layer == Layer::Ah {
        // After IPv4 nothing else checks that the header is whole.
        span(pkt, off, len, limit, layer)?;
    }
    Ok((e.u8::<0>(), len))
}

/// Checks that the `len`-byte header at `off` (at least 8 bytes) ends by
/// `limit` and is readable, by reading its last 8 bytes.
#[inline(always)]
fn span(pkt: &Packet<'_>, off: usize, len: usize, limit: usize, layer: Layer) -> Result<(), Stop> {
    if off + len > limit {
        return Err(Stop::Truncated {
            layer,
            needed: len,
            available: limit.saturating_sub(off),
        });
    }
    match pkt.header::<8>(off + len - 8) {
        Ok(_) => Ok(()),
        Err(_) => Err(Stop::Short {
            layer,
            needed: len,
            available: pkt.available(off),
        }),
    }
}
