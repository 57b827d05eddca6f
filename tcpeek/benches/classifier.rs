//! Per-packet cost of the eBPF classifier, measured in the kernel with
//! `BPF_PROG_TEST_RUN` (the kernel runs the program `REPEAT` times on the
//! same skb and reports the mean time per run).
//!
//! Each packet kind is measured next to `tcpeek_empty`, a classifier that
//! only returns `TC_ACT_UNSPEC`, in alternating rounds; the table shows the
//! median over rounds and the difference, i.e. what the classification
//! itself costs. The ring buffer is sized so that the SYN rounds never fill
//! it (its records are discarded between rounds), and `ringbuf_full` is
//! printed to prove it.
//!
//! Run as root: `cargo bench -p tcpeek --bench classifier`.
//! Targets: data segment and pure ACK <= 15 ns above empty, SYN <= 60 ns.

use aya::{
    maps::{MapData, RingBuf},
    programs::{SchedClassifier, TestRun as _, TestRunOptions},
    Ebpf,
};
use etherparse::PacketBuilder;
use tcpeek::capture::ebpf::{self, names};

const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 7;
/// 128 MiB: more than REPEAT records of 64 + 8 bytes.
const RING_BYTES: u32 = 128 << 20;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: accept and ignore arguments.
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("classifier bench SKIPPED: needs root (CAP_BPF) for BPF_PROG_TEST_RUN");
        return;
    }
    let quick = std::env::args().any(|a| a == "--test" || a == "--quick");
    let (repeat, rounds) = if quick { (10_000, 1) } else { (REPEAT, ROUNDS) };

    let mut ebpf = ebpf::load(RING_BYTES).expect("load the eBPF object");
    for name in [names::PROG_TC_INGRESS, names::PROG_EMPTY] {
        let p: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
        p.load().expect("load program");
    }
    let mut ring = RingBuf::try_from(ebpf.take_map(names::MAP_EVENTS).unwrap()).unwrap();

    let cases: [(&str, Vec<u8>); 6] = [
        ("IPv4 data segment (1400 B)", tcp(false, Kind::Data)),
        ("IPv4 pure ACK, not in map", tcp(false, Kind::Ack)),
        ("IPv4 SYN (emits an event)", tcp(false, Kind::Syn)),
        ("IPv6 data segment (1400 B)", tcp(true, Kind::Data)),
        ("IPv6 pure ACK, not in map", tcp(true, Kind::Ack)),
        ("IPv6 SYN (emits an event)", tcp(true, Kind::Syn)),
    ];

    println!("BPF_PROG_TEST_RUN, {repeat} runs x {rounds} rounds, median ns/packet");
    println!(
        "{:<30} {:>10} {:>10} {:>12}",
        "packet", "empty", "tcpeek", "above empty"
    );
    for (what, pkt) in &cases {
        let mut empty = Vec::new();
        let mut full = Vec::new();
        for _ in 0..rounds {
            empty.push(run(&ebpf, names::PROG_EMPTY, pkt, repeat));
            full.push(run(&ebpf, names::PROG_TC_INGRESS, pkt, repeat));
            discard(&mut ring);
        }
        let (e, f) = (median(&mut empty), median(&mut full));
        println!("{what:<30} {e:>10.2} {f:>10.2} {:>12.2}", f - e);
    }
    let stats = stats(&mut ebpf);
    println!(
        "kernel counters: packets {}, events {}, ringbuf_full {}, map_full {}",
        stats[3], stats[0], stats[1], stats[2]
    );
}

fn run(ebpf: &Ebpf, prog: &str, pkt: &[u8], repeat: u32) -> f64 {
    let p: &SchedClassifier = ebpf.program(prog).unwrap().try_into().unwrap();
    let res = p
        .test_run(TestRunOptions {
            data_in: Some(pkt),
            repeat,
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    assert_eq!(res.return_value as i32, -1, "TC_ACT_UNSPEC");
    // The kernel reports the mean duration of one run.
    res.duration.as_nanos() as f64
}

fn discard(ring: &mut RingBuf<MapData>) {
    while ring.next().is_some() {}
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn stats(ebpf: &mut Ebpf) -> [u64; 4] {
    let m: aya::maps::PerCpuArray<_, u64> =
        aya::maps::PerCpuArray::try_from(ebpf.map(names::MAP_STATS).unwrap()).unwrap();
    let mut out = [0; 4];
    for (i, o) in out.iter_mut().enumerate() {
        *o = m.get(&(i as u32), 0).unwrap().iter().sum();
    }
    out
}

enum Kind {
    Data,
    Ack,
    Syn,
}

fn tcp(v6: bool, kind: Kind) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = if v6 {
        let a = |l: u8| {
            let mut x = [0u8; 16];
            x[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            x[15] = l;
            x
        };
        eth.ipv6(a(1), a(2), 64)
    } else {
        eth.ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
    };
    let t = ip.tcp(40000, 443, 1_000_000, 64240);
    let (t, payload) = match kind {
        Kind::Data => (t.ack(77).psh(), vec![0x5a; 1400]),
        Kind::Ack => (t.ack(77), vec![]),
        Kind::Syn => (t.syn(), vec![]),
    };
    let mut v = Vec::new();
    t.write(&mut v, &payload).unwrap();
    v
}
