//! Randomized runs of the two stages that take untrusted input: the
//! decoder (every captured frame) and the engine (every event, whatever
//! order, time or contents an attacker or a broken clock gives it).
//!
//! Each run is from a fixed seed, so a failure reproduces; the seed and
//! the count come from `TCPEEK_FUZZ_SEED` and `TCPEEK_FUZZ_INPUTS`
//! (default 200,000 each, a few seconds). `cargo xtask fuzz --inputs N`
//! runs them in release mode for long runs (FUZZING.md).
//!
//! The engine's invariants, checked after every event:
//! - no panic;
//! - the table stays within `--max-sessions`, and its heap within a bound
//!   of it;
//! - every handshake the engine starts tracking ends at most once, and at
//!   the end each has ended exactly once or is still pending (the rest of
//!   the admitted ones overflowed, and are counted);
//! - the counters equal the sums of the finished records.

use std::collections::HashSet;
use std::time::Instant;

use tcpeek::capture::decode::{ChecksumMode, Decoder, LinkType};
use tcpeek::engine::{Engine, EngineConfig, Finished, Outcome};
use tcpeek::filter::FilterSet;
use tcpeek::local::Local;
use tcpeek::stats::histogram::Buckets;
use tcpeek::stats::Counters;
use tcpeek_common::tcp_flags::{ACK, FIN, RST, SYN};
use tcpeek_common::{Event, FAMILY_V4, FAMILY_V6, KIND_ICMP_UNREACH, KIND_TCP};
use tcpeek_testkit::fixtures::{self, CLASSIC};
use tcpeek_testkit::mutate::mutate_in_place;
use tcpeek_testkit::pcap::read_classic;
use tcpeek_testkit::rng::Rng;

