//! Privileged tests of the eBPF classifier.
//!
//! - Crafted packets through `BPF_PROG_TEST_RUN`: which packets produce
//!   which events, and that every packet passes unchanged.
//! - Real traffic between two network namespaces created per test (veth
//!   pair, addresses from TEST-NET-1, 192.0.2.0/24), deleted by a guard.
//! - A process holding the attached programs is SIGKILLed: nothing of it
//!   may stay attached.
//!
//! They need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces);
//! without it, or without a kernel feature, a test prints why it is skipped.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    mem::size_of,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use aya::{
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{SchedClassifier, TestRun as _, TestRunOptions, Xdp},
    Ebpf,
};
use etherparse::{PacketBuilder, VlanId};
use tcpeek::capture::ebpf::{self, names, EbpfCapture, EbpfOptions, Framing, TcMode};
use tcpeek_common::{
    maps::Pending, stat, tcp_flags as f, Event, DIR_EGRESS, DIR_INGRESS, FAMILY_V4, FAMILY_V6,
    KIND_ICMP_UNREACH, KIND_TCP,
};

/// -1: the next program on the hook runs (TCX_NEXT).
const TC_ACT_UNSPEC: u32 = u32::MAX;
const XDP_PASS: u32 = 2;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const CLIENT4: [u8; 4] = [192, 0, 2, 1];
const SERVER4: [u8; 4] = [192, 0, 2, 2];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

// ---------------------------------------------------------------------------
// Fixture: the object loaded, programs verified, maps at hand.

/// Skips the calling test (its name comes from its thread; `_test` is
/// kept for the call sites' readability).
fn skip(_test: &str, why: &str) {
    tcpeek_testkit::skip(why);
}

use tcpeek_testkit::is_root;

struct Fixture {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
}

impl Fixture {
    /// `None` (with a printed reason) when the test cannot run here.
    fn new(test: &str) -> Option<Fixture> {
        Self::with_ring(test, 0)
    }

    fn with_ring(test: &str, ring_bytes: u32) -> Option<Fixture> {
        Self::with(test, ring_bytes, Framing::Ethernet)
    }

    /// Loaded for an interface whose packets start at the IP header.
    fn l3(test: &str) -> Option<Fixture> {
        Self::with(test, 0, Framing::Ip)
    }

    fn with(test: &str, ring_bytes: u32, framing: Framing) -> Option<Fixture> {
        if !is_root() {
            skip(test, "needs root (CAP_BPF, CAP_NET_ADMIN)");
            return None;
        }
        let mut ebpf = ebpf::load_for(ring_bytes, framing).expect("load the eBPF object");
        for name in [
            names::PROG_TC_INGRESS,
            names::PROG_TC_EGRESS,
            names::PROG_EMPTY,
        ] {
            let p: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
            p.load()
                .unwrap_or_else(|e| panic!("verifier rejected {name}: {e}"));
        }
        let p: &mut Xdp = ebpf
            .program_mut(names::PROG_XDP)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("verifier rejected the XDP program");
        let ring = RingBuf::try_from(ebpf.take_map(names::MAP_EVENTS).unwrap()).unwrap();
        let stats = PerCpuArray::try_from(ebpf.take_map(names::MAP_STATS).unwrap()).unwrap();
        Some(Fixture { ebpf, ring, stats })
    }

    /// Runs `prog` on `pkt`; checks the verdict and that the packet came out
    /// unchanged; returns the events it emitted.
    fn run(&mut self, prog: &str, pkt: &[u8]) -> Vec<Event> {
        let mut out = vec![0u8; pkt.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(pkt),
            data_out: Some(&mut out),
            ..Default::default()
        };
        let res = if prog == names::PROG_XDP {
            let p: &Xdp = self.ebpf.program(prog).unwrap().try_into().unwrap();
            p.test_run(opts)
        } else {
            let p: &SchedClassifier = self.ebpf.program(prog).unwrap().try_into().unwrap();
            p.test_run(opts)
        }
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {prog} on {} bytes: {e}", pkt.len()));
        let want = if prog == names::PROG_XDP {
            XDP_PASS
        } else {
            TC_ACT_UNSPEC
        };
        assert_eq!(res.return_value, want, "{prog} verdict");
        assert_eq!(
            &out[..res.data_size_out as usize],
            pkt,
            "{prog} changed the packet"
        );
        self.events()
    }

    fn tc_in(&mut self, pkt: &[u8]) -> Vec<Event> {
        self.run(names::PROG_TC_INGRESS, pkt)
    }

    fn events(&mut self) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(item) = self.ring.next() {
            v.push(ebpf::decode_record(&item).expect("record of EVENT_SIZE bytes"));
        }
        v
    }

    fn stat(&self, idx: u32) -> u64 {
        self.stats.get(&idx, 0).unwrap().iter().sum()
    }

    fn pending_v4(&self) -> usize {
        self.entries_v4().len()
    }

    /// The IPv4 handshake map's values ([`Pending`]) as `[ack, span, seq,
    /// prev_ack, prev_span]`: the acknowledgement numbers that acknowledge
    /// the latest and the previous SYN/ACK, from ISN + 1 to ISN + 1 + span,
    /// and where the client's next segment starts.
    fn entries_v4(&self) -> Vec<[u32; 5]> {
        let m: BpfHashMap<_, [u8; 12], [u8; size_of::<Pending>()]> =
            BpfHashMap::try_from(self.ebpf.map(names::MAP_HANDSHAKES_V4).unwrap()).unwrap();
        m.iter()
            .map(|kv| {
                let p: Pending = bytemuck::pod_read_unaligned(&kv.unwrap().1);
                let (latest, prev) = (p.server.latest, p.server.previous);
                [
                    latest.isn.wrapping_add(1),
                    latest.len,
                    p.seq,
                    prev.isn.wrapping_add(1),
                    prev.len,
                ]
            })
            .collect()
    }
}

fn one(events: Vec<Event>) -> Event {
    assert_eq!(events.len(), 1, "expected exactly one event: {events:?}");
    events[0]
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0; 16];
    x[..4].copy_from_slice(&a);
    x
}

// ---------------------------------------------------------------------------
// Packet builders.

/// A TCP segment over IPv4 (client to server unless `reply`).
fn tcp4(reply: bool, seq: u32, flags: u8, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (s, d, sp, dp) = if reply {
        (SERVER4, CLIENT4, 80, 40000)
    } else {
        (CLIENT4, SERVER4, 40000, 80)
    };
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(s, d, 64)
        .tcp(sp, dp, seq, 64240);
    finish_tcp(b, flags, ack, payload)
}

