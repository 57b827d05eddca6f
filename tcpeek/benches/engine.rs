//! Engine and file-mode benchmarks. Prints figures; asserts nothing.
//!
//! `cargo bench -p tcpeek --bench engine`
//!
//! 1. Engine throughput on a synthetic event stream (handshakes followed by
//!    data segments, as libpcap delivers them), engine alone, with filters
//!    and counters, and with the detail the metrics report.
//! 2. Memory per tracked handshake: a table filled with open handshakes.
//! 3. File mode: packets/s of `tcpeek -r`'s read loop on a large generated
//!    capture, next to a bare pcap-parser read loop over the same file (the
//!    reader `-r` uses, so the ratio is tcpeek's own cost) and, for
//!    comparison, a bare libpcap loop.
//! 4. Metrics: the cost of a scrape (encoding a snapshot) and of a publish
//!    (the snapshot copy live capture makes after each batch), and the
//!    aggregator's events/s publishing as live capture does, with and
//!    without a thread scraping it flat out, interleaved.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

use etherparse::PacketBuilder;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};
use tcpeek::capture::decode::ChecksumMode;
use tcpeek::capture::file::FileCapture;
use tcpeek::daemon::{Aggregator, FileFeed};
use tcpeek::engine::{Engine, EngineConfig};
use tcpeek::filter::FilterSet;
use tcpeek::local::{Local, Prefix};
use tcpeek::metrics::{encode, About, Format};
use tcpeek::output::SessionPrinter;
use tcpeek::stats::SharedCounters;
use tcpeek_common::{tcp_flags::*, Event, FAMILY_V4, KIND_TCP};
use tcpeek_testkit::pcap::{PcapHeader, PcapWriter, LINKTYPE_ETHERNET};

const SERVER: [u8; 4] = [10, 0, 0, 1];
const DATA_PER_CONN: usize = 3;

fn client_ip(i: u32) -> [u8; 4] {
    let c = 0x0a80_0000u32 + i / 50_000;
    c.to_be_bytes()
}

fn client_port(i: u32) -> u16 {
    (i % 50_000) as u16 + 10_000
}

/// One connection's segments: handshake, then data both ways.
fn connection(i: u32, t0: u64, payload: u16) -> Vec<(Event, [u8; 4], [u8; 4])> {
    let c = client_ip(i);
    let cp = client_port(i);
    let (cisn, sisn) = (i.wrapping_mul(2_654_435_761), i.wrapping_mul(40_503));
    let seg = |dt: u64, from_client: bool, flags: u8, seq: u32, ack: u32, len: u16| {
        let (s, d, sp, dp) = if from_client {
            (c, SERVER, cp, 80)
        } else {
            (SERVER, c, 80, cp)
        };
        let mut ev = Event {
            ts_ns: t0 + dt,
            seq,
            ack,
            sport: sp,
            dport: dp,
            payload_len: len,
            kind: KIND_TCP,
            family: FAMILY_V4,
            tcp_flags: flags,
            ..Event::ZERO
        };
        ev.saddr[..4].copy_from_slice(&s);
        ev.daddr[..4].copy_from_slice(&d);
        (ev, s, d)
    };
    let mut v = vec![
        seg(0, true, SYN, cisn, 0, 0),
        seg(1000, false, SYN | ACK, sisn, cisn + 1, 0),
        seg(2000, true, ACK, cisn + 1, sisn + 1, 0),
    ];
    for k in 0..DATA_PER_CONN as u32 {
        v.push(seg(
            3000 + u64::from(k) * 1000,
            k % 2 == 0,
            ACK | PSH,
            cisn + 1 + k * u32::from(payload),
            sisn + 1,
            payload,
        ));
    }
    v
}

/// Connections 1 ms apart (1000 handshakes/s): finished handshakes are
/// forgotten after the 130 s linger time, so after the first 130 000 the
/// table stays the same size, as in a long-running daemon.
const SPACING_NS: u64 = 1_000_000;

fn stream(from: u32, to: u32) -> Vec<Event> {
    (from..to)
        .flat_map(|i| connection(i, u64::from(i) * SPACING_NS, 100))
        .map(|(e, _, _)| e)
        .collect()
}