fn inputs() -> u64 {
    std::env::var("TCPEEK_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(200_000)
}

fn seed() -> u64 {
    std::env::var("TCPEEK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_7c9e_e4a1_0001)
}

const S: u64 = 1_000_000_000;

/// A stream of hostile events: handshakes of a few flows played in any
/// order (retransmitted, reset by either side, refused by ICMP, never
/// finished), among segments with any flags, addresses from a small set
/// and sequence numbers near the flows' own; and a clock that mostly moves
/// on but also stands still, runs back, and jumps to the ends of time.
struct Traffic {
    rng: Rng,
    now: u64,
    flows: Vec<Flow>,
}

#[derive(Clone, Copy)]
struct Flow {
    client: ([u8; 16], u16),
    server: ([u8; 16], u16),
    v6: bool,
    client_isn: u32,
    server_isn: u32,
}

impl Traffic {
    fn new(mut rng: Rng) -> Traffic {
        let flows = (0..8).map(|_| Traffic::flow(&mut rng)).collect();
        Traffic {
            rng,
            now: 1_767_225_600 * S,
            flows,
        }
    }

    fn addr(r: &mut Rng, v6: bool) -> [u8; 16] {
        let mut a = [0u8; 16];
        if v6 {
            a[0] = 0xfd;
            a[15] = 1 + r.below(2) as u8;
        } else {
            a[..4].copy_from_slice(&[10, 0, 0, 1 + r.below(3) as u8]);
        }
        a
    }

    fn port(r: &mut Rng) -> u16 {
        r.pick(&[80, 443, 40000, 40001, 1])
    }

    fn flow(r: &mut Rng) -> Flow {
        let v6 = r.below(4) == 0;
        Flow {
            client: (Traffic::addr(r, v6), Traffic::port(r)),
            server: (Traffic::addr(r, v6), Traffic::port(r)),
            v6,
            client_isn: r.pick(&[1000, u32::MAX, 0]).wrapping_add(r.below(3) as u32),
            server_isn: r
                .pick(&[50_000, u32::MAX - 1])
                .wrapping_add(r.below(3) as u32),
        }
    }

    fn tick(&mut self) {
        let r = &mut self.rng;
        self.now = match r.below(64) {
            0 => self.now.saturating_sub(r.next_u64() % (200 * S)),
            1 => r.pick(&[0, 1, u64::MAX, u64::MAX / 2, 1_767_225_600 * S]),
            2 => self
                .now
                .saturating_add(r.pick(&[61 * S, 600 * S, 86_400 * S])),
            _ => self
                .now
                .saturating_add(r.pick(&[0, 1, 1000, 1_000_000, 200_000_000, S, 3 * S])),
        };
    }

    fn event(&mut self) -> Event {
        self.tick();
        let r = &mut self.rng;
        if r.below(64) == 0 {
            // A flow's handshake is over or forgotten: a new one.
            let i = r.below(self.flows.len());
            self.flows[i] = Traffic::flow(r);
        }
        let mut ev = if r.below(4) == 0 {
            self.noise()
        } else {
            let f = self.flows[self.rng.below(self.flows.len())];
            self.step(f)
        };
        ev.ts_ns = self.now;
        ev.iface = self.rng.below(3) as u8;
        ev
    }

    /// One segment (or ICMP error) of flow `f`'s handshake.
    fn step(&mut self, f: Flow) -> Event {
        let r = &mut self.rng;
        let (c, s) = (f.client, f.server);
        let (ci, si) = (f.client_isn, f.server_isn);
        // (from the client?, flags, seq, ack)
        let (up, flags, seq, ack) = match r.below(10) {
            0..=2 => (true, SYN, ci, 0),
            3 | 4 => (false, SYN | ACK, si, ci.wrapping_add(1)),
            5 | 6 => (true, ACK, ci.wrapping_add(1), si.wrapping_add(1)),
            7 => (false, RST | ACK, 0, ci.wrapping_add(1)),
            8 if r.below(2) == 0 => (true, RST, ci.wrapping_add(1), 0),
            8 => (true, RST | ACK, ci.wrapping_add(1), si.wrapping_add(1)),
            _ => {
                // The server's answer to the client's SYN, refused on the
                // way (or a SYN/ACK refused on the way back).
                let back = r.below(3) == 0;
                let (src, dst, seq) = if back { (s, c, si) } else { (c, s, ci) };
                return Event {
                    saddr: src.0,
                    daddr: dst.0,
                    sport: src.1,
                    dport: dst.1,
                    seq,
                    kind: KIND_ICMP_UNREACH,
                    family: if f.v6 { FAMILY_V6 } else { FAMILY_V4 },
                    tcp_flags: if back { SYN | ACK } else { SYN },
                    icmp_type: if f.v6 { 1 } else { 3 },
                    icmp_code: r.pick(&[0, 1, 3, 4, 13, 5]),
                    ..Event::ZERO
                };
            }
        };
        let (src, dst) = if up { (c, s) } else { (s, c) };
        Event {
            saddr: src.0,
            daddr: dst.0,
            sport: src.1,
            dport: dst.1,
            seq,
            ack,
            kind: KIND_TCP,
            family: if f.v6 { FAMILY_V6 } else { FAMILY_V4 },
            tcp_flags: flags,
            payload_len: if flags == SYN {
                r.pick(&[0, 0, 0, 0, 5])
            } else {
                0
            },
            ..Event::ZERO
        }
    }

    /// Anything at all, near the flows.
    fn noise(&mut self) -> Event {
        let r = &mut self.rng;
        let v6 = r.below(4) == 0;
        let isn = |r: &mut Rng| {
            r.pick(&[1000, 1001, 1002, 50_000, 50_001, 0, u32::MAX, 7])
                .wrapping_add(if r.below(8) == 0 {
                    r.next_u64() as u32
                } else {
                    0
                })
        };
        let flags = match r.below(8) {
            0 => SYN,
            1 => SYN | ACK,
            2 => ACK,
            3 => RST,
            4 => FIN | ACK,
            5 => r.pick(&[SYN | FIN, SYN | RST, 0, SYN | ACK | RST]),
            _ => r.next_u64() as u8,
        };
        let icmp = r.below(10) == 0;
        Event {
            saddr: Traffic::addr(r, v6),
            daddr: Traffic::addr(r, v6),
            seq: isn(r),
            ack: isn(r),
            sport: Traffic::port(r),
            dport: Traffic::port(r),
            payload_len: r.pick(&[0, 0, 0, 0, 5, 1400, u16::MAX]),
            kind: if icmp { KIND_ICMP_UNREACH } else { KIND_TCP },
            family: if v6 { FAMILY_V6 } else { FAMILY_V4 },
            tcp_flags: flags,
            direction: r.below(3) as u8,
            icmp_type: if icmp { r.pick(&[3, 1, 0]) } else { 0 },
            icmp_code: if icmp { r.below(17) as u8 } else { 0 },
            ..Event::ZERO
        }
    }
}

/// What the finished records add up to, by outcome.
#[derive(Default, Debug, PartialEq, Eq)]
struct Sums {
    success: u64,
    dupsyn: u64,
    dupsynack: u64,
    timeout: u64,
    reject: u64,
    by_client: u64,
    unreach: u64,
}

impl Sums {
    fn add(&mut self, f: &Finished) {
        match f.outcome {
            Outcome::Success => {
                self.success += 1;
                self.dupsyn += u64::from(f.dupsyn > 0);
                self.dupsynack += u64::from(f.dupsynack > 0);
            }
            Outcome::Timeout => self.timeout += 1,
            Outcome::Reject => self.reject += 1,
            Outcome::Aborted => {
                self.reject += 1;
                self.by_client += 1;
            }
            Outcome::Unreach => self.unreach += 1,
        }
    }

    fn of_counters(c: &Counters, filter: usize) -> Sums {
        let f = &c.filters[filter].1;
        assert_eq!(
            f.failure.total,
            f.failure.timeout + f.failure.reject + f.failure.unreach
        );
        Sums {
            success: f.success.total,
            dupsyn: f.success.dupsyn,
            dupsynack: f.success.dupsynack,
            timeout: f.failure.timeout,
            reject: f.failure.reject,
            by_client: f.failure.reject_by_client,
            unreach: f.failure.unreach,
        }
    }
}

/// One engine run of `n` events; returns what its handshakes added up to.
fn engine_run(rng: &mut Rng, n: u64) -> Sums {
    let max_sessions = rng.pick(&[1, 2, 8, 64]);
    let timeout = rng.pick(&[S, 5 * S, 60 * S]);
    let icmp = rng.below(2) == 0;
    let mut engine = Engine::new(EngineConfig::new(timeout, max_sessions, icmp));
    // Every address local: each handshake counts in RX and TX.
    let filters = FilterSet::parse::<&str>(&[], Local::Everything).unwrap();
    let mut counters = Counters::new(["RX", "TX"]);
    counters.keep_detail(Buckets::default());
    let mut traffic = Traffic::new(Rng::new(rng.next_u64()));
    let mut next_id = 0u32;
    let mut tracked: HashSet<u32> = HashSet::new();
    let mut ended: HashSet<u32> = HashSet::new();
    let mut sums = Sums::default();
    let mut out = Vec::new();
    let heap_bound = max_sessions * 1024 + (1 << 20);
    let finish = |out: &mut Vec<Finished>,
                  counters: &mut Counters,
                  sums: &mut Sums,
                  tracked: &HashSet<u32>,
                  ended: &mut HashSet<u32>| {
        for f in out.drain(..) {
            assert!(tracked.contains(&f.tag), "{f:?} was never tracked");
            assert!(ended.insert(f.tag), "{f:?} ended twice");
            assert!(f.end_ns >= f.start_ns, "{f:?}");
            let tally = counters.tally(&f);
            let mut matched = Vec::new();
            filters.for_each_match(&f.conn, f.iface, |i| matched.push(i));
            assert_eq!(matched, [0, 1]);
            for i in matched {
                counters.record(i, &f, &tally);
            }
            sums.add(&f);
        }
    };
    for _ in 0..n {
        let ev = traffic.event();
        if traffic.rng.below(8) == 0 {
            engine.expire(ev.ts_ns, &mut out);
        }
        let issued = next_id;
        let opened = engine.process(
            &ev,
            |_| {
                next_id += 1;
                Some(issued)
            },
            &mut out,
        );
        if let Some(tag) = opened {
            assert_eq!(tag, issued);
            assert!(tracked.insert(tag), "tag {tag} tracked twice");
        }
        finish(&mut out, &mut counters, &mut sums, &tracked, &mut ended);
        assert!(engine.pending() <= max_sessions);
        assert!(engine.pending() + engine.lingering() <= max_sessions);
        assert!(
            engine.heap_bytes() <= heap_bound,
            "{} heap bytes for {max_sessions} sessions",
            engine.heap_bytes()
        );
    }
    engine.expire(u64::MAX, &mut out);
    finish(&mut out, &mut counters, &mut sums, &tracked, &mut ended);
    assert_eq!(
        tracked.len(),
        ended.len() + engine.pending(),
        "every tracked handshake ended once or is pending"
    );
    assert_eq!(
        u64::from(next_id),
        tracked.len() as u64 + engine.overflow(),
        "every admitted one was tracked or overflowed"
    );
    for i in [0, 1] {
        assert_eq!(Sums::of_counters(&counters, i), sums);
        let d = &counters.detail[i];
        let results: u64 = d.family.iter().flat_map(|f| f.results).sum();
        assert_eq!(results, ended.len() as u64);
        assert_eq!(d.latency.count(), sums.success);
    }
    sums
}

#[test]
fn engine_invariants_hold_on_hostile_event_sequences() {
    let (total, seed) = (inputs(), seed());
    let mut rng = Rng::new(seed);
    let t = Instant::now();
    let mut done = 0;
    let mut runs = 0;
    let mut all = Sums::default();
    while done < total {
        // Runs of various lengths: short ones end often, long ones fill
        // the table and live through the clock's jumps.
        let n = (rng.pick(&[100, 1000, 10_000, 100_000]) as u64).min(total - done);
        let s = engine_run(&mut rng, n);
        all.success += s.success;
        all.dupsyn += s.dupsyn;
        all.dupsynack += s.dupsynack;
        all.timeout += s.timeout;
        all.reject += s.reject;
        all.by_client += s.by_client;
        all.unreach += s.unreach;
        done += n;
        runs += 1;
    }
    eprintln!(
        "fuzz engine: {done} events in {runs} runs in {:.1} s (seed {seed:#x}): {all:?}",
        t.elapsed().as_secs_f64()
    );
    // The traffic reaches every outcome, not just timeouts.
    if total >= 100_000 {
        assert!(
            all.success > 0
                && all.dupsyn > 0
                && all.reject > 0
                && all.unreach > 0
                && all.timeout > 0,
            "{all:?}"
        );
    }
}

#[test]
fn the_decoder_survives_mutated_frames() {
    let (total, seed) = (inputs(), seed());
    let mut rng = Rng::new(seed);
    let mut seeds = Vec::new();
    for name in CLASSIC {
        let file = read_classic(&fixtures::path(name)).unwrap();
        let link = match file.header.linktype {
            1 => LinkType::Ethernet,
            101 | 228 | 229 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => panic!("{name}: link type {other}"),
        };
        seeds.extend(file.records.into_iter().map(|r| (link, r.data)));
    }
    let decoders: Vec<Decoder> = [ChecksumMode::None, ChecksumMode::IpTcp]
        .into_iter()
        .flat_map(|c| {
            [
                LinkType::Ethernet,
                LinkType::RawIp,
                LinkType::LinuxSll,
                LinkType::LinuxSll2,
            ]
            .map(|l| Decoder::new(l, c))
        })
        .collect();
    let t = Instant::now();
    let (mut events, mut errors) = (0u64, 0u64);
    let mut frame = Vec::with_capacity(2048);
    for i in 0..total {
        let (link, seed_frame) = &seeds[rng.below(seeds.len())];
        frame.clear();
        frame.extend_from_slice(seed_frame);
        mutate_in_place(&mut rng, &mut frame);
        // Mostly its own link type; sometimes another's, as a file that
        // lies about it would.
        let d = if rng.below(8) == 0 {
            &decoders[rng.below(decoders.len())]
        } else {
            decoders.iter().find(|d| d.link() == *link).unwrap()
        };
        let wire_len = frame.len() + rng.pick(&[0, 0, 0, 1, 40, 65535]);
        match d.decode(i, &frame, wire_len) {
            Ok(Some(ev)) => {
                events += 1;
                assert!(ev.family == FAMILY_V4 || ev.family == FAMILY_V6);
                assert!(ev.kind == KIND_TCP || ev.kind == KIND_ICMP_UNREACH);
                assert_eq!(ev.ts_ns, i);
            }
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    eprintln!(
        "fuzz decoder: {total} frames ({events} events, {errors} errors) in {:.1} s (seed {seed:#x})",
        t.elapsed().as_secs_f64()
    );
    assert!(events > total / 20, "the mutants still reach the engine");
}
