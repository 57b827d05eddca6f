//! Wire decoder for the libpcap backend: one captured frame in, at most one
//! [`Event`] out.
//!
//! The packet walk is the one the eBPF classifier runs in the kernel,
//! [`tcpeek_common::wire`]: both backends decode the same bytes the same
//! way, by construction. This module adds what only captures have:
//! - the Linux cooked headers (SLL, SLL2: `link`), which never reach the
//!   kernel classifier, with the direction their packet type gives;
//! - the `-c` checksum checks (`checksum`);
//! - errors that name the header and the byte counts, counted as
//!   `malformed` by the caller.
//!
//! Guarantee: [`Decoder::decode`] never panics, whatever the bytes and
//! whatever `wire_len` claims: every read goes through the walk's
//! bounds-checked view or a checked slice access.
//!
//! Snaplen: a frame may be cut short by the capture (`frame.len() <
//! wire_len`). Link and IP headers must still be complete; lengths
//! (`payload_len`) come from the IP header, not from what was captured, and
//! transport checksums are only verified when the whole segment is present.
//! The TCP header may be cut after its first 14 bytes: old tcpdump defaults
//! (`-s 68`, `-s 54`) cut the options off every SYN, and the handshake
//! verdict needs only ports, sequence and acknowledgement numbers, data
//! offset and flags (RFC 9293 section 3.1). Such frames decode, and
//! [`Decoded::header_cut`] says so, so that the capture can count them.

mod checksum;
mod link;

use tcpeek_common::{
    wire::{self, Found, Packet, Stop},
    Event, DIR_UNKNOWN,
};

/// The link layers the libpcap backend can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// `DLT_EN10MB`: Ethernet II, optionally VLAN tagged.
    Ethernet,
    /// `DLT_LINUX_SLL`: Linux cooked capture v1 (the `any` device on older
    /// libpcap).
    LinuxSll,
    /// `DLT_LINUX_SLL2`: Linux cooked capture v2 (the `any` device since
    /// libpcap 1.10).
    LinuxSll2,
    /// `DLT_RAW` and friends: the frame starts with the IP header.
    RawIp,
}

impl LinkType {
    /// Maps a libpcap data link type (`pcap_datalink(3PCAP)`) to a link type,
    /// `None` when tcpeek cannot decode it.
    ///
    /// Raw IP has several numbers (see `pcap-linktype(7)` and libpcap's
    /// `pcap/dlt.h`): `DLT_RAW` is 12 on most systems and 14 on OpenBSD,
    /// files store `LINKTYPE_RAW` (101), and `LINKTYPE_IPV4`/`LINKTYPE_IPV6`
    /// (228/229) are raw IP restricted to one version.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            12 | 14 | 101 | 228 | 229 => Some(LinkType::RawIp),
            _ => None,
        }
    }

    /// The name tcpdump prints for the link type (libpcap's
    /// `pcap_datalink_val_to_name` and `_description`).
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "EN10MB (Ethernet)",
            LinkType::LinuxSll => "LINUX_SLL (Linux cooked v1)",
            LinkType::LinuxSll2 => "LINUX_SLL2 (Linux cooked v2)",
            LinkType::RawIp => "RAW (Raw IP)",
        }
    }
}

/// Which checksums to verify (`-c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// `-c 0`: verify nothing.
    #[default]
    None,
    /// `-c 1`: verify the IPv4 header checksum (IPv6 has none).
    Ip,
    /// `-c 2`: also verify TCP, ICMP and ICMPv6 checksums.
    IpTcp,
}

impl ChecksumMode {
    /// The mode for a `-c` level, `None` for anything but 0, 1 or 2.
    pub fn from_level(n: u8) -> Option<ChecksumMode> {
        match n {
            0 => Some(ChecksumMode::None),
            1 => Some(ChecksumMode::Ip),
            2 => Some(ChecksumMode::IpTcp),
            _ => None,
        }
    }
}

/// Why a frame could not be turned into an event. The caller counts these
/// as `malformed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A header is cut short (by the sender or by the snaplen).
    #[error("truncated {layer}: needs {needed} bytes, only {available} available")]
    Truncated {
        layer: &'static str,
        needed: usize,
        available: usize,
    },
    /// A header field holds an impossible value.
    #[error("malformed {layer}: {why}")]
    Malformed {
        layer: &'static str,
        why: wire::Malformed,
    },
    /// A well-formed packet tcpeek does not decode (e.g. a third VLAN tag).
    #[error("unsupported {what}")]
    Unsupported { what: &'static str },
    /// A checksum selected by `-c` does not match.
    #[error("bad {layer} checksum: 0x{stored:04x} in the packet, 0x{computed:04x} computed")]
    BadChecksum {
        layer: &'static str,
        stored: u16,
        computed: u16,
    },
}