fn tcp6(reply: bool, seq: u32, flags: u8, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (s, d, sp, dp) = if reply {
        (SERVER6, CLIENT6, 443, 50000)
    } else {
        (CLIENT6, SERVER6, 50000, 443)
    };
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(s, d, 64)
        .tcp(sp, dp, seq, 64240);
    finish_tcp(b, flags, ack, payload)
}

fn finish_tcp(
    mut b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    flags: u8,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    if flags & f::SYN != 0 {
        b = b.syn();
    }
    if flags & f::ACK != 0 {
        b = b.ack(ack);
    }
    if flags & f::RST != 0 {
        b = b.rst();
    }
    if flags & f::FIN != 0 {
        b = b.fin();
    }
    if flags & f::PSH != 0 {
        b = b.psh();
    }
    if flags & f::ECE != 0 {
        b = b.ece();
    }
    if flags & f::CWR != 0 {
        b = b.cwr();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// Bytes from the IP header on (what an ICMP error quotes).
fn l3_of(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN: events.

#[test]
fn syn_emits_event_with_all_fields() {
    let Some(mut fx) = Fixture::new("syn_emits_event_with_all_fields") else {
        return;
    };
    let ev = one(fx.tc_in(&tcp4(false, 1000, f::SYN, 0, b"")));
    assert_eq!(ev.kind, KIND_TCP);
    assert_eq!(ev.family, FAMILY_V4);
    assert_eq!(ev.direction, DIR_INGRESS);
    assert_eq!(ev.saddr, v4(CLIENT4));
    assert_eq!(ev.daddr, v4(SERVER4));
    assert_eq!((ev.sport, ev.dport), (40000, 80));
    assert_eq!((ev.seq, ev.ack), (1000, 0));
    assert_eq!(ev.tcp_flags, f::SYN);
    assert_eq!(ev.payload_len, 0);
    assert_eq!(
        (ev.icmp_type, ev.icmp_code, ev.iface, ev._pad),
        (0, 0, 0, [0; 3])
    );
    assert!(ev.ts_ns > 0, "ts_ns is bpf_ktime_get_ns()");

    let ev = one(fx.run(names::PROG_TC_EGRESS, &tcp4(false, 1000, f::SYN, 0, b"")));
    assert_eq!(ev.direction, DIR_EGRESS);
    let ev = one(fx.run(names::PROG_XDP, &tcp4(false, 1000, f::SYN, 0, b"")));
    assert_eq!(ev.direction, DIR_INGRESS);

    assert_eq!(fx.stat(stat::PACKETS), 3);
    assert_eq!(fx.stat(stat::EVENTS), 3);
}

#[test]
fn syn_with_ecn_and_fast_open_data() {
    let Some(mut fx) = Fixture::new("syn_with_ecn_and_fast_open_data") else {
        return;
    };
    let ev = one(fx.tc_in(&tcp4(false, 7, f::SYN | f::ECE | f::CWR, 0, b"hello")));
    assert_eq!(ev.tcp_flags, f::SYN | f::ECE | f::CWR);
    assert_eq!(ev.payload_len, 5);
}

#[test]
fn syn_rst_is_an_rst_event() {
    let Some(mut fx) = Fixture::new("syn_rst_is_an_rst_event") else {
        return;
    };
    let ev = one(fx.tc_in(&tcp4(false, 7, f::SYN | f::RST, 0, b"")));
    assert_eq!(ev.tcp_flags, f::SYN | f::RST);
}

#[test]
fn handshake_v4_synack_then_completing_ack() {
    let Some(mut fx) = Fixture::new("handshake_v4_synack_then_completing_ack") else {
        return;
    };
    let ev = one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
    ));
    assert_eq!(ev.tcp_flags, f::SYN | f::ACK);
    assert_eq!(
        (ev.sport, ev.dport, ev.seq, ev.ack),
        (80, 40000, 5000, 1001)
    );
    assert_eq!(fx.pending_v4(), 1);

    // Wrong ack number, the wrong direction, a retransmitted SYN: nothing.
    assert!(fx.tc_in(&tcp4(false, 1001, f::ACK, 5002, b"")).is_empty());
    assert!(fx.tc_in(&tcp4(true, 5001, f::ACK, 1001, b"")).is_empty());
    assert_eq!(fx.pending_v4(), 1);

    let ev = one(fx.tc_in(&tcp4(false, 1001, f::ACK, 5001, b"")));
    assert_eq!(ev.tcp_flags, f::ACK);
    assert_eq!(
        (ev.sport, ev.dport, ev.seq, ev.ack),
        (40000, 80, 1001, 5001)
    );
    assert_eq!(ev.direction, DIR_INGRESS);
    assert_eq!(fx.pending_v4(), 0, "the completing ACK deletes the entry");

    // The next segment with the same ack is a plain data segment.
    assert!(fx
        .tc_in(&tcp4(false, 1001, f::ACK | f::PSH, 5001, b"GET /"))
        .is_empty());
}

/// Sum of the hint array's `pending` counters (first u64 of each slot).
fn hint_pending(fx: &Fixture) -> u64 {
    let m: aya::maps::Array<_, [u64; 2]> =
        aya::maps::Array::try_from(fx.ebpf.map(names::MAP_HANDSHAKE_HINT).unwrap()).unwrap();
    m.iter().map(|v| v.unwrap()[0]).sum()
}

#[test]
fn retransmitted_synack_updates_without_double_counting() {
    let Some(mut fx) = Fixture::new("retransmitted_synack_updates_without_double_counting") else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
    ));
    assert_eq!(hint_pending(&fx), 1);
    // The same SYN/ACK again, then one with a new ISN (the server
    // restarted the handshake): one entry, counted once.
    for isn in [5000, 9000] {
        one(fx.run(
            names::PROG_TC_EGRESS,
            &tcp4(true, isn, f::SYN | f::ACK, 1001, b""),
        ));
        assert_eq!((fx.pending_v4(), hint_pending(&fx)), (1, 1));
    }
    one(fx.tc_in(&tcp4(false, 1001, f::ACK, 9001, b"")));
    assert_eq!((fx.pending_v4(), hint_pending(&fx)), (0, 0));
    // An RST leaves a remembered IPv6 handshake (and its count) alone:
    // whether it ends the handshake is userspace's call.
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp6(true, 1, f::SYN | f::ACK, 1, b""),
    ));
    assert_eq!(hint_pending(&fx), 1);
    one(fx.tc_in(&tcp6(false, 1, f::RST, 0, b"")));
    assert_eq!(hint_pending(&fx), 1);
    one(fx.tc_in(&tcp6(false, 1, f::ACK, 2, b"")));
    assert_eq!(hint_pending(&fx), 0);
}

