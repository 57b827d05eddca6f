//! One byte-level corpus through both backends' decoding: the libpcap
//! decoder (`Decoder::decode_frame`, on the host) and the eBPF classifier
//! (`BPF_PROG_TEST_RUN` of the TC and XDP programs). For every frame both
//! must agree: the same event, or both none, and a frame the host calls
//! truncated or malformed is counted so by the kernel (`stat::SHORT`,
//! `stat::MALFORMED`).
//!
//! The corpus: every frame of the fixture captures (so every case of the
//! verdict fixtures), hand-made frames at the edges of the walk (VLAN
//! stacks, IPv6 extension chains, AH, ICMP quotes), and more than 100,000
//! mutations of them (bytes set to random or meaningful values, cut,
//! padded), from a fixed seed so that a failure reproduces. The same again
//! for interfaces without a link-layer header (the IP header at byte 0).
//!
//! The kernel forwards an ACK only if it completes a handshake it
//! remembers. For a frame the host decodes as an ACK, the test first runs
//! the SYN/ACK that ACK would complete, so that the kernel must forward it
//! too: a classifier that parsed the ACK differently would look up another
//! tuple, or judge another acknowledgement number, and stay silent.
//!
//! Needs root; without it the test prints why it is skipped.

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{SchedClassifier, TestRun as _, TestRunOptions, Xdp},
    Ebpf,
};
use etherparse::PacketBuilder;
use tcpeek::capture::decode::{ChecksumMode, DecodeError, Decoder, LinkType};
use tcpeek::capture::ebpf::{self, names, Framing};
use tcpeek_common::{
    stat,
    tcp_flags::{ACK, RST, SYN},
    wire::ETH_HLEN,
    Event, DIR_UNKNOWN, FAMILY_V4, KIND_TCP,
};
use tcpeek_testkit::fixtures::{self, CLASSIC};
use tcpeek_testkit::mutate::mutate;
use tcpeek_testkit::pcap::read_classic;
use tcpeek_testkit::rng::Rng;

/// Mutations per framing: Ethernet, then raw IP.
const MUTANTS_ETHERNET: usize = 100_000;
const MUTANTS_IP: usize = 30_000;

/// The frames of a classic pcap fixture, with its link type. A frame cut
/// by the capture's snapshot length is taken as it is: to the kernel it is
/// a packet that short.
fn frames(name: &str) -> (u32, Vec<Vec<u8>>) {
    let file = read_classic(&fixtures::path(name)).unwrap_or_else(|e| panic!("{e}"));
    let frames = file.records.into_iter().map(|r| r.data).collect();
    (file.header.linktype, frames)
}

/// The IP packet of an Ethernet or SLL2 frame, if it carries one untagged.
fn ip_of(link: u32, frame: &[u8]) -> Option<Vec<u8>> {
    let (at, ethertype) = match link {
        1 => (ETH_HLEN, frame.get(12..14)?),
        276 => (20, frame.get(0..2)?),
        _ => return None,
    };
    matches!(ethertype, [0x08, 0x00] | [0x86, 0xdd]).then(|| frame[at..].to_vec())
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const A4: [u8; 4] = [10, 0, 0, 2];
const B4: [u8; 4] = [10, 0, 0, 1];
const A6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// Ethernet frames at the edges of the walk.
fn edge_frames() -> Vec<Vec<u8>> {
    let syn4 = {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(A4, B4, 64)
            .tcp(40000, 80, 1000, 64240)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        v
    };
    let syn6 = {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(A6, B6, 64)
            .tcp(40000, 80, 1000, 64240)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        v
    };
    let tagged = |tpids: &[u16], frame: &[u8]| {
        let mut v = frame[..12].to_vec();
        for &t in tpids {
            v.extend_from_slice(&t.to_be_bytes());
            v.extend_from_slice(&[0, 7]);
        }
        v.extend_from_slice(&frame[12..]);
        v
    };
    // IPv6 with `n` destination-options headers (8 bytes each).
    let ext6 = |n: usize, first: u8| {
        let mut v = syn6.clone();
        let tcp = v.split_off(ETH_HLEN + 40);
        let mut ext = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n { 6 } else { 60 };
            ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        v[ETH_HLEN + 6] = if n == 0 { 6 } else { first };
        let plen = (ext.len() + tcp.len()) as u16;
        v[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&plen.to_be_bytes());
        v.extend_from_slice(&ext);
        v.extend_from_slice(&tcp);
        v
    };
    // IPv4 with AH (RFC 4302, 12 bytes of ICV) before TCP.
    let ah4 = {
        let mut v = syn4.clone();
        let tcp = v.split_off(ETH_HLEN + 20);
        v[ETH_HLEN + 9] = 51;
        let total = (20 + 24 + tcp.len()) as u16;
        v[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[6, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0; 12]);
        v.extend_from_slice(&tcp);
        v
    };
    // ICMP port unreachable quoting `quote` (an IPv4 packet).
    let icmp4 = |quote: &[u8]| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_B, MAC_A)
            .ipv4(B4, A4, 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut v, quote)
            .unwrap();
        v
    };
    let icmp6 = |quote: &[u8]| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_B, MAC_A)
            .ipv6(B6, A6, 64)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut v, quote)
            .unwrap();
        v
    };
    vec![
        syn4.clone(),
        syn6.clone(),
        tagged(&[0x8100], &syn4),
        tagged(&[0x88a8, 0x8100], &syn6),
        tagged(&[0x9100], &syn4),
        tagged(&[0x9100, 0x8100], &syn4),
        tagged(&[0x88a8, 0x8100, 0x8100], &syn4),
        ext6(1, 60),
        ext6(5, 0),
        ext6(6, 60),
        ext6(7, 60),
        ah4.clone(),
        icmp4(&syn4[ETH_HLEN..]),
        icmp4(&syn4[ETH_HLEN..ETH_HLEN + 28]),
        icmp4(&ah4[ETH_HLEN..]),
        icmp6(&syn6[ETH_HLEN..]),
        icmp6(&ext6(2, 0)[ETH_HLEN..]),
        icmp6(&syn6[ETH_HLEN..ETH_HLEN + 48]),
    ]
}