impl DecodeError {
    /// The error for a walk that stopped at `stop`; `None` for
    /// [`Stop::Ignored`], which is no error.
    fn of(stop: Stop) -> Option<DecodeError> {
        Some(match stop {
            Stop::Ignored => return None,
            Stop::Short {
                layer,
                needed,
                available,
            }
            | Stop::Truncated {
                layer,
                needed,
                available,
            } => DecodeError::Truncated {
                layer: layer.name(),
                needed,
                available,
            },
            Stop::Malformed { layer, why } => DecodeError::Malformed {
                layer: layer.name(),
                why,
            },
            Stop::Unsupported(u) => DecodeError::Unsupported { what: u.what() },
        })
    }
}

/// A relevant frame, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub event: Event,
    /// The capture cut the TCP header short (inside its options); the event
    /// comes from the fixed 20-byte header.
    pub header_cut: bool,
}

/// Turns frames of one link type into events.
#[derive(Clone, Debug)]
pub struct Decoder {
    link: LinkType,
    checksum: ChecksumMode,
}

impl Decoder {
    /// A decoder for frames of `link`, verifying checksums per `checksum`.
    pub fn new(link: LinkType, checksum: ChecksumMode) -> Decoder {
        Decoder { link, checksum }
    }

    /// The link type this decoder was made for.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Decodes one frame.
    ///
    /// `Ok(None)`: not a packet tcpeek cares about (not TCP, ICMP other than
    /// destination-unreachable quoting TCP, non-first IP fragment, ...).
    /// `Err`: truncated, malformed, unsupported, or a bad checksum; the caller
    /// counts it as `malformed`. `wire_len` is the original length on the
    /// wire: the frame may be shorter because of the snaplen.
    pub fn decode(
        &self,
        ts_ns: u64,
        frame: &[u8],
        wire_len: usize,
    ) -> Result<Option<Event>, DecodeError> {
        Ok(self.decode_frame(ts_ns, frame, wire_len)?.map(|d| d.event))
    }

    /// [`Decoder::decode`], also saying whether the TCP header was cut short
    /// by the capture (see the module documentation).
    pub fn decode_frame(
        &self,
        ts_ns: u64,
        frame: &[u8],
        wire_len: usize,
    ) -> Result<Option<Decoded>, DecodeError> {
        // A `wire_len` smaller than what was captured is nonsense (a broken
        // file); trust the bytes.
        let wire_len = wire_len.max(frame.len());
        let pkt = Packet::new(frame);
        let (walked, direction) = match self.link {
            LinkType::Ethernet => (wire::ethernet(&pkt, wire_len), DIR_UNKNOWN),
            LinkType::RawIp => (wire::raw_ip(&pkt, wire_len), DIR_UNKNOWN),
            LinkType::LinuxSll | LinkType::LinuxSll2 => {
                let cooked = link::Cooked::parse(self.link, frame)?;
                (
                    wire::from_ethertype(&pkt, cooked.protocol, cooked.len, wire_len),
                    cooked.direction,
                )
            }
        };
        let found = match walked {
            Ok(found) => found,
            Err(stop) => return DecodeError::of(stop).map_or(Ok(None), Err),
        };
        // Checksums are checked only for packets that produce an event, so
        // that irrelevant traffic never counts as malformed.
        checksum::check(self.checksum, frame, &found, direction)?;
        let mut event = found.event(&pkt, direction).map_err(|stop| {
            DecodeError::of(stop).unwrap_or(DecodeError::Unsupported {
                what: "packet the walk found but cannot describe",
            })
        })?;
        event.ts_ns = ts_ns;
        Ok(Some(Decoded {
            event,
            header_cut: matches!(found, Found::Tcp(t) if t.cut),
        }))
    }
}

/// `bytes[..n]`, or a truncation error naming `layer`.
fn need<'a>(bytes: &'a [u8], n: usize, layer: &'static str) -> Result<&'a [u8], DecodeError> {
    bytes.get(..n).ok_or(DecodeError::Truncated {
        layer,
        needed: n,
        available: bytes.len(),
    })
}

#[cfg(test)]
mod tests;