fn filters() -> FilterSet {
    let local = Local::Prefixes(vec![Prefix::host(IpAddr::V4(Ipv4Addr::from(SERVER)))]);
    FilterSet::parse(
        &["web:RX@%:80:443", "lan:RX@10.128.0.0/9:%", ":RX@%:22"],
        local,
    )
    .unwrap()
}

/// An aggregator with the bench's filters that has seen `warmup`; with
/// `detail`, it keeps what the metrics report.
fn warm_aggregator(cfg: EngineConfig, warmup: &[Event], detail: bool) -> Aggregator {
    let mut agg = Aggregator::new(
        Engine::new(cfg),
        filters(),
        SessionPrinter::new(true, false, Box::new(std::io::sink())),
    );
    if detail {
        agg = agg.with_detail(tcpeek::stats::histogram::Buckets::default());
    }
    for ev in warmup {
        agg.event(ev);
    }
    agg
}

fn engine_throughput() {
    let (warm, conns) = (200_000, 500_000);
    let warmup = stream(0, warm);
    let events = stream(warm, warm + conns);
    let cfg = EngineConfig::new(60_000_000_000, 2_000_000, false);
    println!(
        "engine: {} events ({conns} handshakes + {DATA_PER_CONN} data segments each), after {warm} handshakes of warm-up",
        events.len()
    );

    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut engine = Engine::new(cfg);
        let mut out = Vec::with_capacity(64);
        for ev in &warmup {
            engine.expire(ev.ts_ns, &mut out);
            engine.process(ev, |_| Some(1), &mut out);
            out.clear();
        }
        let t = Instant::now();
        for ev in &events {
            engine.expire(ev.ts_ns, &mut out);
            engine.process(ev, |_| Some(1), &mut out);
            out.clear();
        }
        best = best.min(t.elapsed().as_secs_f64());
        black_box(engine.pending());
    }
    println!(
        "  engine alone:                 {:6.1} M events/s",
        events.len() as f64 / best / 1e6
    );

    // Without and with the metrics' detail, alternately. For instruction
    // counts of one of them (valgrind --tool=callgrind), the environment
    // variable BENCH_DETAIL=0 or 1 runs only that one.
    let only = std::env::var("BENCH_DETAIL").ok();
    let mut best = [f64::MAX; 2];
    for _ in 0..3 {
        for (i, detail) in [false, true].into_iter().enumerate() {
            if only.as_deref().is_some_and(|o| o != ["0", "1"][i]) {
                continue;
            }
            let mut agg = warm_aggregator(cfg, &warmup, detail);
            let t = Instant::now();
            for ev in &events {
                agg.event(ev);
            }
            agg.flush_input();
            best[i] = best[i].min(t.elapsed().as_secs_f64());
            assert_eq!(
                agg.counters().filters[0].1.success.total,
                u64::from(warm + conns)
            );
        }
    }
    println!(
        "  engine + filters + counters:  {:6.1} M events/s",
        events.len() as f64 / best[0] / 1e6
    );
    println!(
        "  ... + the metrics' detail:    {:6.1} M events/s ({:.3}x the time)",
        events.len() as f64 / best[1] / 1e6,
        best[1] / best[0]
    );
}

fn memory_per_handshake() {
    for n in [100_000u32, 1_000_000, 2_000_000] {
        let mut engine = Engine::new(EngineConfig::new(60_000_000_000, n as usize, false));
        let mut out = Vec::new();
        for i in 0..n {
            let (syn, _, _) = connection(i, 0, 0).swap_remove(0);
            engine.process(&syn, |_| Some(1), &mut out);
        }
        assert_eq!(engine.pending(), n as usize);
        println!(
            "memory: {n:>9} open handshakes: {:6.1} MB, {:5.1} bytes per handshake",
            engine.heap_bytes() as f64 / 1e6,
            engine.heap_bytes() as f64 / f64::from(n)
        );
    }
}