/// One loaded classifier and its maps.
struct Kernel {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    framing: Framing,
}

impl Kernel {
    fn load(framing: Framing) -> Kernel {
        let mut ebpf = ebpf::load_for(0, framing).expect("load the eBPF object");
        let p: &mut SchedClassifier = ebpf
            .program_mut(names::PROG_TC_INGRESS)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("verifier accepts the TC program");
        let p: &mut Xdp = ebpf
            .program_mut(names::PROG_XDP)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("verifier accepts the XDP program");
        let ring = RingBuf::try_from(ebpf.take_map(names::MAP_EVENTS).unwrap()).unwrap();
        let stats = PerCpuArray::try_from(ebpf.take_map(names::MAP_STATS).unwrap()).unwrap();
        Kernel {
            ebpf,
            ring,
            stats,
            framing,
        }
    }

    fn stat(&self, idx: u32) -> u64 {
        self.stats.get(&idx, 0).unwrap().iter().sum()
    }

    /// Runs `prog` on `pkt`; the events it emitted, or `None` if the kernel
    /// refuses to build such a test packet: shorter than an Ethernet header,
    /// or, for TC, without a whole IP header after it (the kernel parses
    /// it to build the skb; XDP then still runs on the frame).
    fn run(&mut self, prog: &str, pkt: &[u8]) -> Option<Vec<Event>> {
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
        };
        let refusable = if prog == names::PROG_XDP {
            ETH_HLEN
        } else {
            ETH_HLEN + 40
        };
        if res.is_err() && pkt.len() < refusable {
            return None;
        }
        res.unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {prog} on {pkt:02x?}: {e}"));
        let mut events = Vec::new();
        while let Some(item) = self.ring.next() {
            events.push(ebpf::decode_record(&item).expect("an event record"));
        }
        Some(events)
    }

    /// The SYN/ACK that the ACK `ev` completes, in this kernel's framing.
    fn synack_for(&self, ev: &Event) -> Vec<u8> {
        let (src, dst) = (ev.daddr, ev.saddr);
        let mut v = Vec::new();
        let ip = if ev.family == FAMILY_V4 {
            let (s, d) = (src[..4].try_into().unwrap(), dst[..4].try_into().unwrap());
            match self.framing {
                Framing::Ethernet => PacketBuilder::ethernet2(MAC_B, MAC_A).ipv4(s, d, 64),
                Framing::Ip => PacketBuilder::ipv4(s, d, 64),
            }
        } else {
            match self.framing {
                Framing::Ethernet => PacketBuilder::ethernet2(MAC_B, MAC_A).ipv6(src, dst, 64),
                Framing::Ip => PacketBuilder::ipv6(src, dst, 64),
            }
        };
        ip.tcp(ev.dport, ev.sport, ev.ack.wrapping_sub(1), 64240)
            .syn()
            .ack(ev.seq)
            .write(&mut v, &[])
            .unwrap();
        v
    }
}

/// What the kernel must do with a frame, from what the host made of it.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// Emit this event (times and directions aside).
    Event(Event),
    /// Emit it once the handshake it completes is remembered.
    CompletingAck(Event),
    /// Emit nothing and count nothing.
    Nothing,
    /// Emit nothing; count it short (truncated).
    Short,
    /// Emit nothing; count it malformed.
    Malformed,
}

fn want(host: Result<Option<Event>, DecodeError>) -> Want {
    match host {
        Ok(Some(ev)) if ev.kind != KIND_TCP || ev.tcp_flags & (SYN | RST) != 0 => Want::Event(ev),
        Ok(Some(ev)) if ev.tcp_flags & ACK != 0 => Want::CompletingAck(ev),
        Ok(_) => Want::Nothing,
        Err(DecodeError::Truncated { .. }) => Want::Short,
        Err(DecodeError::Malformed { .. } | DecodeError::Unsupported { .. }) => Want::Malformed,
        Err(e @ DecodeError::BadChecksum { .. }) => panic!("no checksums are checked: {e}"),
    }
}