#[test]
fn completing_ack_may_carry_data() {
    let Some(mut fx) = Fixture::new("completing_ack_may_carry_data") else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, u32::MAX, f::SYN | f::ACK, 1, b""),
    ));
    // seq + 1 wraps to 0.
    let ev = one(fx.tc_in(&tcp4(false, 1, f::ACK | f::PSH, 0, b"GET / HTTP/1.1\r\n")));
    assert_eq!(ev.payload_len, 16);
}

#[test]
fn handshake_v6_synack_then_completing_ack() {
    let Some(mut fx) = Fixture::new("handshake_v6_synack_then_completing_ack") else {
        return;
    };
    let ev = one(fx.tc_in(&tcp6(false, 10, f::SYN, 0, b"")));
    assert_eq!(ev.family, FAMILY_V6);
    assert_eq!((ev.saddr, ev.daddr), (CLIENT6, SERVER6));
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp6(true, 900, f::SYN | f::ACK, 11, b""),
    ));
    assert!(fx.tc_in(&tcp6(false, 11, f::ACK, 902, b"")).is_empty());
    let ev = one(fx.tc_in(&tcp6(false, 11, f::ACK, 901, b"")));
    assert_eq!((ev.sport, ev.dport, ev.seq, ev.ack), (50000, 443, 11, 901));
    assert!(fx.tc_in(&tcp6(false, 11, f::ACK, 901, b"")).is_empty());
}

#[test]
fn rst_leaves_the_completing_ack_to_come_through() {
    let Some(mut fx) = Fixture::new("rst_leaves_the_completing_ack_to_come_through") else {
        return;
    };
    // An RST the endpoint may well refuse (here: out of window) must not
    // hide the completing ACK that follows; both are reported.
    for rst_from_server in [false, true] {
        one(fx.run(
            names::PROG_TC_EGRESS,
            &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
        ));
        let seq = if rst_from_server { 777_777 } else { 999_999 };
        let ev = one(fx.tc_in(&tcp4(rst_from_server, seq, f::RST, 0, b"")));
        assert_eq!(ev.tcp_flags, f::RST);
        assert_eq!(fx.pending_v4(), 1);
        one(fx.tc_in(&tcp4(false, 1001, f::ACK, 5001, b"")));
        assert_eq!(fx.pending_v4(), 0);
    }
}

#[test]
fn ack_starting_elsewhere_is_reported_but_keeps_the_handshake() {
    let Some(mut fx) = Fixture::new("ack_starting_elsewhere_is_reported_but_keeps_the_handshake")
    else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
    ));
    // Right acknowledgement number, sequence number out of place (forged or
    // stale): userspace judges it; the real one still comes through.
    let ev = one(fx.tc_in(&tcp4(false, 424_242, f::ACK, 5001, b"")));
    assert_eq!(ev.seq, 424_242);
    assert_eq!(fx.pending_v4(), 1);
    one(fx.tc_in(&tcp4(false, 1001, f::ACK, 5001, b"")));
    assert_eq!(fx.pending_v4(), 0);
}

#[test]
fn synack_with_data_waits_for_acks_up_to_its_end() {
    let Some(mut fx) = Fixture::new("synack_with_data_waits_for_acks_up_to_its_end") else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b"0123456789"),
    ));
    assert!(fx.tc_in(&tcp4(false, 1001, f::ACK, 5012, b"")).is_empty());
    // Acknowledging the SYN/ACK's data (ISN + 1 + 10), as the engine accepts.
    let ev = one(fx.tc_in(&tcp4(false, 1001, f::ACK, 5011, b"")));
    assert_eq!(ev.ack, 5011);
    assert_eq!(fx.pending_v4(), 0);
}

#[test]
fn icmp4_unreachable_quoting_tcp() {
    let Some(mut fx) = Fixture::new("icmp4_unreachable_quoting_tcp") else {
        return;
    };
    let syn = tcp4(false, 1234, f::SYN, 0, b"");
    // Full quote (Linux quotes all it can) and RFC 792's minimum: IP + 8.
    for (quote_len, want_flags) in [(20 + 20, f::SYN), (20 + 8, 0)] {
        let mut pkt = Vec::new();
        PacketBuilder::ethernet2(MAC_B, MAC_A)
            .ipv4([198, 51, 100, 1], CLIENT4, 64)
            .icmpv4_raw(3, 1, [0; 4])
            .write(&mut pkt, &l3_of(&syn)[..quote_len])
            .unwrap();
        let ev = one(fx.tc_in(&pkt));
        assert_eq!(ev.kind, KIND_ICMP_UNREACH);
        assert_eq!(ev.family, FAMILY_V4);
        assert_eq!(
            (ev.saddr, ev.daddr),
            (v4(CLIENT4), v4(SERVER4)),
            "quoted tuple"
        );
        assert_eq!((ev.sport, ev.dport, ev.seq, ev.ack), (40000, 80, 1234, 0));
        assert_eq!((ev.icmp_type, ev.icmp_code), (3, 1));
        assert_eq!(ev.tcp_flags, want_flags);
        assert_eq!(ev.payload_len, 0);
    }
    // Other ICMP types, and unreachables quoting UDP or less than 8 bytes: nothing.
    let mut echo = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut echo, &l3_of(&syn)[..28])
        .unwrap();
    assert!(fx.tc_in(&echo).is_empty());
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(CLIENT4, SERVER4, 64)
        .udp(5, 53)
        .write(&mut udp, b"x")
        .unwrap();
    let mut pkt = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut pkt, l3_of(&udp))
        .unwrap();
    assert!(fx.tc_in(&pkt).is_empty());
    let mut short = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_raw(3, 1, [0; 4])
        .write(&mut short, &l3_of(&syn)[..27])
        .unwrap();
    assert!(fx.tc_in(&short).is_empty());
}

#[test]
fn icmp6_unreachable_quoting_tcp() {
    let Some(mut fx) = Fixture::new("icmp6_unreachable_quoting_tcp") else {
        return;
    };
    let syn = tcp6(false, 77, f::SYN, 0, b"");
    let router = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99,
    ];
    let mut pkt = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv6(router, CLIENT6, 64)
        .icmpv6_raw(1, 4, [0; 4])
        .write(&mut pkt, &l3_of(&syn)[..40 + 8])
        .unwrap();
    let ev = one(fx.tc_in(&pkt));
    assert_eq!(ev.kind, KIND_ICMP_UNREACH);
    assert_eq!(ev.family, FAMILY_V6);
    assert_eq!((ev.saddr, ev.daddr), (CLIENT6, SERVER6));
    assert_eq!((ev.sport, ev.dport, ev.seq), (50000, 443, 77));
    assert_eq!((ev.icmp_type, ev.icmp_code, ev.tcp_flags), (1, 4, 0));
    // ICMPv6 packet too big (type 2): nothing.
    let mut ptb = Vec::new();
    PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv6(router, CLIENT6, 64)
        .icmpv6_raw(2, 0, [0, 0, 5, 0])
        .write(&mut ptb, &l3_of(&syn)[..48])
        .unwrap();
    assert!(fx.tc_in(&ptb).is_empty());
}

