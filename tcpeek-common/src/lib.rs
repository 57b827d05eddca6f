//! The one record that crosses from capture to the handshake engine.
//!
//! Both capture backends produce exactly this type: the eBPF classifier writes
//! it into a BPF ring buffer, the libpcap decoder builds it from a frame. The
//! engine therefore cannot tell which backend fed it, and the layout is the
//! contract between kernel and userspace: `#[repr(C)]`, every byte named, no
//! implicit padding, and a size checked at compile time on both sides.
//!
//! Conventions:
//! - addresses are in network byte order; an IPv4 address occupies the first
//!   four bytes of the 16-byte field and the other twelve are zero;
//! - ports, sequence and acknowledgement numbers are in host byte order;
//! - for [`KIND_ICMP_UNREACH`] the address, port and `seq` fields describe the
//!   TCP segment *quoted* inside the ICMP/ICMPv6 error (the one that could not
//!   be delivered), not the ICMP packet itself.
#![no_std]

pub mod maps;
pub mod tcp;
pub mod wire;

/// A TCP segment (any flag combination the classifier chose to forward).
pub const KIND_TCP: u8 = 1;
/// An ICMP (type 3) or ICMPv6 (type 1) destination-unreachable message that
/// quotes a TCP segment.
pub const KIND_ICMP_UNREACH: u8 = 2;

/// `Event::family` for IPv4.
pub const FAMILY_V4: u8 = 4;
/// `Event::family` for IPv6.
pub const FAMILY_V6: u8 = 6;

/// `Event::direction`: the capture point does not know (libpcap on Ethernet,
/// capture files).
pub const DIR_UNKNOWN: u8 = 0;
/// Seen on the way into the host (TC ingress, XDP, SLL `PACKET_HOST`).
pub const DIR_INGRESS: u8 = 1;
/// Seen on the way out of the host (TC egress, SLL `PACKET_OUTGOING`).
pub const DIR_EGRESS: u8 = 2;

/// TCP header flag bits as they appear in byte 13 of the header (RFC 9293,
/// section 3.1).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// One classified packet. 64 bytes, one cache line.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Event {
    /// Packet time in nanoseconds since the Unix epoch. (The eBPF side writes
    /// `bpf_ktime_get_ns()`; its userspace reader converts before the engine
    /// sees the event.)
    pub ts_ns: u64,
    /// Source address (see the module conventions).
    pub saddr: [u8; 16],
    /// Destination address.
    pub daddr: [u8; 16],
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number (0 for ICMP events).
    pub ack: u32,
    /// TCP source port.
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// TCP payload length; for a SYN this is TCP Fast Open data. Saturates at
    /// `u16::MAX`. Zero for ICMP events.
    pub payload_len: u16,
    /// [`KIND_TCP`] or [`KIND_ICMP_UNREACH`].
    pub kind: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// TCP flags byte ([`tcp_flags`]); for ICMP events the quoted segment's
    /// flags when the quote is long enough to carry them, else 0.
    pub tcp_flags: u8,
    /// [`DIR_UNKNOWN`], [`DIR_INGRESS`] or [`DIR_EGRESS`].
    pub direction: u8,
    /// ICMP/ICMPv6 type (0 for TCP events).
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code (0 for TCP events).
    pub icmp_code: u8,
    /// Which of the daemon's interfaces it was captured on: its position in
    /// the `-i` list. The kernel writes 0; the reader of each interface's
    /// capture sets it.
    pub iface: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 3],
}

/// Size of [`Event`] in bytes; the ring buffer reader checks records against it.
pub const EVENT_SIZE: usize = 64;

const _: () = assert!(core::mem::size_of::<Event>() == EVENT_SIZE);
const _: () = assert!(core::mem::align_of::<Event>() == 8);

impl Event {
    /// An all-zero event, the starting point for builders on both sides.
    pub const ZERO: Event = Event {
        ts_ns: 0,
        saddr: [0; 16],
        daddr: [0; 16],
        seq: 0,
        ack: 0,
        sport: 0,
        dport: 0,
        payload_len: 0,
        kind: 0,
        family: 0,
        tcp_flags: 0,
        direction: 0,
        icmp_type: 0,
        icmp_code: 0,
        iface: 0,
        _pad: [0; 3],
    };
}

