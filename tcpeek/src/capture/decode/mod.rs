//! Wire decoder for the libpcap backend: one captured frame in, at most one
//! [`Event`] out.
//!
//! Guarantee: [`Decoder::decode`] never panics, whatever the bytes and
//! whatever `wire_len` claims. Every read goes through a bounds-checked
//! slice accessor; IP, IPv6 extension, TCP and ICMP headers are parsed with
//! `etherparse`'s checked `*Slice::from_slice` constructors. The two Linux
//! cooked headers are parsed here because they are fixed-layout records and
//! etherparse either lacks them (SLL2) or rejects the ARPHRD types the
//! `any` device produces (SLL on loopback, tun, ...).
//!
//! What is decoded (everything else is `Ok(None)`):
//! - link: Ethernet II with up to two 802.1Q / 802.1ad tags, Linux SLL and
//!   SLL2 (direction from the packet type), raw IP;
//! - network: IPv4 with options (and AH), IPv6 with extension headers; a
//!   non-first fragment carries no TCP header and is skipped;
//! - transport: TCP, and ICMP type 3 / ICMPv6 type 1 quoting a TCP segment
//!   (RFC 792, RFC 4443 section 3.1), described by the *quoted* segment.
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
//!
//! One file per layer: `link` (cooked headers, VLAN tags, the fast path),
//! `ip` (IPv4, IPv6 and its extension headers), `transport` (TCP and the
//! ICMP errors quoting it), `checksum` (`-c`); tests in `tests.rs`.

mod checksum;
mod ip;
mod link;
mod transport;

use checksum::verify;
use ip::ipv6_upper_layer;
use link::{fast_ethernet_tcp, sll_direction, strip_vlan_tags};
use transport::{icmp4_event, icmp6_event, tcp_event};

use etherparse::{
    checksum::Sum16BitWords, err, ip_number, Ethernet2Header, Ethernet2HeaderSlice,
    IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, SingleVlanHeader,
    SingleVlanHeaderSlice, TcpHeaderSlice,
};

use tcpeek_common::{
    Event, DIR_EGRESS, DIR_INGRESS, DIR_UNKNOWN, FAMILY_V4, FAMILY_V6, KIND_ICMP_UNREACH, KIND_TCP,
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
    #[error("malformed {layer}: {reason}")]
    Malformed { layer: &'static str, reason: String },
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

/// A relevant frame, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub event: Event,
    /// The capture cut the TCP header short (inside its options); the event
    /// comes from the fixed 20-byte header.
    pub header_cut: bool,
}

impl Decoded {
    fn whole(event: Event) -> Decoded {
        Decoded {
            event,
            header_cut: false,
        }
    }
}

/// Turns frames of one link type into events.
#[derive(Clone, Debug)]
pub struct Decoder {
    link: LinkType,
    checksum: ChecksumMode,
}

// Linux cooked headers, from libpcap's `pcap/sll.h` and
// https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html / _SLL2.html.
const SLL_LEN: usize = 16;

const SLL_PKTTYPE: usize = 0; // u16
const SLL_PROTOCOL: usize = 14; // u16
const SLL2_LEN: usize = 20;

const SLL2_PROTOCOL: usize = 0; // u16
const SLL2_PKTTYPE: usize = 10; // u8

// `sll_pkttype` values (linux/if_packet.h).
const PACKET_HOST: u16 = 0;

const PACKET_BROADCAST: u16 = 1;

const PACKET_MULTICAST: u16 = 2;

const PACKET_OUTGOING: u16 = 4;

const ETHERTYPE_IPV4: u16 = 0x0800;

const ETHERTYPE_IPV6: u16 = 0x86dd;

// 802.1Q, 802.1ad, and the pre-standard QinQ type some switches still send.
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];

const MAX_VLAN_TAGS: usize = 2;

const IPV6_HEADER_LEN: usize = 40;

/// ICMP and ICMPv6 error messages: type, code, checksum, 4 more bytes, then
/// the quote (RFC 792; RFC 4443 section 3.1).
const ICMP_HEADER_LEN: usize = 8;

/// RFC 792 guarantees the quoted IP header plus 64 bits of its data: for TCP
/// the ports and the sequence number.
const QUOTED_TCP_MIN: usize = 8;

/// Offset of the flags byte in the TCP header (RFC 9293 section 3.1).
const TCP_FLAGS_OFFSET: usize = 13;

/// The TCP header without options (RFC 9293 section 3.1): ports, sequence
/// and acknowledgement numbers, data offset, flags, window, checksum,
/// urgent pointer.
const TCP_FIXED_LEN: usize = 20;

/// What a verdict reads of a TCP header: ports, sequence and
/// acknowledgement numbers, data offset and flags (bytes 0 to 13). A capture
/// cut after them still decides the handshake: `-s 68` leaves an IPv6
/// segment on Ethernet exactly these 14 bytes.
const TCP_VERDICT_LEN: usize = TCP_FLAGS_OFFSET + 1;