#[test]
fn ipv6_extension_headers_are_followed() {
    let Some(mut fx) = Fixture::new("ipv6_extension_headers_are_followed") else {
        return;
    };
    // Hop-by-hop (8 bytes, PadN) then destination options (16 bytes) then TCP.
    let plain = tcp6(false, 42, f::SYN, 0, b"xyz");
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0]; // HBH: next = DSTOPTS, len 0
    ext.extend_from_slice(&[6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // DST: next = TCP, len 1
    let pkt = insert_ipv6_ext(&plain, 0, &ext);
    let ev = one(fx.tc_in(&pkt));
    assert_eq!((ev.seq, ev.payload_len, ev.tcp_flags), (42, 3, f::SYN));
    assert_eq!((ev.saddr, ev.daddr), (CLIENT6, SERVER6));

    // First fragment (offset 0, M=1) carries the TCP header: an event.
    let frag = [6, 0, 0, 1, 0, 0, 0, 9];
    assert_eq!(one(fx.tc_in(&insert_ipv6_ext(&plain, 44, &frag))).seq, 42);
    // A non-first fragment (offset 8) carries none: nothing.
    let frag = [6, 0, 0, 8 << 3, 0, 0, 0, 9];
    assert!(fx.tc_in(&insert_ipv6_ext(&plain, 44, &frag)).is_empty());

    // A bad chain: hop-by-hop claiming 2 KiB, past the packet's end.
    let bad = insert_ipv6_ext(&plain, 0, &[6, 255, 1, 4, 0, 0, 0, 0]);
    assert!(fx.tc_in(&bad).is_empty());
    // A chain longer than the classifier follows (7 destination options).
    let mut long = Vec::new();
    for i in 0..7 {
        long.extend_from_slice(&[if i == 6 { 6 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
    }
    assert!(fx.tc_in(&insert_ipv6_ext(&plain, 60, &long)).is_empty());
}

/// Inserts `ext` (whose first header is of type `first`; its own
/// next-header bytes are given) between the IPv6 header and TCP.
fn insert_ipv6_ext(frame: &[u8], first: u8, ext: &[u8]) -> Vec<u8> {
    let mut v = frame[..14 + 40].to_vec();
    let plen = u16::from_be_bytes([v[18], v[19]]) + ext.len() as u16;
    v[18..20].copy_from_slice(&plen.to_be_bytes());
    v[20] = first;
    v.extend_from_slice(ext);
    v.extend_from_slice(&frame[54..]);
    v
}

#[test]
fn vlan_tagged_frames() {
    let Some(mut fx) = Fixture::new("vlan_tagged_frames") else {
        return;
    };
    let mut single = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(10).unwrap())
        .ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 80, 3, 1000)
        .syn()
        .write(&mut single, b"")
        .unwrap();
    assert_eq!(one(fx.tc_in(&single)).seq, 3);
    let mut double = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(10).unwrap())
        .ipv6(CLIENT6, SERVER6, 64)
        .tcp(50000, 443, 4, 1000)
        .syn()
        .write(&mut double, b"")
        .unwrap();
    let ev = one(fx.tc_in(&double));
    assert_eq!((ev.family, ev.seq), (FAMILY_V6, 4));
    // 802.1ad outer tag explicitly (etherparse may write 0x8100 for both).
    let mut qinq = double.clone();
    qinq[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
    assert_eq!(one(fx.tc_in(&qinq)).seq, 4);
}

#[test]
fn ipv4_options_are_skipped() {
    let Some(mut fx) = Fixture::new("ipv4_options_are_skipped") else {
        return;
    };
    let plain = tcp4(false, 99, f::SYN, 0, b"ab");
    // IHL 6: one 4-byte option (NOP NOP NOP EOL).
    let mut v = plain[..34].to_vec();
    v[14] = 0x46;
    let tot = u16::from_be_bytes([v[16], v[17]]) + 4;
    v[16..18].copy_from_slice(&tot.to_be_bytes());
    v.extend_from_slice(&[1, 1, 1, 0]);
    v.extend_from_slice(&plain[34..]);
    let ev = one(fx.tc_in(&v));
    assert_eq!((ev.seq, ev.payload_len, ev.sport), (99, 2, 40000));
}

#[test]
fn ipv4_authentication_header_is_followed() {
    let Some(mut fx) = Fixture::new("ipv4_authentication_header_is_followed") else {
        return;
    };
    let plain = tcp4(false, 99, f::SYN, 0, b"ab");
    // IPsec AH (RFC 4302) between IPv4 and TCP: 12 fixed bytes and a
    // 12-byte ICV, length field (24 / 4) - 2 = 4.
    let mut v = plain[..34].to_vec();
    v[23] = 51;
    let tot = u16::from_be_bytes([v[16], v[17]]) + 24;
    v[16..18].copy_from_slice(&tot.to_be_bytes());
    v.extend_from_slice(&[6, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1]);
    v.extend_from_slice(&[0xab; 12]);
    v.extend_from_slice(&plain[34..]);
    let ev = one(fx.tc_in(&v));
    assert_eq!(
        (ev.seq, ev.payload_len, ev.sport, ev.tcp_flags),
        (99, 2, 40000, f::SYN)
    );
}

#[test]
fn uninteresting_packets_emit_nothing() {
    let Some(mut fx) = Fixture::new("uninteresting_packets_emit_nothing") else {
        return;
    };
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "data segment",
            tcp4(false, 1, f::ACK | f::PSH, 1, &[0u8; 1400]),
        ),
        (
            "pure ACK of an unknown connection",
            tcp4(false, 1, f::ACK, 1, b""),
        ),
        ("pure ACK v6", tcp6(false, 1, f::ACK, 1, b"")),
        ("FIN", tcp4(false, 1, f::FIN | f::ACK, 1, b"")),
        ("no flags", tcp4(false, 1, 0, 0, b"")),
    ];
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(CLIENT4, SERVER4, 64)
        .udp(5, 53)
        .write(&mut udp, b"q")
        .unwrap();
    cases.push(("UDP", udp));
    // ARP request, padded to the minimum frame.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&CLIENT4);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&SERVER4);
    arp.resize(60, 0);
    cases.push(("ARP", arp));
    let syn = tcp4(false, 1, f::SYN, 0, b"");
    let mut ihl4 = syn.clone();
    ihl4[14] = 0x44;
    cases.push(("IPv4 IHL < 5", ihl4));
    let mut ver = syn.clone();
    ver[14] = 0x65;
    cases.push(("IPv4 ethertype, version 6", ver));
    cases.push(("truncated TCP header", syn[..14 + 20 + 12].to_vec()));
    cases.push(("truncated IPv4 header", syn[..14 + 10].to_vec()));
    cases.push(("Ethernet header only", syn[..14].to_vec()));
    let mut doff = syn.clone();
    doff[14 + 20 + 12] = 0x40;
    cases.push(("TCP data offset < 5", doff));
    let mut frag = syn.clone();
    frag[14 + 6..14 + 8].copy_from_slice(&0x0010u16.to_be_bytes()); // offset 128
    cases.push(("IPv4 non-first fragment", frag));
    let syn6 = tcp6(false, 1, f::SYN, 0, b"");
    cases.push(("truncated IPv6 header", syn6[..14 + 30].to_vec()));
    for (what, pkt) in &cases {
        // The kernel refuses (EINVAL) to build an skb whose EtherType
        // promises an IP header that is not there: such frames can only
        // reach XDP.
        let tc_ok = !what.starts_with("truncated IP") && *what != "Ethernet header only";
        for prog in [
            names::PROG_TC_INGRESS,
            names::PROG_TC_EGRESS,
            names::PROG_XDP,
        ] {
            if !tc_ok && prog != names::PROG_XDP {
                continue;
            }
            let evs = fx.run(prog, pkt);
            assert!(evs.is_empty(), "{what} via {prog}: {evs:?}");
        }
    }
    assert_eq!(fx.stat(stat::EVENTS), 0);
    assert_eq!(fx.pending_v4(), 0);
}