fn write_capture(path: &Path, conns: u32, payload: u16) -> usize {
    let file = std::fs::File::create(path).unwrap();
    let header = PcapHeader::new(LINKTYPE_ETHERNET);
    let mut save = PcapWriter::new(BufWriter::with_capacity(1 << 20, file), header).unwrap();
    let mut frames = 0;
    let mut buf = Vec::new();
    for i in 0..conns {
        for (ev, s, d) in connection(
            i,
            1_767_225_600_000_000_000 + u64::from(i) * SPACING_NS,
            payload,
        ) {
            buf.clear();
            let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4(s, d, 64)
                .tcp(ev.sport, ev.dport, ev.seq, 65_535)
                .ack(ev.ack);
            let f = ev.tcp_flags;
            if f & SYN != 0 {
                b = b.syn();
            }
            if f & PSH != 0 {
                b = b.psh();
            }
            if f & ACK == 0 {
                // Builder sets ACK with .ack(); a bare SYN has it cleared below.
            }
            let payload = vec![0u8; usize::from(ev.payload_len)];
            b.write(&mut buf, &payload).unwrap();
            if f & ACK == 0 {
                // TCP flags byte: 14 (Ethernet) + 20 (IPv4) + 13.
                buf[14 + 20 + 13] &= !ACK;
            }
            save.record(ev.ts_ns, &buf).unwrap();
            frames += 1;
        }
    }
    save.get_mut().flush().unwrap();
    frames
}

fn file_mode() {
    // Small data segments make the bare read loop as cheap as it gets (the
    // worst case for the ratio); full-size ones are what busy links carry.
    file_mode_with(300_000, 100);
    file_mode_with(100_000, 1448);
}

fn file_mode_with(conns: u32, payload: u16) {
    let dir = std::env::temp_dir().join(format!("tcpeek-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.pcap");
    let frames = write_capture(&path, conns, payload);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "file mode: {frames} frames, {:.0} MB ({conns} handshakes, {DATA_PER_CONN} data segments of {payload} bytes each)",
        size as f64 / 1e6
    );

    let mut bare = f64::MAX;
    let mut libpcap = f64::MAX;
    let mut decode = f64::MAX;
    let mut ours = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut cap = FileCapture::open(&path, ChecksumMode::None).unwrap();
        let mut events = 0usize;
        while let Ok(Some(frame)) = cap.next_frame() {
            events += usize::from(frame.event.is_some());
            black_box(frame);
        }
        decode = decode.min(t.elapsed().as_secs_f64());
        assert_eq!(events, frames);

        // The reader `-r` uses, with the same 1 MiB buffer, doing nothing.
        let t = Instant::now();
        let file = std::fs::File::open(&path).unwrap();
        let mut reader = LegacyPcapReader::new(1 << 20, file).unwrap();
        let mut n = 0usize;
        let mut bytes = 0usize;
        loop {
            match reader.next() {
                Ok((len, block)) => {
                    if let PcapBlockOwned::Legacy(b) = block {
                        n += 1;
                        bytes += b.data.len();
                    }
                    reader.consume(len);
                }
                Err(PcapError::Incomplete(_)) => reader.refill().unwrap(),
                Err(PcapError::Eof) => break,
                Err(e) => panic!("{e}"),
            }
        }
        black_box(bytes);
        assert_eq!(n, frames);
        bare = bare.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut cap = pcap::Capture::from_file(&path).unwrap();
        let mut n = 0usize;
        let mut bytes = 0usize;
        while let Ok(p) = cap.next_packet() {
            n += 1;
            bytes += p.data.len();
        }
        black_box(bytes);
        assert_eq!(n, frames);
        libpcap = libpcap.min(t.elapsed().as_secs_f64());

        // run_file's loop.
        let t = Instant::now();
        let mut cap = FileCapture::open(&path, ChecksumMode::None).unwrap();
        let mut agg = Aggregator::new(
            Engine::new(EngineConfig::new(60_000_000_000, 2_000_000, false)),
            filters(),
            SessionPrinter::new(true, false, Box::new(std::io::sink())),
        );
        let mut feed = FileFeed::new();
        while let Ok(Some(frame)) = cap.next_frame() {
            feed.frame(&mut agg, frame.ts_ns, frame.event);
        }
        feed.finish(&mut agg);
        ours = ours.min(t.elapsed().as_secs_f64());
        assert_eq!(agg.counters().filters[0].1.success.total, u64::from(conns));
    }
    println!(
        "  bare pcap-parser loop: {:6.2} M packets/s ({bare:.3} s)",
        frames as f64 / bare / 1e6
    );
    println!(
        "  bare libpcap loop:     {:6.2} M packets/s ({libpcap:.3} s)",
        frames as f64 / libpcap / 1e6
    );
    println!(
        "  read + decode:         {:6.2} M packets/s ({decode:.3} s)",
        frames as f64 / decode / 1e6
    );
    println!(
        "  tcpeek -r loop:        {:6.2} M packets/s ({ours:.3} s)",
        frames as f64 / ours / 1e6
    );
    println!("  ratio tcpeek / bare:    {:6.2}x the time", ours / bare);
    println!("  ratio tcpeek / libpcap: {:6.2}x the time", ours / libpcap);
    let _ = std::fs::remove_dir_all(&dir);
}