/// Indexes into the eBPF per-CPU counter array (`TCPEEK_STATS`): what the
/// kernel side saw or could not deliver. Userspace sums them over CPUs.
pub mod stat {
    /// Events written to the ring buffer.
    pub const EVENTS: u32 = 0;
    /// Events lost because the ring buffer was full.
    pub const RINGBUF_FULL: u32 = 1;
    /// Handshakes dropped from the in-progress map before completing
    /// (insert failed; LRU evictions are not observable from BPF).
    pub const MAP_FULL: u32 = 2;
    /// Packets the classifier looked at.
    pub const PACKETS: u32 = 3;
    /// Truncated packets, not classified: a header ends past the packet's
    /// end even after pulling the skb's non-linear part, or the packet is
    /// shorter than its IP length says (userspace adds them to
    /// `malformed`).
    pub const SHORT: u32 = 4;
    /// Packets with an impossible or unsupported header (`wire::Stop::
    /// Malformed` and `Unsupported`), which the libpcap decoder counts as
    /// malformed too (userspace adds them to `malformed`).
    pub const MALFORMED: u32 = 5;
    /// Number of counters.
    pub const COUNT: u32 = 6;
}

/// Names in the eBPF object that the userspace loader uses: programs, maps
/// and read-only globals. The kernel side's `#[map]` and program macros
/// take the identifier as the name, so it spells them again; an
/// unprivileged test of the userspace crate (tests/object.rs) checks that
/// the embedded object holds every one.
pub mod names {
    /// TC classifier for ingress (events get `DIR_INGRESS`).
    pub const PROG_TC_INGRESS: &str = "tcpeek_tc_in";
    /// TC classifier for egress (events get `DIR_EGRESS`).
    pub const PROG_TC_EGRESS: &str = "tcpeek_tc_eg";
    /// XDP program for ingress (events get `DIR_INGRESS`).
    pub const PROG_XDP: &str = "tcpeek_xdp";
    /// A classifier that only passes packets on: the benchmark baseline.
    pub const PROG_EMPTY: &str = "tcpeek_empty";
    /// Ring buffer of [`super::Event`] records.
    pub const MAP_EVENTS: &str = "TCPEEK_EVENTS";
    /// Per-CPU `u64` counters indexed by [`super::stat`].
    pub const MAP_STATS: &str = "TCPEEK_STATS";
    /// IPv4 handshakes waiting for their final ACK (LRU hash).
    pub const MAP_HANDSHAKES_V4: &str = "TCPEEK_HS_V4";
    /// IPv6 handshakes waiting for their final ACK (LRU hash).
    pub const MAP_HANDSHAKES_V6: &str = "TCPEEK_HS_V6";
    /// Per-tuple-hash counts of those maps' entries (pending, jiffies of
    /// the last SYN/ACK), which lets ACKs skip the lookup.
    pub const MAP_HANDSHAKE_HINT: &str = "TCPEEK_HS_HINT";
    /// `u64` global: unread ring bytes from which the kernel side wakes
    /// the reader.
    pub const GLOBAL_WAKE_BYTES: &str = "TCPEEK_WAKE_BYTES";
    /// `u32` global: how packets begin ([`super::framing`]).
    pub const GLOBAL_FRAMING: &str = super::framing::GLOBAL;
    /// Every name above, for the test that checks the object.
    pub const ALL: [&str; 11] = [
        PROG_TC_INGRESS,
        PROG_TC_EGRESS,
        PROG_XDP,
        PROG_EMPTY,
        MAP_EVENTS,
        MAP_STATS,
        MAP_HANDSHAKES_V4,
        MAP_HANDSHAKES_V6,
        MAP_HANDSHAKE_HINT,
        GLOBAL_WAKE_BYTES,
        GLOBAL_FRAMING,
    ];
}

/// Default ring buffer size: 4 MiB, 65536 events. The loader sizes the
/// ring from `-B`; this is what the object declares.
pub const DEFAULT_RING_BYTES: u32 = 4 << 20;

/// How the packets of the watched interface begin, told to the kernel
/// classifier through its read-only global [`framing::GLOBAL`] before
/// loading (the verifier then removes the branch not taken).
///
/// Which devices have which framing is the loader's business (their
/// ARPHRD type, `linux/if_arp.h`).
pub mod framing {
    /// Name of the classifier's `u32` global holding one of the values below.
    pub const GLOBAL: &str = "TCPEEK_FRAMING";
    /// An Ethernet header (possibly VLAN-tagged) before the IP header:
    /// Ethernet, veth, bridges, loopback.
    pub const ETHERNET: u32 = 0;
    /// The IP header at byte 0, its version in the first nibble: tun,
    /// WireGuard, PPP, IP-in-IP and GRE tunnels, raw-IP modems.
    pub const IP: u32 = 1;
}