#[test]
fn ack_of_the_previous_isn_after_a_new_synack_is_forwarded() {
    // SYN cookies across a time slot, or a listener that rebuilt its
    // request: the SYN is retransmitted and answered with a new ISN, and
    // the client may complete with the ACK of either SYN/ACK (the engine
    // accepts both). The kernel must forward both kinds.
    let Some(mut fx) = Fixture::new("ack_of_the_previous_isn_after_a_new_synack_is_forwarded")
    else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
    ));
    assert_eq!(fx.entries_v4(), vec![[5001, 0, 1001, 5001, 0]]);
    one(fx.tc_in(&tcp4(false, 1000, f::SYN, 0, b"")));
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 9000, f::SYN | f::ACK, 1001, b""),
    ));
    assert_eq!(fx.entries_v4(), vec![[9001, 0, 1001, 5001, 0]]);
    // Neither ISN + 2 nor an ACK in between: nothing.
    for ack in [5002, 9002, 7000] {
        assert!(
            fx.tc_in(&tcp4(false, 1001, f::ACK, ack, b"")).is_empty(),
            "ack {ack}"
        );
    }
    // The previous SYN/ACK's ACK, starting elsewhere: reported, kept.
    assert_eq!(one(fx.tc_in(&tcp4(false, 3, f::ACK, 5001, b""))).ack, 5001);
    assert_eq!(fx.pending_v4(), 1);
    // ... and in place: reported, and the handshake is forgotten.
    let ev = one(fx.tc_in(&tcp4(false, 1001, f::ACK, 5001, b"")));
    assert_eq!((ev.seq, ev.ack, ev.tcp_flags), (1001, 5001, f::ACK));
    assert_eq!((fx.pending_v4(), hint_pending(&fx)), (0, 0));

    // A third ISN: the oldest is forgotten, the latest two are accepted.
    for isn in [100, 200, 300] {
        one(fx.run(
            names::PROG_TC_EGRESS,
            &tcp4(true, isn, f::SYN | f::ACK, 1001, b""),
        ));
    }
    assert_eq!(fx.entries_v4(), vec![[301, 0, 1001, 201, 0]]);
    assert!(fx.tc_in(&tcp4(false, 1001, f::ACK, 101, b"")).is_empty());
    one(fx.tc_in(&tcp4(false, 1001, f::ACK, 201, b"")));
    assert_eq!(fx.pending_v4(), 0);
}

#[test]
fn retransmitted_synack_keeps_the_previous_isn_and_widest_span() {
    let Some(mut fx) = Fixture::new("retransmitted_synack_keeps_the_previous_isn_and_widest_span")
    else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
    ));
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 9000, f::SYN | f::ACK, 1001, b"abcd"),
    ));
    // The retransmission of the latest (same ISN, less data) changes nothing.
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 9000, f::SYN | f::ACK, 1001, b""),
    ));
    assert_eq!(fx.entries_v4(), vec![[9001, 4, 1001, 5001, 0]]);
    one(fx.tc_in(&tcp4(false, 1001, f::ACK, 9005, b"")));
    assert_eq!(fx.pending_v4(), 0);
}

#[test]
fn fast_open_server_data_is_forwarded_and_its_ack_completes() {
    // RFC 7413: the server sends data right after its SYN/ACK; the
    // client's completing ACK acknowledges it. Userspace widens the
    // handshake's span on that data, so it must see the data segment, and
    // then the ACK beyond ISN + 1.
    let Some(mut fx) = Fixture::new("fast_open_server_data_is_forwarded_and_its_ack_completes")
    else {
        return;
    };
    one(fx.tc_in(&tcp4(false, 1000, f::SYN, 0, b"GET /")));
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1006, b""),
    ));
    // A pure ACK from the server: no data, nothing to widen, not forwarded.
    assert!(fx
        .run(names::PROG_TC_EGRESS, &tcp4(true, 5001, f::ACK, 1006, b""))
        .is_empty());
    // Data from ISN + 1: forwarded; the span reaches its end.
    let ev = one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5001, f::ACK | f::PSH, 1006, &[b'x'; 100]),
    ));
    assert_eq!((ev.kind, ev.seq, ev.payload_len), (KIND_TCP, 5001, 100));
    assert_eq!((ev.sport, ev.dport, ev.direction), (80, 40000, DIR_EGRESS));
    assert_eq!(fx.entries_v4(), vec![[5001, 100, 1006, 5001, 0]]);
    // Contiguous data: forwarded, widens again; a retransmission of the
    // first: forwarded (the rule holds), span unchanged.
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5101, f::ACK, 1006, &[b'y'; 50]),
    ));
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5001, f::ACK | f::PSH, 1006, &[b'x'; 100]),
    ));
    assert_eq!(fx.entries_v4(), vec![[5001, 150, 1006, 5001, 0]]);
    // Data past a gap (seq - (ISN + 1) > span): not forwarded, no change.
    assert!(fx
        .run(names::PROG_TC_EGRESS, &tcp4(true, 5152, f::ACK, 1006, b"z"))
        .is_empty());
    assert_eq!(fx.entries_v4(), vec![[5001, 150, 1006, 5001, 0]]);
    // Beyond the data: nothing; acknowledging all of it: the completing ACK.
    assert!(fx.tc_in(&tcp4(false, 1006, f::ACK, 5152, b"")).is_empty());
    let ev = one(fx.tc_in(&tcp4(false, 1006, f::ACK, 5151, b"")));
    assert_eq!((ev.seq, ev.ack), (1006, 5151));
    assert_eq!((fx.pending_v4(), hint_pending(&fx)), (0, 0));
    // Handshake over: the server's data is ordinary traffic again.
    assert!(fx
        .run(
            names::PROG_TC_EGRESS,
            &tcp4(true, 5151, f::ACK, 1006, b"more")
        )
        .is_empty());
}

