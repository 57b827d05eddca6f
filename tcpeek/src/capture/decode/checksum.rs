//! Internet checksums for `-c` (RFC 1071), over what the walk found.

use etherparse::checksum::Sum16BitWords;
use tcpeek_common::{
    wire::{Found, Ip, IPPROTO_ICMPV6, IPPROTO_TCP},
    DIR_EGRESS,
};

use super::{ChecksumMode, DecodeError};

/// Checks the checksums `mode` selects on the frame the walk found `found`
/// in: the IPv4 header's (`-c 1`), and the TCP, ICMP or ICMPv6 checksum of
/// a whole, unfragmented segment (`-c 2`).
///
/// Locally sent packets captured on the way out (SLL `PACKET_OUTGOING`)
/// skip the transport check: they usually carry only the pseudo-header sum
/// because the NIC finishes the checksum (`CHECKSUM_PARTIAL`, see the
/// kernel's Documentation/networking/checksum-offloads.rst); checking them
/// would reject every one.
pub(super) fn check(
    mode: ChecksumMode,
    frame: &[u8],
    found: &Found<'_>,
    direction: u8,
) -> Result<(), DecodeError> {
    if mode == ChecksumMode::None {
        return Ok(());
    }
    let (ip, tcp) = match found {
        Found::Tcp(t) => (&t.ip, true),
        Found::Unreachable(u) => (&u.ip, false),
    };
    if !ip.v6 {
        // RFC 791 / RFC 1071: the one's complement sum over the header,
        // checksum field included, is all ones.
        let header = frame.get(ip.l3..ip.l3 + ip.header_len).unwrap_or_default();
        verify("IPv4 header", header, 10, Sum16BitWords::new())?;
    }
    // RFC 8200 section 8.1: with a routing header the pseudo-header holds
    // the final destination, which only the routing header knows; skip
    // verification rather than guess.
    let verifiable = ip.complete && !ip.fragmented && !ip.routed;
    if mode != ChecksumMode::IpTcp || !verifiable || direction == DIR_EGRESS {
        return Ok(());
    }
    let segment = frame.get(ip.l4..ip.end()).unwrap_or_default();
    match (ip.v6, tcp) {
        // RFC 9293 section 3.1: pseudo-header of addresses, protocol and
        // TCP length.
        (false, true) => {
            let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
            let pseudo = addresses(frame, ip)
                .add_2bytes([0, IPPROTO_TCP])
                .add_2bytes(len.to_be_bytes());
            verify("TCP", segment, 16, pseudo)
        }
        // RFC 792: the ICMP checksum covers the ICMP message only.
        (false, false) => verify("ICMP", segment, 2, Sum16BitWords::new()),
        // RFC 8200 section 8.1: a 32-bit length and the upper-layer
        // protocol number.
        (true, _) => {
            let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
            let (layer, offset, proto) = if tcp {
                ("TCP", 16, IPPROTO_TCP)
            } else {
                ("ICMPv6", 2, IPPROTO_ICMPV6)
            };
            let pseudo = addresses(frame, ip)
                .add_slice(&len.to_be_bytes())
                .add_slice(&[0, 0, 0, proto]);
            verify(layer, segment, offset, pseudo)
        }
    }
}

/// The pseudo-header's source and destination addresses.
fn addresses(frame: &[u8], ip: &Ip) -> Sum16BitWords {
    let (at, len) = if ip.v6 { (8, 32) } else { (12, 8) };
    let bytes = frame.get(ip.l3 + at..ip.l3 + at + len).unwrap_or_default();
    Sum16BitWords::new().add_slice(bytes)
}

/// Verifies an Internet checksum (RFC 1071) over `bytes` whose checksum
/// field is at `offset`, starting from `pseudo` (a pseudo-header sum or
/// zero). The sum over everything, checksum included, must be all ones.
fn verify(
    layer: &'static str,
    bytes: &[u8],
    offset: usize,
    pseudo: Sum16BitWords,
) -> Result<(), DecodeError> {
    let (Some(before), Some(field), Some(after)) = (
        bytes.get(..offset),
        bytes.get(offset..offset + 2),
        bytes.get(offset + 2..),
    ) else {
        return Err(DecodeError::Truncated {
            layer,
            needed: offset + 2,
            available: bytes.len(),
        });
    };
    let stored = u16::from_be_bytes([field[0], field[1]]);
    // `offset` is even, so the words on either side of the field stay
    // aligned when summed separately.
    let without_field = pseudo.add_slice(before).add_slice(after);
    let with_field = without_field.clone().add_2bytes([field[0], field[1]]);
    if with_field.ones_complement() == 0 {
        Ok(())
    } else {
        Err(DecodeError::BadChecksum {
            layer,
            stored,
            // etherparse sums native-endian words, so its result is in
            // native byte order; turn it into the value as it would be
            // read from the packet.
            computed: u16::from_be_bytes(without_field.ones_complement().to_ne_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_field_past_the_end_is_a_truncation_naming_its_end() {
        // The walk hands over whole headers, but a header cut inside its
        // checksum field must still say how many bytes the check needed.
        for (len, offset) in [(0, 10), (17, 16), (3, 2)] {
            let bytes = vec![0; len];
            match verify("TCP", &bytes, offset, Sum16BitWords::new()) {
                Err(DecodeError::Truncated {
                    layer: "TCP",
                    needed,
                    available,
                }) => assert_eq!((needed, available), (offset + 2, len)),
                other => panic!("{len} bytes, field at {offset}: {other:?}"),
            }
        }
        // All ones over everything, checksum included: accepted.
        assert!(verify("ICMP", &[0xff, 0xff, 0, 0], 2, Sum16BitWords::new()).is_ok());
    }
}
