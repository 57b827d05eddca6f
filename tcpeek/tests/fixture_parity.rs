//! Both backends give the same verdicts on the same traffic: every frame of
//! the fixture captures goes through the kernel classifier
//! (`BPF_PROG_TEST_RUN`, one loaded program, so its maps carry state from
//! frame to frame as on a live interface), the events it emits go to the
//! same engine `tcpeek -r` uses, and the finished handshakes must be those
//! `tcpeek -r` reports from the libpcap decoder, line for line.
//!
//! `reordered.pcap` is left out: it is about records delivered out of
//! order, while the classifier sees packets in the order they happen (its
//! out-of-order delivery, across CPUs, is the aggregator's to fix, and is
//! tested there). `sll2.pcap` has no Ethernet header to run TC on.
//! `snaplen.pcap`'s frames are cut shorter than their IP headers say: no
//! interface hands the classifier such packets, and it reports none of
//! that file's handshakes, while `tcpeek -r` knows the capture cut them.
//!
//! Needs root; without it every test prints why it is skipped.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use aya::{
    maps::RingBuf,
    programs::{SchedClassifier, TestRun as _, TestRunOptions},
    Ebpf,
};
use tcpeek::capture::clock::FileClock;
use tcpeek::capture::ebpf::{self, names};
use tcpeek::daemon::Aggregator;
use tcpeek::engine::{Engine, EngineConfig};
use tcpeek::filter::FilterSet;
use tcpeek::local::{Local, Prefix};
use tcpeek::output::SessionPrinter;
use tcpeek_testkit::fixtures::{self, CLASSIC};
use tcpeek_testkit::pcap::read_classic;

/// The classic fixtures not run here; the module doc says why.
const LEFT_OUT: [&str; 3] = ["reordered.pcap", "snaplen.pcap", "sll2.pcap"];

/// The frames of a classic pcap fixture: (ns since the epoch, bytes).
fn frames(name: &str) -> Vec<(u64, Vec<u8>)> {
    let file = read_classic(&fixtures::path(name)).unwrap_or_else(|e| panic!("{e}"));
    file.records
        .into_iter()
        .map(|r| (r.ts_ns, r.data))
        .collect()
}

/// A `Write` whose bytes the test reads afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn local() -> Local {
    Local::Prefixes(vec![
        "10.0.0.1".parse::<Prefix>().unwrap(),
        "fd00::1".parse::<Prefix>().unwrap(),
    ])
}

/// The finished-handshake lines of `tcpeek -r NAME --json --icmp`.
fn file_mode(name: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .arg("-r")
        .arg(fixtures::path(name))
        .args([
            "--json", "--icmp", "--local", "10.0.0.1", "--local", "fd00::1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_string)
        .collect()
}

/// The same file through the classifier, then the file runner's stages.
fn through_classifier(name: &str) -> Vec<String> {
    let mut ebpf: Ebpf = ebpf::load(0).expect("load the eBPF object");
    let p: &mut SchedClassifier = ebpf
        .program_mut(names::PROG_TC_INGRESS)
        .unwrap()
        .try_into()
        .unwrap();
    p.load().expect("verifier accepts the classifier");
    let mut ring = RingBuf::try_from(ebpf.take_map(names::MAP_EVENTS).unwrap()).unwrap();
    let p: &SchedClassifier = ebpf
        .program(names::PROG_TC_INGRESS)
        .unwrap()
        .try_into()
        .unwrap();

    let lines = Captured::default();
    let mut agg = Aggregator::new(
        Engine::new(EngineConfig::new(60_000_000_000, 100_000, true)),
        FilterSet::parse::<&str>(&[], local()).unwrap(),
        SessionPrinter::new(false, true, Box::new(lines.clone())),
    );
    let mut clock = FileClock::new();
    for (ts, frame) in frames(name) {
        let mut out = vec![0u8; frame.len() + 256];
        p.test_run(TestRunOptions {
            data_in: Some(&frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{name}: BPF_PROG_TEST_RUN: {e}"));
        let mut events = Vec::new();
        while let Some(item) = ring.next() {
            events.push(ebpf::decode_record(&item).expect("an event record"));
        }
        assert!(events.len() <= 1, "{name}: one packet, one event at most");
        let event = events
            .pop()
            .map(|e| tcpeek_common::Event { ts_ns: ts, ..e });
        clock.push(ts, event, &mut |t| agg.timed(t));
    }
    clock.finish(&mut |t| agg.timed(t));
    agg.flush_input();
    if let Some(now) = clock.now() {
        agg.advance(now, 0);
    }
    agg.flush();
    let bytes = lines.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_fixture_gives_the_same_handshakes_through_the_classifier() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        tcpeek_testkit::skip("needs root (CAP_BPF)");
        return;
    }
    let mut differ = Vec::new();
    for name in CLASSIC.into_iter().filter(|n| !LEFT_OUT.contains(n)) {
        let want = file_mode(name);
        assert!(!want.is_empty(), "{name}: file mode finished nothing");
        let got = through_classifier(name);
        if got != want {
            differ.push(format!(
                "{name}:\n  libpcap: {want:#?}\n  eBPF:    {got:#?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