#[test]
fn fast_open_server_data_v6_is_forwarded() {
    let Some(mut fx) = Fixture::new("fast_open_server_data_v6_is_forwarded") else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp6(true, 900, f::SYN | f::ACK, 11, b""),
    ));
    let ev = one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp6(true, 901, f::ACK, 11, &[0; 1000]),
    ));
    assert_eq!((ev.family, ev.seq, ev.payload_len), (FAMILY_V6, 901, 1000));
    let ev = one(fx.tc_in(&tcp6(false, 11, f::ACK, 1901, b"")));
    assert_eq!(ev.ack, 1901);
    assert_eq!(hint_pending(&fx), 0);
}

#[test]
fn client_data_of_a_remembered_handshake_does_not_widen_it() {
    // Only the server's data widens the span: the client's own segments
    // (own tuple found) are judged as completing ACKs or not at all.
    let Some(mut fx) = Fixture::new("client_data_of_a_remembered_handshake_does_not_widen_it")
    else {
        return;
    };
    one(fx.run(
        names::PROG_TC_EGRESS,
        &tcp4(true, 5000, f::SYN | f::ACK, 1001, b""),
    ));
    assert!(fx
        .tc_in(&tcp4(false, 1001, f::ACK, 4000, &[0; 100]))
        .is_empty());
    assert_eq!(fx.entries_v4(), vec![[5001, 0, 1001, 5001, 0]]);
}

#[test]
fn syn_whose_header_ends_past_its_ip_length_is_malformed() {
    // The data offset says 40 bytes, but the IP length leaves the segment
    // 20: Linux drops it (tcp_v4_rcv: the header cannot be pulled), so it
    // opens nothing, and the libpcap decoder counts the same frame as
    // malformed. (Before the shared walk the classifier forwarded it.)
    let Some(mut fx) = Fixture::new("syn_whose_header_ends_past_its_ip_length_is_malformed") else {
        return;
    };
    let mut syn = tcp4(false, 4242, f::SYN, 0, b"");
    syn[14 + 20 + 12] = 0xa0; // data offset 10 words
    for prog in [names::PROG_TC_INGRESS, names::PROG_XDP] {
        assert!(fx.run(prog, &syn).is_empty(), "{prog}");
    }
    assert_eq!(fx.stat(stat::SHORT), 2);
    assert_eq!(fx.stat(stat::MALFORMED), 0);
}

#[test]
fn truncated_headers_are_counted_short() {
    let Some(mut fx) = Fixture::new("truncated_headers_are_counted_short") else {
        return;
    };
    let syn = tcp4(false, 1, f::SYN, 0, b"");
    // A TCP header cut at 12 bytes (TC and XDP), an IPv4 header cut at 10
    // (XDP only: the kernel builds no such skb for TC test runs).
    assert!(fx.tc_in(&syn[..14 + 20 + 12]).is_empty());
    assert!(fx.run(names::PROG_XDP, &syn[..14 + 20 + 12]).is_empty());
    assert!(fx.run(names::PROG_XDP, &syn[..14 + 10]).is_empty());
    assert_eq!(fx.stat(stat::SHORT), 3);
    // Whole packets that are simply not interesting are not short.
    assert!(fx.tc_in(&tcp4(false, 1, f::ACK, 1, b"")).is_empty());
    assert_eq!(fx.stat(stat::SHORT), 3);
}

// ---------------------------------------------------------------------------
// Interfaces without a link-layer header (tun, WireGuard, PPP, tunnels).

#[test]
fn l3_framing_syn_v4_and_v6_from_byte_zero() {
    let Some(mut fx) = Fixture::l3("l3_framing_syn_v4_and_v6_from_byte_zero") else {
        return;
    };
    for prog in [names::PROG_TC_INGRESS, names::PROG_XDP] {
        let ev = one(fx.run(prog, l3_of(&tcp4(false, 1000, f::SYN, 0, b""))));
        assert_eq!(
            (ev.family, ev.saddr, ev.daddr),
            (FAMILY_V4, v4(CLIENT4), v4(SERVER4))
        );
        assert_eq!(
            (ev.sport, ev.dport, ev.seq, ev.tcp_flags),
            (40000, 80, 1000, f::SYN)
        );
        let ev = one(fx.run(prog, l3_of(&tcp6(false, 10, f::SYN, 0, b"hi"))));
        assert_eq!(
            (ev.family, ev.saddr, ev.daddr),
            (FAMILY_V6, CLIENT6, SERVER6)
        );
        assert_eq!(
            (ev.sport, ev.dport, ev.seq, ev.payload_len),
            (50000, 443, 10, 2)
        );
    }
    // The whole handshake, as on a tun device.
    one(fx.run(
        names::PROG_TC_EGRESS,
        l3_of(&tcp4(true, 5000, f::SYN | f::ACK, 1001, b"")),
    ));
    let ev = one(fx.tc_in(l3_of(&tcp4(false, 1001, f::ACK, 5001, b""))));
    assert_eq!((ev.seq, ev.ack), (1001, 5001));
    assert_eq!(fx.pending_v4(), 0);
    // An Ethernet frame is garbage here (its first nibble is not 4 or 6).
    assert!(fx.tc_in(&tcp4(false, 1, f::SYN, 0, b"")).is_empty());
}

