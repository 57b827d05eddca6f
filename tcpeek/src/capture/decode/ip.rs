//! The network layer: IPv4 (with AH) and IPv6 with its extension headers,
//! down to the transport header.

use super::*;

impl Decoder {
    pub(super) fn ipv4(&self, pkt: &NetPacket<'_>) -> Result<Option<Decoded>, DecodeError> {
        const LAYER: &str = "IPv4 header";
        let ip = Ipv4HeaderSlice::from_slice(pkt.bytes).map_err(|e| match e {
            err::ipv4::HeaderSliceError::Len(e) => len_err(LAYER, e),
            err::ipv4::HeaderSliceError::Content(e) => malformed(LAYER, e),
        })?;
        let header_len = ip.slice().len();
        // A total length of 0 is what TSO / BIG TCP (Linux 6.3+) super-packets
        // carry when captured before segmentation; tcpdump's print-ip.c
        // ("GUESS_TSO") then takes the captured length. Do the same.
        let total_len = match usize::from(ip.total_len()) {
            0 => pkt.wire_len,
            n => n,
        };
        if total_len < header_len {
            return Err(DecodeError::Malformed {
                layer: LAYER,
                reason: format!(
                    "total length {total_len} is shorter than the {header_len}-byte header"
                ),
            });
        }
        let (body, complete) = ip_body(pkt, header_len, total_len, "IPv4 packet")?;

        // RFC 791: only the fragment at offset 0 carries the TCP header.
        if ip.fragments_offset().value() != 0 {
            return Ok(None);
        }
        let fragmented = ip.more_fragments();

        // RFC 4302: AH may sit between IPv4 and TCP.
        let (proto, segment, ext_len) = if ip.protocol() == ip_number::AUTH {
            let ah = IpAuthHeaderSlice::from_slice(body).map_err(|e| match e {
                err::ip_auth::HeaderSliceError::Len(e) => len_err("IP authentication header", e),
                err::ip_auth::HeaderSliceError::Content(e) => {
                    malformed("IP authentication header", e)
                }
            })?;
            let len = ah.slice().len();
            (ah.next_header(), body.get(len..).unwrap_or_default(), len)
        } else {
            (ip.protocol(), body, 0)
        };
        let transport = Transport {
            segment,
            declared_len: total_len.saturating_sub(header_len + ext_len),
            cut: !complete,
            verifiable: complete && !fragmented,
        };

        let src4 = ip.source();
        let dst4 = ip.destination();
        let event = match proto {
            ip_number::TCP => tcp_event(&transport, v4_addr(src4), v4_addr(dst4), FAMILY_V4)?,
            ip_number::ICMP => icmp4_event(transport.segment)?.map(Decoded::whole),
            _ => None,
        };
        let Some(event) = event else {
            return Ok(None);
        };

        // Checksums are checked only for packets that produce an event, so
        // that irrelevant traffic never counts as malformed.
        if self.checksum != ChecksumMode::None {
            // RFC 791 / RFC 1071: the one's complement sum over the header,
            // checksum field included, is all ones.
            verify(LAYER, ip.slice(), 10, Sum16BitWords::new())?;
        }
        if self.checks_transport(&transport, pkt.direction) {
            match proto {
                ip_number::TCP => {
                    // RFC 9293 section 3.1: pseudo-header of addresses,
                    // protocol and TCP length.
                    let pseudo = Sum16BitWords::new()
                        .add_slice(&src4)
                        .add_slice(&dst4)
                        .add_2bytes([0, ip_number::TCP.0])
                        .add_2bytes(len16(transport.segment.len()));
                    verify("TCP", transport.segment, 16, pseudo)?;
                }
                // RFC 792: the ICMP checksum covers the ICMP message only.
                _ => verify("ICMP", transport.segment, 2, Sum16BitWords::new())?,
            }
        }
        Ok(Some(event))
    }

    pub(super) fn ipv6(&self, pkt: &NetPacket<'_>) -> Result<Option<Decoded>, DecodeError> {
        const LAYER: &str = "IPv6 header";
        let ip = Ipv6HeaderSlice::from_slice(pkt.bytes).map_err(|e| match e {
            err::ipv6::HeaderSliceError::Len(e) => len_err(LAYER, e),
            err::ipv6::HeaderSliceError::Content(e) => malformed(LAYER, e),
        })?;
        // Payload length 0 is a jumbogram (RFC 2675) or a BIG TCP
        // super-packet: take the length from the wire.
        let payload_len = match usize::from(ip.payload_length()) {
            0 => pkt.wire_len.saturating_sub(IPV6_HEADER_LEN),
            n => n,
        };
        let (body, complete) = ip_body(
            pkt,
            IPV6_HEADER_LEN,
            IPV6_HEADER_LEN + payload_len,
            "IPv6 packet",
        )?;

        let Some(upper) = ipv6_upper_layer(ip.next_header(), body, "IPv6 extension header")? else {
            return Ok(None);
        };
        let proto = upper.proto;
        let transport = Transport {
            segment: upper.payload,
            declared_len: payload_len.saturating_sub(upper.ext_len),
            cut: !complete,
            // RFC 8200 section 8.1: with a routing header the pseudo-header
            // holds the final destination, which only the routing header
            // knows; skip verification rather than guess.
            verifiable: complete && !upper.fragmented && !upper.routed,
        };

        let src = ip.source();
        let dst = ip.destination();
        let event = match proto {
            ip_number::TCP => tcp_event(&transport, src, dst, FAMILY_V6)?,
            ip_number::IPV6_ICMP => icmp6_event(transport.segment)?.map(Decoded::whole),
            _ => None,
        };
        let Some(event) = event else {
            return Ok(None);
        };
        if self.checks_transport(&transport, pkt.direction) {
            // RFC 8200 section 8.1: the pseudo-header has a 32-bit length and
            // the upper-layer protocol number.
            let len = u32::try_from(transport.segment.len()).unwrap_or(u32::MAX);
            let pseudo = Sum16BitWords::new()
                .add_slice(&src)
                .add_slice(&dst)
                .add_slice(&len.to_be_bytes())
                .add_slice(&[0, 0, 0, proto.0]);
            let (layer, offset) = match proto {
                ip_number::TCP => ("TCP", 16),
                _ => ("ICMPv6", 2),
            };
            verify(layer, transport.segment, offset, pseudo)?;
        }
        Ok(Some(event))
    }