const ICMP_DEST_UNREACH: u8 = 3;

const ICMPV6_DEST_UNREACH: u8 = 1;

/// A network-layer packet handed down from the link layer.
struct NetPacket<'a> {
    bytes: &'a [u8],
    /// Its length on the wire (at least `bytes.len()`).
    wire_len: usize,
    /// Whether the capture cut the frame short (snaplen).
    snapped: bool,
    direction: u8,
}

/// What the network layer found above it, before checksum verification.
struct Transport<'a> {
    /// The transport segment as captured (possibly cut by the snaplen).
    segment: &'a [u8],
    /// Length of the transport segment according to the IP header.
    declared_len: usize,
    /// The capture cut the segment short of `declared_len`.
    cut: bool,
    /// The whole segment is present and not an IP fragment, so a transport
    /// checksum can be verified.
    verifiable: bool,
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
        if self.link == LinkType::Ethernet && self.checksum == ChecksumMode::None {
            if let Some(ev) = fast_ethernet_tcp(frame) {
                return Ok(Some(Decoded::whole(Event { ts_ns, ..ev })));
            }
        }
        self.decode_full(ts_ns, frame, wire_len)
    }

    /// [`Decoder::decode`] without the fast path.
    fn decode_full(
        &self,
        ts_ns: u64,
        frame: &[u8],
        wire_len: usize,
    ) -> Result<Option<Decoded>, DecodeError> {
        let (ethertype, rest, direction) = match self.link {
            LinkType::Ethernet => {
                let eth = Ethernet2HeaderSlice::from_slice(frame)
                    .map_err(|e| len_err("Ethernet header", e))?;
                let rest = frame.get(Ethernet2Header::LEN..).unwrap_or_default();
                (eth.ether_type().0, rest, DIR_UNKNOWN)
            }
            LinkType::LinuxSll => {
                let hdr = need(frame, SLL_LEN, "Linux cooked (SLL) header")?;
                let pkttype = be16(hdr, SLL_PKTTYPE);
                let proto = be16(hdr, SLL_PROTOCOL);
                let rest = frame.get(SLL_LEN..).unwrap_or_default();
                (proto, rest, sll_direction(pkttype))
            }
            LinkType::LinuxSll2 => {
                let hdr = need(frame, SLL2_LEN, "Linux cooked v2 (SLL2) header")?;
                let proto = be16(hdr, SLL2_PROTOCOL);
                let pkttype = hdr.get(SLL2_PKTTYPE).copied().unwrap_or(u8::MAX);
                let rest = frame.get(SLL2_LEN..).unwrap_or_default();
                (proto, rest, sll_direction(u16::from(pkttype)))
            }
            LinkType::RawIp => {
                let first = *frame.first().ok_or(DecodeError::Truncated {
                    layer: "IP header",
                    needed: 1,
                    available: 0,
                })?;
                let ethertype = match first >> 4 {
                    4 => ETHERTYPE_IPV4,
                    6 => ETHERTYPE_IPV6,
                    version => {
                        return Err(DecodeError::Malformed {
                            layer: "IP header",
                            reason: format!("version {version}, expected 4 or 6"),
                        })
                    }
                };
                (ethertype, frame, DIR_UNKNOWN)
            }
        };
        let (ethertype, bytes) = strip_vlan_tags(ethertype, rest)?;

        // Everything in front of the IP header was captured, so the packet's
        // wire length is the frame's minus that. A `wire_len` smaller than
        // what was captured is nonsense (a broken file); trust the bytes.
        let link_len = frame.len() - bytes.len();
        let packet = NetPacket {
            bytes,
            wire_len: wire_len.max(frame.len()) - link_len,
            snapped: frame.len() < wire_len,
            direction,
        };
        let event = match ethertype {
            ETHERTYPE_IPV4 => self.ipv4(&packet)?,
            ETHERTYPE_IPV6 => self.ipv6(&packet)?,
            _ => None,
        };
        Ok(event.map(|mut d| {
            d.event.ts_ns = ts_ns;
            d.event.direction = direction;
            d
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

/// Big-endian u16 at `off`; callers have checked the length (0 otherwise).
fn be16(bytes: &[u8], off: usize) -> u16 {
    match bytes.get(off..off + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// The TCP length for the IPv4 pseudo-header. IPv4 lengths fit in 16 bits
/// except for TSO super-packets, whose checksum cannot be right anyway.
fn len16(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes()
}

/// An IPv4 address in the event's 16-byte address field.
fn v4_addr(a: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&a);
    out
}

fn len_err(layer: &'static str, e: err::LenError) -> DecodeError {
    DecodeError::Truncated {
        layer,
        needed: e.required_len,
        available: e.len,
    }
}

fn malformed(layer: &'static str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        layer,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