#[test]
fn l3_framing_icmp_unreachable_quote() {
    let Some(mut fx) = Fixture::l3("l3_framing_icmp_unreachable_quote") else {
        return;
    };
    let syn = tcp4(false, 1234, f::SYN, 0, b"");
    let mut pkt = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 1], CLIENT4, 64)
        .icmpv4_raw(3, 1, [0; 4])
        .write(&mut pkt, l3_of(&syn))
        .unwrap();
    let ev = one(fx.tc_in(&pkt));
    assert_eq!(
        (ev.kind, ev.saddr, ev.daddr),
        (KIND_ICMP_UNREACH, v4(CLIENT4), v4(SERVER4))
    );
    assert_eq!(
        (ev.sport, ev.dport, ev.seq, ev.tcp_flags),
        (40000, 80, 1234, f::SYN)
    );
    let syn6 = tcp6(false, 77, f::SYN, 0, b"");
    let mut pkt = Vec::new();
    PacketBuilder::ipv6(SERVER6, CLIENT6, 64)
        .icmpv6_raw(1, 4, [0; 4])
        .write(&mut pkt, &l3_of(&syn6)[..48])
        .unwrap();
    let ev = one(fx.tc_in(&pkt));
    assert_eq!(
        (ev.kind, ev.family, ev.seq),
        (KIND_ICMP_UNREACH, FAMILY_V6, 77)
    );
}

#[test]
fn l3_framing_garbage_first_byte_emits_nothing() {
    let Some(mut fx) = Fixture::l3("l3_framing_garbage_first_byte_emits_nothing") else {
        return;
    };
    let syn = l3_of(&tcp4(false, 1, f::SYN, 0, b"")).to_vec();
    for first in [0x00, 0x15, 0x55, 0x65, 0xff] {
        let mut g = syn.clone();
        g[0] = first;
        for prog in [names::PROG_TC_INGRESS, names::PROG_XDP] {
            assert!(
                fx.run(prog, &g).is_empty(),
                "first byte {first:#x} via {prog}"
            );
        }
    }
    assert_eq!(fx.stat(stat::EVENTS), 0);
}

#[test]
fn full_ring_buffer_is_counted() {
    // One page: 4096 / (64 + 8 header) = 56 events fit.
    let Some(mut fx) = Fixture::with_ring("full_ring_buffer_is_counted", 4096) else {
        return;
    };
    let syn = tcp4(false, 1, f::SYN, 0, b"");
    let p: &SchedClassifier = fx
        .ebpf
        .program(names::PROG_TC_INGRESS)
        .unwrap()
        .try_into()
        .unwrap();
    let res = p
        .test_run(TestRunOptions {
            data_in: Some(&syn),
            repeat: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(res.return_value, TC_ACT_UNSPEC);
    let events = fx.stat(stat::EVENTS);
    let full = fx.stat(stat::RINGBUF_FULL);
    assert_eq!(events + full, 100);
    assert!(
        full > 0 && events > 0,
        "events {events}, ringbuf_full {full}"
    );
    assert_eq!(fx.events().len() as u64, events);
}

// ---------------------------------------------------------------------------
// Real traffic between two namespaces.

/// Two network namespaces `<name>-a` and `<name>-b` joined by a veth pair
/// `tpk-a` (192.0.2.1) / `tpk-b` (192.0.2.2). Deleted on drop.
struct NetnsPair {
    a: String,
    b: String,
    /// Delete the namespaces on drop, also when the test fails.
    _guards: [tcpeek_testkit::Netns; 2],
}

impl NetnsPair {
    fn new(test: &str) -> Option<NetnsPair> {
        if !is_root() {
            skip(test, "needs root for network namespaces");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            skip(test, "needs ip(8) (iproute2)");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let base = format!(
            "tcpeek-t-{}-{}-{:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos & 0xffff
        );
        let guards = [
            tcpeek_testkit::Netns::new(format!("{base}-a")),
            tcpeek_testkit::Netns::new(format!("{base}-b")),
        ];
        let pair = NetnsPair {
            a: guards[0].name.clone(),
            b: guards[1].name.clone(),
            _guards: guards,
        };
        ip(&[
            "-n", &pair.a, "link", "add", "tpk-a", "type", "veth", "peer", "name", "tpk-b",
            "netns", &pair.b,
        ]);
        ip(&["-n", &pair.a, "addr", "add", "192.0.2.1/24", "dev", "tpk-a"]);
        ip(&["-n", &pair.b, "addr", "add", "192.0.2.2/24", "dev", "tpk-b"]);
        for (ns, dev) in [(&pair.a, "tpk-a"), (&pair.b, "tpk-b")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        Some(pair)
    }

    /// Runs `f` on a thread inside namespace `ns`.
    fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            enter_netns(&path);
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Moves the calling thread into the network namespace at `path`.
fn enter_netns(path: &str) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: a valid fd; only this thread changes namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Polls `cap` until `done(events)` or 10 s pass.
fn collect_until(cap: &mut EbpfCapture, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while !done(&events) && Instant::now() < deadline {
        if cap.drain(&mut events) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    events
}

fn real_handshake(test: &str, opts: EbpfOptions) {
    real_handshake_seen_by(test, opts, 1);
}

/// A handshake and a refused connection with `captures` captures on the
/// same interface, each of which must see all of it.
fn real_handshake_seen_by(test: &str, opts: EbpfOptions, captures: usize) {
    let Some(pair) = NetnsPair::new(test) else {
        return;
    };
    let caps: Vec<EbpfCapture> = (0..captures)
        .map(
            |_| match NetnsPair::in_ns(&pair.a, move || EbpfCapture::open("tpk-a", opts)) {
                Ok(c) => c,
                Err(e) => panic!("{test}: open: {e} ({:?})", std::error::Error::source(&e)),
            },
        )
        .collect();
    // Server in a (where the capture is), client in b.
    let listener = NetnsPair::in_ns(&pair.a, || TcpListener::bind("192.0.2.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
    });
    let client_port = NetnsPair::in_ns(&pair.b, move || {
        let addr = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), port));
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        c.write_all(b"hello").unwrap();
        let p = c.local_addr().unwrap().port();
        // And a connection to a closed port: SYN, then RST from a.
        let closed = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 1));
        assert!(TcpStream::connect_timeout(&closed, Duration::from_secs(5)).is_err());
        p
    });
    server.join().unwrap();
    for (i, mut cap) in caps.into_iter().enumerate() {
        let test = format!("{test}, capture {i}");
        check_real_handshake(&test, &mut cap, client_port);
    }
}

fn check_real_handshake(test: &str, cap: &mut EbpfCapture, client_port: u16) {
    let ours = |e: &Event| e.sport == client_port || e.dport == client_port;
    let events = collect_until(cap, |evs| {
        evs.iter().filter(|e| ours(e)).count() >= 3 && evs.iter().any(|e| e.tcp_flags & f::RST != 0)
    });
    let hs: Vec<&Event> = events.iter().filter(|e| ours(e)).collect();
    let kinds: Vec<(u8, u8)> = hs.iter().map(|e| (e.tcp_flags, e.direction)).collect();
    assert_eq!(
        kinds,
        [
            (f::SYN, DIR_INGRESS),
            (f::SYN | f::ACK, DIR_EGRESS),
            (f::ACK, DIR_INGRESS)
        ],
        "{test}: handshake events {hs:?}"
    );
    assert_eq!(hs[2].ack, hs[1].seq.wrapping_add(1));
    assert_eq!(hs[0].saddr, v4([192, 0, 2, 2]));
    // ts_ns converted to the Unix epoch: within a minute of now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        hs[0].ts_ns.abs_diff(now) < 60_000_000_000,
        "ts_ns {} vs now {now}",
        hs[0].ts_ns
    );
    assert!(hs[0].ts_ns <= hs[1].ts_ns && hs[1].ts_ns <= hs[2].ts_ns);
    let rst = events
        .iter()
        .find(|e| e.tcp_flags & f::RST != 0)
        .expect("RST from the closed port");
    assert_eq!((rst.sport, rst.direction), (1, DIR_EGRESS));
    let st = cap.stats();
    assert!(
        st.packets >= 5 && st.events as usize >= events.len(),
        "{st:?}"
    );
    assert_eq!((st.ringbuf_full, st.map_full, st.bad_records), (0, 0, 0));
}