    /// Whether `-c 2` applies to this packet. Locally sent packets captured
    /// on the way out (SLL `PACKET_OUTGOING`) usually carry only the
    /// pseudo-header sum because the NIC finishes the checksum
    /// (`CHECKSUM_PARTIAL`, see the kernel's Documentation/networking/
    /// checksum-offloads.rst); checking them would reject every one.
    pub(super) fn checks_transport(&self, transport: &Transport<'_>, direction: u8) -> bool {
        self.checksum == ChecksumMode::IpTcp && transport.verifiable && direction != DIR_EGRESS
    }
}

/// The IP payload (after a `header_len`-byte header) of a packet whose IP
/// length field says `total_len`, and whether all of it was captured.
/// Ethernet padding beyond `total_len` is cut off.
pub(super) fn ip_body<'a>(
    pkt: &NetPacket<'a>,
    header_len: usize,
    total_len: usize,
    layer: &'static str,
) -> Result<(&'a [u8], bool), DecodeError> {
    if let Some(body) = pkt.bytes.get(header_len..total_len) {
        Ok((body, true))
    } else if pkt.snapped {
        Ok((pkt.bytes.get(header_len..).unwrap_or_default(), false))
    } else {
        // Not cut by the capture, yet shorter than the IP header says.
        Err(DecodeError::Truncated {
            layer,
            needed: total_len,
            available: pkt.bytes.len(),
        })
    }
}

/// Where an IPv6 extension header chain ends.
pub(super) struct Ipv6UpperLayer<'a> {
    /// The upper-layer protocol (TCP, ICMPv6, ...).
    pub(super) proto: IpNumber,
    /// The bytes after the last extension header.
    pub(super) payload: &'a [u8],
    /// Total length of the extension headers.
    pub(super) ext_len: usize,
    /// A fragment header with "more fragments" set (offset 0).
    pub(super) fragmented: bool,
    /// A routing header is present.
    pub(super) routed: bool,
}

/// Most extension headers tcpeek walks through; RFC 8200 section 4.1 allows
/// each at most once (destination options twice), so more is hostile.
pub(super) const MAX_IPV6_EXT_HEADERS: usize = 8;

/// Walks the IPv6 extension header chain starting with `next` (RFC 8200
/// section 4; AH: RFC 4302 section 2.2) to the upper-layer header. `Ok(None)`
/// for a fragment with a non-zero offset, which carries no upper-layer header
/// (RFC 8200 section 4.5) and whose bytes must not be parsed as one.
///
/// Hand-written rather than etherparse's `Ipv6ExtensionsSlice`: in 0.21,
/// iterating the slice returned by `from_slice_lax` after it stopped on an
/// error reads past the end of the buffer (unchecked `get_unchecked`; found
/// by tcpeek's fuzz target).
pub(super) fn ipv6_upper_layer<'a>(
    mut next: IpNumber,
    bytes: &'a [u8],
    layer: &'static str,
) -> Result<Option<Ipv6UpperLayer<'a>>, DecodeError> {
    let mut offset = 0;
    let mut fragmented = false;
    let mut routed = false;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let rest = bytes.get(offset..).unwrap_or_default();
        let len = match next {
            ip_number::IPV6_HOP_BY_HOP | ip_number::IPV6_ROUTE | ip_number::IPV6_DEST_OPTIONS => {
                // Length in 8-byte units, not counting the first 8 bytes.
                (usize::from(need(rest, 2, layer)?[1]) + 1) * 8
            }
            ip_number::IPV6_FRAG => 8,
            // AH counts 4-byte units, not counting the first 8 bytes.
            ip_number::AUTH => (usize::from(need(rest, 2, layer)?[1]) + 2) * 4,
            proto => {
                return Ok(Some(Ipv6UpperLayer {
                    proto,
                    payload: rest,
                    ext_len: offset,
                    fragmented,
                    routed,
                }))
            }
        };
        let header = need(rest, len, layer)?;
        match next {
            ip_number::IPV6_FRAG => {
                // Offset (13 bits) in 8-byte units, 2 reserved bits, M flag.
                let field = be16(header, 2);
                if field >> 3 != 0 {
                    return Ok(None);
                }
                fragmented |= field & 1 == 1;
            }
            ip_number::IPV6_ROUTE => routed = true,
            _ => {}
        }
        next = IpNumber(header[0]);
        offset += len;
    }
    Err(DecodeError::Unsupported {
        what: "chain of more than 8 IPv6 extension headers",
    })
}