fn min_median_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn metrics() {
    let (warm, conns) = (200_000, 500_000);
    let warmup = stream(0, warm);
    let events = stream(warm, warm + conns);
    let cfg = EngineConfig::new(60_000_000_000, 2_000_000, false);
    let about = About {
        version: "bench",
        ..About::new("ebpf", "eth0")
    };
    let aggregator = || warm_aggregator(cfg, &warmup, true);
    let mut agg = aggregator();
    let counters = agg.counters().clone();
    println!(
        "metrics: {} filters ({} series)",
        counters.filters.len(),
        encode(counters.clone(), &about, Format::Prometheus)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count()
    );
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let n = 2000;
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            bytes = black_box(encode(counters.clone(), &about, format)).len();
        }
        println!(
            "  scrape ({format:?}): {:7.1} us, {bytes} bytes",
            t.elapsed().as_secs_f64() / f64::from(n) * 1e6
        );
    }
    let shared = SharedCounters::new(counters.clone());
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        shared.publish(agg.counters());
    }
    println!(
        "  publish (snapshot copy):  {:7.2} us",
        t.elapsed().as_secs_f64() / f64::from(n) * 1e6
    );

    // Live capture's loop: a batch of 256 events, then a publish.
    let run = |scraper: bool| -> f64 {
        let mut agg = aggregator();
        let shared = SharedCounters::new(agg.counters().clone());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let thread = scraper.then(|| {
            let (shared, about, stop, scrapes) =
                (shared.clone(), about.clone(), stop.clone(), scrapes.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    black_box(encode(shared.snapshot(), &about, Format::OpenMetrics));
                    scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        });
        let t = Instant::now();
        for batch in events.chunks(256) {
            for ev in batch {
                agg.event(ev);
            }
            shared.publish(agg.counters());
        }
        agg.flush_input();
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = thread {
            t.join().unwrap();
        }
        black_box(scrapes.load(std::sync::atomic::Ordering::Relaxed));
        events.len() as f64 / secs / 1e6
    };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        off.push(run(false));
        on.push(run(true));
    }
    let (a, b, c) = min_median_max(off.clone());
    println!("  aggregator + publish per batch, no scraper:    {a:5.2} / {b:5.2} / {c:5.2} M events/s (min/median/max of 5)");
    let (d, e, f) = min_median_max(on.clone());
    println!("  aggregator + publish per batch, scraper flat out: {d:5.2} / {e:5.2} / {f:5.2} M events/s");
    println!("  median ratio scraped / not: {:5.3}", e / b);
}

/// `cargo bench -p tcpeek --bench engine [-- engine|memory|file|metrics]`
fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    // `cargo test --benches` passes no section and `--test`-style flags:
    // build only.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    if want("engine") {
        engine_throughput();
    }
    if want("memory") {
        memory_per_handshake();
    }
    if want("file") {
        file_mode();
    }
    if want("metrics") {
        metrics();
    }
}