#[test]
fn real_handshake_tcx() {
    real_handshake("real_handshake_tcx", EbpfOptions::default());
}

#[test]
fn second_capture_on_one_interface_sees_every_packet() {
    // TCX runs the next program only if the previous returned TCX_NEXT
    // (TC_ACT_UNSPEC): with TC_ACT_PIPE the capture attached later saw no
    // ingress packets and the earlier one no egress packets.
    real_handshake_seen_by(
        "second_capture_on_one_interface_sees_every_packet",
        EbpfOptions::default(),
        2,
    );
}

#[test]
fn real_handshake_xdp_ingress() {
    real_handshake(
        "real_handshake_xdp_ingress",
        EbpfOptions {
            xdp: true,
            ..Default::default()
        },
    );
}

#[test]
fn real_handshake_netlink_fallback_and_cleanup() {
    let test = "real_handshake_netlink_fallback_and_cleanup";
    let opts = EbpfOptions {
        tc_mode: TcMode::Netlink,
        ..Default::default()
    };
    let Some(pair) = NetnsPair::new(test) else {
        return;
    };
    let cap = NetnsPair::in_ns(&pair.a, move || EbpfCapture::open("tpk-a", opts)).expect("open");
    let qdiscs = || {
        let out = Command::new("tc")
            .args(["-n", &pair.a, "qdisc", "show", "dev", "tpk-a"])
            .output()
            .expect("run tc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(qdiscs().contains("clsact"), "{}", qdiscs());
    drop(cap);
    assert!(
        !qdiscs().contains("clsact"),
        "clsact left behind: {}",
        qdiscs()
    );
    drop(pair);
    // And the full event check in that mode.
    real_handshake(test, opts);
}

#[tokio::test]
async fn next_batch_wakes_up_on_events() {
    let test = "next_batch_wakes_up_on_events";
    let Some(pair) = NetnsPair::new(test) else {
        return;
    };
    let mut cap = NetnsPair::in_ns(&pair.a, || {
        EbpfCapture::open("tpk-a", EbpfOptions::default())
    })
    .expect("open");
    let b = pair.b.clone();
    let client = std::thread::spawn(move || {
        NetnsPair::in_ns(&b, || {
            let closed = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 1));
            let _ = TcpStream::connect_timeout(&closed, Duration::from_secs(5));
        })
    });
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !out.iter().any(|e: &Event| e.tcp_flags & f::RST != 0) {
            cap.next_batch(&mut out).await.unwrap();
        }
    })
    .await
    .expect("events within 10 s");
    client.join().unwrap();
    assert!(out
        .iter()
        .any(|e| e.tcp_flags == f::SYN && e.direction == DIR_INGRESS));
}

// ---------------------------------------------------------------------------
// SIGKILL leaves nothing attached.

const HOLD_ENV: &str = "TCPEEK_TEST_HOLD_NETNS";

/// Not a test: the child process of `sigkill_leaves_nothing_attached`
/// (runs only with the environment variable set).
#[test]
#[ignore = "helper process for sigkill_leaves_nothing_attached"]
fn sigkill_helper_hold_capture() {
    let Ok(ns) = std::env::var(HOLD_ENV) else {
        return;
    };
    enter_netns(&format!("/run/netns/{ns}"));
    let cap = EbpfCapture::open(
        "tpk-a",
        EbpfOptions {
            xdp: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ids: Vec<String> = cap.program_ids().iter().map(|i| i.to_string()).collect();
    println!("HOLDING {}", ids.join(","));
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn sigkill_leaves_nothing_attached() {
    let test = "sigkill_leaves_nothing_attached";
    let Some(pair) = NetnsPair::new(test) else {
        return;
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_helper_hold_capture",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &pair.a)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn helper");
    let mut ids = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest may print "test name ... " on the same line first.
        if let Some(rest) = line.split_once("HOLDING ").map(|(_, r)| r) {
            ids = rest.split(',').map(|s| s.parse::<u32>().unwrap()).collect();
            break;
        }
    }
    assert!(ids.len() >= 2, "helper did not attach (ids {ids:?})");
    let attached = |ids: &[u32]| -> (Vec<u32>, Vec<u32>, bool) {
        let progs = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .map(|p| p.id())
            .filter(|id| ids.contains(id))
            .collect();
        let links = aya::programs::loaded_links()
            .filter_map(Result::ok)
            .filter(|l| ids.contains(&l.program_id()))
            .map(|l| l.id())
            .collect();
        let out = Command::new("ip")
            .args(["-n", &pair.a, "-d", "link", "show", "tpk-a"])
            .output()
            .unwrap();
        (
            progs,
            links,
            String::from_utf8_lossy(&out.stdout).contains("xdp"),
        )
    };
    let before = attached(&ids);
    assert!(
        !before.0.is_empty() && !before.1.is_empty() && before.2,
        "while held: {before:?}"
    );

    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // Link and program release is asynchronous (RCU): poll.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = attached(&ids);
    while now != (vec![], vec![], false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now = attached(&ids);
    }
    assert_eq!(
        now,
        (vec![], vec![], false),
        "left attached after SIGKILL (programs, links, xdp)"
    );
    let out = Command::new("tc")
        .args(["-n", &pair.a, "filter", "show", "dev", "tpk-a", "ingress"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}