/// Events compared without what only one side stamps.
fn comparable(ev: &Event) -> Event {
    Event {
        ts_ns: 0,
        direction: DIR_UNKNOWN,
        ..*ev
    }
}

/// How many frames of a corpus the host decoded into each [`Want`].
#[derive(Debug, Default)]
struct Kinds {
    events: usize,
    acks: usize,
    nothing: usize,
    short: usize,
    malformed: usize,
}

/// Runs every frame of `corpus` through the host decoder and both kernel
/// programs; the frames on which they disagree, described.
fn disagreements(
    kernel: &mut Kernel,
    link: LinkType,
    corpus: &[Vec<u8>],
    kinds: &mut Kinds,
) -> Vec<String> {
    let host = Decoder::new(link, ChecksumMode::None);
    let mut differ = Vec::new();
    for frame in corpus {
        let want = want(host.decode(0, frame, frame.len()));
        *match want {
            Want::Event(_) => &mut kinds.events,
            Want::CompletingAck(_) => &mut kinds.acks,
            Want::Nothing => &mut kinds.nothing,
            Want::Short => &mut kinds.short,
            Want::Malformed => &mut kinds.malformed,
        } += 1;
        for prog in [names::PROG_TC_INGRESS, names::PROG_XDP] {
            if let Want::CompletingAck(ev) = &want {
                let synack = kernel.synack_for(ev);
                let seeded = kernel.run(prog, &synack).unwrap();
                assert_eq!(seeded.len(), 1, "the SYN/ACK {synack:02x?} is reported");
            }
            let (short, malformed) = (kernel.stat(stat::SHORT), kernel.stat(stat::MALFORMED));
            let Some(got) = kernel.run(prog, frame) else {
                // Not a test packet the kernel builds for this program.
                continue;
            };
            let counted = (
                kernel.stat(stat::SHORT) - short,
                kernel.stat(stat::MALFORMED) - malformed,
            );
            let got: Vec<Event> = got.iter().map(comparable).collect();
            let ok = match &want {
                Want::Event(ev) | Want::CompletingAck(ev) => {
                    got == [comparable(ev)] && counted == (0, 0)
                }
                Want::Nothing => got.is_empty() && counted == (0, 0),
                Want::Short => got.is_empty() && counted == (1, 0),
                Want::Malformed => got.is_empty() && counted == (0, 1),
            };
            if !ok {
                differ.push(format!(
                    "{prog}: {frame:02x?}\n  host: {want:?}\n  kernel: {got:?}, \
                     (short, malformed) counted {counted:?}"
                ));
            }
        }
    }
    differ
}

fn check(kernel: &mut Kernel, link: LinkType, corpus: &[Vec<u8>], what: &str) {
    let mut kinds = Kinds::default();
    let differ = disagreements(kernel, link, corpus, &mut kinds);
    println!("{what}: {} frames, by the host: {kinds:?}", corpus.len());
    // A corpus that exercised one outcome only would prove little.
    if corpus.len() >= 1000 {
        let least = corpus.len() / 100;
        assert!(
            kinds.events > least
                && kinds.acks > least
                && kinds.nothing > least
                && kinds.short > least
                && kinds.malformed > least,
            "{what}: every outcome in at least 1% of the frames: {kinds:?}"
        );
    }
    assert!(
        differ.is_empty(),
        "{what}: {} of {} frames differ; the first:\n{}",
        differ.len(),
        corpus.len(),
        differ[..differ.len().min(5)].join("\n")
    );
}

fn mutants(rng: &mut Rng, seeds: &[Vec<u8>], n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(rng, seed)
        })
        .collect()
}

#[test]
fn host_decoder_and_kernel_classifier_agree_on_every_frame() {
    if !tcpeek_testkit::is_root() {
        tcpeek_testkit::skip("needs root (CAP_BPF) for BPF_PROG_TEST_RUN");
        return;
    }
    let mut ethernet = edge_frames();
    let mut ip = Vec::new();
    for name in CLASSIC {
        let (link, frames) = frames(name);
        for f in frames {
            ip.extend(ip_of(link, &f));
            if link == 1 {
                ethernet.push(f);
            }
        }
    }
    ip.extend(
        edge_frames()
            .iter()
            .filter_map(|f| ip_of(1, f))
            .collect::<Vec<_>>(),
    );
    let mut rng = Rng::new(0x7cbe_e4a1_2d05_9f13);

    let mut kernel = Kernel::load(Framing::Ethernet);
    check(
        &mut kernel,
        LinkType::Ethernet,
        &ethernet,
        "Ethernet corpus",
    );
    let m = mutants(&mut rng, &ethernet, MUTANTS_ETHERNET);
    check(&mut kernel, LinkType::Ethernet, &m, "Ethernet mutants");

    let mut kernel = Kernel::load(Framing::Ip);
    check(&mut kernel, LinkType::RawIp, &ip, "raw IP corpus");
    let m = mutants(&mut rng, &ip, MUTANTS_IP);
    check(&mut kernel, LinkType::RawIp, &m, "raw IP mutants");
}
