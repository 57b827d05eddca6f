//! End-to-end tests of the `tcpeek` binary on bad input and edge cases:
//! bad flags and filter expressions, unreadable or damaged capture files,
//! hostile packets, a full session table, a closed output pipe, and (as
//! root, in network namespaces of their own) live start-up errors, the
//! socket path and signals.
//!
//! Every failure must exit non-zero with a message that names the offending
//! text; nothing may panic. Capture files that the tests need beyond
//! tests/fixtures are written into a scratch directory by the test itself.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use etherparse::PacketBuilder;
use serde_json::Value;
use tcpeek_testkit::pcap::{ByteOrder, Interface, PcapHeader, PcapWriter, PcapngWriter};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Runs `tcpeek ARGS...` to completion.
fn tcpeek(args: &[&str]) -> Output {
    Command::new(tcpeek_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn tcpeek")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
}

/// Asserts that `out` failed with `code` (any non-zero code if `None`) and
/// that stderr names every one of `want`; returns stderr.
fn assert_fails(out: &Output, code: Option<i32>, want: &[&str]) -> String {
    let err = stderr_of(out);
    assert_no_panic(&err);
    assert!(
        !out.status.success(),
        "succeeded, expected a failure naming {want:?}:\n{err}"
    );
    if let Some(code) = code {
        assert_eq!(out.status.code(), Some(code), "{err}");
    }
    for w in want {
        assert!(err.contains(w), "stderr does not name {w:?}:\n{err}");
    }
    err
}

/// The final GET array of a `--json` run (its last stdout line).
fn final_counters(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a final counters line");
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert!(v.is_array(), "{v}");
    v
}

/// `pcap.stats.KEY` of a GET array.
fn capture_stat(counters: &Value, key: &str) -> u64 {
    counters
        .as_array()
        .and_then(|a| a.iter().find_map(|e| e.get("pcap")))
        .and_then(|p| p["stats"][key].as_u64())
        .unwrap_or_else(|| panic!("no pcap.stats.{key} in {counters}"))
}

// ---------------------------------------------------------------------------
// Writing capture files

/// 2026-01-01T00:00:00Z, like the fixtures.
const START_S: i64 = 1_767_225_600;
const CLIENT: [u8; 4] = [10, 0, 0, 2];
const SERVER: [u8; 4] = [10, 0, 0, 1];
const MAC_C: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MAC_S: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// TCP flags of a built segment.
#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
}

/// An Ethernet/IPv4/TCP frame from `src:sport` to `dst:dport`.
fn segment(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: Flags,
) -> Vec<u8> {
    let (smac, dmac) = if src == SERVER {
        (MAC_S, MAC_C)
    } else {
        (MAC_C, MAC_S)
    };
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 64_240);
    let b = match flags {
        Flags::Syn => b.syn(),
        Flags::SynAck => b.syn().ack(ack),
        Flags::Ack => b.ack(ack),
    };
    let mut v = Vec::with_capacity(b.size(0));
    b.write(&mut v, &[]).expect("build frame");
    v
}

/// Frames with their times (microseconds after [`START_S`]).
#[derive(Default)]
struct Trace(Vec<(u64, Vec<u8>)>);

impl Trace {
    fn push(&mut self, at_us: u64, frame: Vec<u8>) {
        self.0.push((at_us, frame));
    }

    /// A complete handshake from the client's `sport` to the server's
    /// `dport`, starting at `at_us`.
    fn handshake(&mut self, at_us: u64, sport: u16, dport: u16) {
        let isn = u32::from(sport) * 1000;
        let sisn = isn ^ 0x5555_0000;
        self.push(
            at_us,
            segment(CLIENT, SERVER, sport, dport, isn, 0, Flags::Syn),
        );
        self.push(
            at_us + 100,
            segment(SERVER, CLIENT, dport, sport, sisn, isn + 1, Flags::SynAck),
        );
        self.push(
            at_us + 200,
            segment(CLIENT, SERVER, sport, dport, isn + 1, sisn + 1, Flags::Ack),
        );
    }

    /// Writes a classic pcap file (link type `dlt`).
    fn write_pcap(&self, path: &Path, dlt: u32) {
        let file = std::fs::File::create(path).expect("create capture file");
        let mut w = PcapWriter::new(std::io::BufWriter::new(file), PcapHeader::new(dlt))
            .expect("write pcap header");
        for (at_us, frame) in &self.0 {
            w.record(START_S as u64 * 1_000_000_000 + at_us * 1_000, frame)
                .expect("write record");
        }
        w.get_mut().flush().expect("flush capture file");
    }
}

/// Builds a pcapng file (one section, one interface, Enhanced Packet Blocks
/// with microsecond times) holding the frames of the classic pcap file
/// `from`, as libpcap reads them.
fn pcap_to_pcapng(from: &Path, to: &Path) {
    let mut cap = pcap::Capture::from_file(from).expect("open classic pcap");
    let dlt = cap.get_datalink().0 as u16;
    let mut ng = PcapngWriter::new(ByteOrder::Little);
    // No if_tsresol: microseconds, as in the classic file.
    ng.interface(Interface::new(dlt));
    let mut frames = 0;
    while let Ok(p) = cap.next_packet() {
        let us = p.header.ts.tv_sec as u64 * 1_000_000 + p.header.ts.tv_usec as u64;
        ng.enhanced_packet_with_len(0, us, p.data, p.header.len);
        frames += 1;
    }
    assert!(frames > 0, "no frames in {}", from.display());
    std::fs::write(to, ng.into_bytes()).unwrap();
}

// ---------------------------------------------------------------------------
// Flags

#[test]
fn bad_flag_values_name_the_flag_and_the_value() {
    let read = fixture("success.pcap");
    let read = read.to_str().unwrap();
    for (args, want) in [
        (&["-c", "3"][..], &["--checksum", "'3'"][..]),
        (&["-t", "0"], &["--timeout", "'0'"]),
        (&["-t", "x"], &["--timeout", "'x'"]),
        (&["-B", "0"], &["--buffer", "'0'"]),
        (
            &["-l", "loud"],
            &["--loglevel", "'loud' is not a syslog level"],
        ),
        (
            &["--backend", "dpdk"],
            &["--backend", "'dpdk'", "auto, pcap, ebpf"],
        ),
        (
            &["--max-sessions", "0"],
            &["--max-sessions", "'0' is not a number from 1 to"],
        ),
        (
            &["--max-sessions", "lots"],
            &["--max-sessions", "'lots' is not a number"],
        ),
        (
            &["--local", "10.0.0.300"],
            &["--local", "'10.0.0.300' is not an address or prefix"],
        ),
        (
            &["-i", "x", "-r", "y"],
            &["--interface", "cannot be used with", "--read"],
        ),
        (&["--bogus"], &["unexpected argument '--bogus'"]),
        (&["-Z"], &["unexpected argument '-Z'"]),
        (&["-t"], &["--timeout", "a value is required"]),
    ] {
        // With -r so that nothing would capture if the flag were accepted.
        let mut all = args.to_vec();
        if !args.contains(&"-r") {
            all.extend_from_slice(&["-r", read]);
        }
        let out = tcpeek(&all);
        assert_fails(&out, Some(2), want);
        assert!(out.stdout.is_empty(), "{args:?}: output on stdout");
    }
}

#[test]
fn bad_filter_expressions_are_quoted_in_the_error() {
    let read = fixture("success.pcap");
    let read = read.to_str().unwrap();
    for (expr, why) in [
        ("web:RX@fd00::1:80", "write an IPv6 address in brackets"),
        ("web:RX@%:0", "port '0' is not 1-65535"),
        ("web:RX@%:99999", "port '99999' is not 1-65535"),
        ("web:RX@%:80::443", "port '' is not 1-65535"),
        ("web:RX@10.0.0.0/33:80", "prefix length '/33' is not 0-32"),
        ("web:RX@1.2.3.4/\u{e9}:80", "prefix length '/\u{e9}'"),
        ("web6:RX@[fd00::/129]:80", "'/129'"),
        ("web:RX@[fd00::1:80", "without closing ']'"),
        (
            "web:RX@[\u{e9}]:80",
            "'\u{e9}' in brackets is not an IPv6 address",
        ),
        ("RX:RX@%:%", "the name 'RX' is already used"),
        ("web:UP@%:80", "direction 'UP' is not RX or TX"),
        ("web:RX@%", "has no ':PORT'"),
        ("web:RX@%:80,", "an empty ADDR:PORT group"),
        (
            "web:RX@10.0.0.256:80",
            "'10.0.0.256' is not an IPv4 address",
        ),
        ("web", "no ':' after the filter name"),
        ("", "no ':' after the filter name"),
    ] {
        let out = tcpeek(&["-r", read, expr]);
        let err = assert_fails(&out, None, &[&format!("filter '{expr}'")]);
        assert!(err.contains(why), "{expr:?}: does not say {why:?}:\n{err}");
        // Every filter error says what a filter looks like.
        assert!(err.contains("expected [NAME]:RX|TX@"), "{expr:?}:\n{err}");
        assert!(out.stdout.is_empty(), "{expr:?}: output on stdout");
    }
    // The bad one of several is the one named.
    let out = tcpeek(&["-r", read, "a:RX@%:1", "ok:TX@%:2", "a:TX@%:3"]);
    let err = assert_fails(&out, Some(1), &["filter 'a:TX@%:3'", "'a' is already used"]);
    assert!(!err.contains("filter 'a:RX@%:1'"), "{err}");
}

#[test]
fn unknown_interface_is_named() {
    let out = tcpeek(&["-i", "no-such-if0", "-U", "/nonexistent-dir/s"]);
    assert_fails(&out, Some(1), &["-i no-such-if0: no such interface"]);
}

// ---------------------------------------------------------------------------
// Capture files

#[test]
fn unreadable_capture_files_are_named() {
    let dir = TempDir::new("files");
    let missing = dir.path("missing.pcap");
    let empty = dir.path("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path("notes.txt");
    std::fs::write(&text, "this is not a capture\n".repeat(10)).unwrap();
    let short_header = dir.path("short.pcap");
    std::fs::write(
        &short_header,
        &std::fs::read(fixture("success.pcap")).unwrap()[..10],
    )
    .unwrap();
    for (path, why) in [
        (&missing, "No such file or directory"),
        (&dir.0, "is a directory"),
        (&empty, "the file is empty"),
        (&text, "not a pcap or pcapng capture file"),
        (&short_header, "truncated"),
    ] {
        let p = path.to_str().unwrap();
        let out = tcpeek(&["-r", p, "--json"]);
        assert_fails(&out, Some(1), &[&format!("cannot open {p}"), why]);
        // Nothing was read: no summary, no counters.
        assert!(out.stdout.is_empty(), "{p}: output on stdout");
        assert!(!stderr_of(&out).contains("SUMMARY"), "{p}");
    }
}

#[test]
fn unsupported_link_type_is_named() {
    let dir = TempDir::new("dlt");
    let path = dir.path("wifi.pcap");
    let mut t = Trace::default();
    t.push(0, vec![0; 40]);
    // DLT_IEEE802_11 (105).
    t.write_pcap(&path, 105);
    let p = path.to_str().unwrap();
    let out = tcpeek(&["-r", p]);
    assert_fails(
        &out,
        Some(1),
        &[p, "unsupported link type 105", "IEEE802_11", "Ethernet"],
    );
}

/// Where each record of a classic little-endian pcap file starts: after
/// the 24-byte file header, each record is a 16-byte header (the captured
/// length at offset 8) and the frame.
fn record_offsets(file: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut off = 24;
    while off < file.len() {
        starts.push(off);
        let incl = u32::from_le_bytes(file[off + 8..off + 12].try_into().unwrap());
        off += 16 + incl as usize;
    }
    assert_eq!(off, file.len(), "the file is itself truncated");
    starts
}

/// A pcap file cut in the middle of a record: what was read before the
/// damage is counted and reported (summary, final counters), and the exit
/// status says the file was damaged, as `tcpdump -r` does.
#[test]
fn truncated_capture_reports_what_it_read_and_fails() {
    let dir = TempDir::new("trunc");
    let whole = std::fs::read(fixture("success.pcap")).unwrap();
    let starts = record_offsets(&whole);
    let cut = starts[starts.len() / 2] + 16 + 10;
    let path = dir.path("cut.pcap");
    std::fs::write(&path, &whole[..cut]).unwrap();
    let p = path.to_str().unwrap();

    let out = tcpeek(&["-r", p, "--json", "--local", "10.0.0.1"]);
    let err = assert_fails(
        &out,
        Some(1),
        &[p, "capture file is truncated", "only got 10"],
    );
    assert!(err.contains("========== TCPEEK SUMMARY"), "{err}");
    assert!(
        err.find("SUMMARY").unwrap() < err.find("truncated").unwrap(),
        "the error comes after the summary:\n{err}"
    );
    let counters = final_counters(&out);
    let read = counts(&counters, "RX");
    assert!(read[0] >= 1, "handshakes before the cut: {counters}");
    assert_eq!(
        capture_stat(&counters, "recv") as usize,
        starts.len() / 2,
        "every whole frame was read: {counters}"
    );
    // Reading the whole file counts more.
    let whole_out = tcpeek(&[
        "-r",
        fixture("success.pcap").to_str().unwrap(),
        "--json",
        "--local",
        "10.0.0.1",
    ]);
    assert!(whole_out.status.success(), "{}", stderr_of(&whole_out));
    assert!(counts(&final_counters(&whole_out), "RX")[0] > read[0]);
}

/// A record header claiming 4 GB: libpcap refuses it; what came before is
/// reported, and the error says what is wrong with the file.
#[test]
fn impossible_record_length_reports_what_it_read_and_fails() {
    let dir = TempDir::new("huge");
    let mut file = std::fs::read(fixture("success.pcap")).unwrap();
    let starts = record_offsets(&file);
    let r = starts[starts.len() / 2];
    file[r + 8..r + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let path = dir.path("huge.pcap");
    std::fs::write(&path, &file).unwrap();
    let p = path.to_str().unwrap();
    let out = tcpeek(&["-r", p, "--json", "--local", "10.0.0.1"]);
    let err = assert_fails(&out, Some(1), &[&format!("cannot read {p}"), "4294967280"]);
    assert!(err.contains("TCPEEK SUMMARY"), "{err}");
    let counters = final_counters(&out);
    assert!(counts(&counters, "RX")[0] >= 1, "{counters}");
    assert_eq!(
        capture_stat(&counters, "recv") as usize,
        starts.len() / 2,
        "{counters}"
    );
}

/// The error about a damaged file named the file twice ("reading X: X:
/// capture file is truncated").
#[test]
fn damaged_file_error_names_the_file_once() {
    let dir = TempDir::new("once");
    let whole = std::fs::read(fixture("success.pcap")).unwrap();
    let r = record_offsets(&whole)[3];
    let cut = dir.path("cut.pcap");
    std::fs::write(&cut, &whole[..r + 20]).unwrap();
    let mut huge = whole.clone();
    huge[r + 8..r + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let bad = dir.path("huge.pcap");
    std::fs::write(&bad, &huge).unwrap();
    for path in [cut, bad] {
        let p = path.to_str().unwrap();
        let out = tcpeek(&["-r", p, "-q", "--local", "10.0.0.1"]);
        let err = assert_fails(&out, Some(1), &[p]);
        let last = err.lines().last().unwrap();
        assert!(last.starts_with("tcpeek: error: "), "{err}");
        assert_eq!(last.matches(p).count(), 1, "{last}");
    }
}

#[test]
fn pcapng_reads_like_pcap() {
    let dir = TempDir::new("ng");
    let ng = dir.path("success.pcapng");
    pcap_to_pcapng(&fixture("success.pcap"), &ng);
    let run = |p: &Path| {
        let out = tcpeek(&["-r", p.to_str().unwrap(), "--json", "--local", "10.0.0.1"]);
        let err = stderr_of(&out);
        assert_no_panic(&err);
        assert!(out.status.success(), "{}: {err}", p.display());
        (final_counters(&out), out.stdout)
    };
    let (classic, classic_lines) = run(&fixture("success.pcap"));
    let (pcapng, pcapng_lines) = run(&ng);
    assert_eq!(pcapng, classic);
    assert_eq!(pcapng_lines, classic_lines);
    assert_eq!(counts(&pcapng, "RX"), [4, 0, 0, 0, 0, 0, 0]);

    // A pcapng file cut short is reported like a classic one.
    let bytes = std::fs::read(&ng).unwrap();
    let cut = dir.path("cut.pcapng");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let c = cut.to_str().unwrap();
    let out = tcpeek(&["-r", c, "--json"]);
    assert_fails(&out, Some(1), &[c, "truncated"]);
    assert!(stderr_of(&out).contains("TCPEEK SUMMARY"));
}

/// Frames that are cut short or carry impossible headers are counted as
/// malformed and skipped; a handshake after them is still counted.
#[test]
fn hostile_frames_are_counted_as_malformed_and_skipped() {
    let dir = TempDir::new("hostile");
    let path = dir.path("hostile.pcap");
    let good = segment(CLIENT, SERVER, 40000, 80, 1, 0, Flags::Syn);
    let mut t = Trace::default();
    let mut at = 0;
    let mut next = || {
        at += 1000;
        at
    };
    // IPv4 header length below 5 words.
    let mut f = good.clone();
    f[14] = 0x43;
    t.push(next(), f);
    // IPv4 total length shorter than the header.
    let mut f = good.clone();
    f[16..18].copy_from_slice(&10u16.to_be_bytes());
    t.push(next(), f);
    // TCP data offset below 5 words.
    let mut f = good.clone();
    f[14 + 20 + 12] = 0x20;
    t.push(next(), f);
    // TCP header cut off.
    t.push(next(), good[..14 + 20 + 6].to_vec());
    // IPv6 ethertype with an IPv4 packet behind it.
    let mut f = good.clone();
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    t.push(next(), f);
    // Just an Ethernet header, and less.
    t.push(next(), good[..14].to_vec());
    t.push(next(), good[..3].to_vec());
    t.push(next(), Vec::new());
    // Bytes of every value (EtherType 0x0c0d).
    t.push(next(), (0..=255u8).collect());
    t.handshake(next(), 40001, 80);
    t.write_pcap(&path, 1);

    let out = tcpeek(&[
        "-r",
        path.to_str().unwrap(),
        "--json",
        "-c",
        "2",
        "--local",
        "10.0.0.1",
    ]);
    let err = stderr_of(&out);
    assert_no_panic(&err);
    assert!(out.status.success(), "{err}");
    let counters = final_counters(&out);
    assert_eq!(counts(&counters, "RX"), [1, 0, 0, 0, 0, 0, 0], "{counters}");
    assert_eq!(capture_stat(&counters, "recv"), 12, "{counters}");
    // All but the last: its EtherType 0x0c0d is not IP, so it is
    // irrelevant rather than malformed.
    assert_eq!(capture_stat(&counters, "malformed"), 8, "{counters}");
    assert!(err.contains("   malformed : 8\n"), "{err}");
}

// ---------------------------------------------------------------------------
// The session table

/// `--max-sessions N` with more concurrent SYNs: the rest are counted as
/// overflow, the tracked ones stay pending, and a slot freed by a finished
/// handshake is used again.
#[test]
fn full_table_counts_overflow() {
    let dir = TempDir::new("overflow");
    let path = dir.path("syns.pcap");
    let mut t = Trace::default();
    // Ten SYNs, never answered, within the timeout.
    for i in 0..10u16 {
        let sport = 50_000 + i;
        t.push(
            u64::from(i) * 1000,
            segment(CLIENT, SERVER, sport, 80, u32::from(sport), 0, Flags::Syn),
        );
    }
    // A handshake while the table is full: not tracked either.
    t.handshake(20_000, 51_000, 443);
    t.write_pcap(&path, 1);
    let p = path.to_str().unwrap();

    let out = tcpeek(&[
        "-r",
        p,
        "--json",
        "--local",
        "10.0.0.1",
        "--max-sessions",
        "2",
    ]);
    let err = stderr_of(&out);
    assert_no_panic(&err);
    assert!(out.status.success(), "{err}");
    let counters = final_counters(&out);
    assert_eq!(capture_stat(&counters, "overflow"), 9, "{counters}");
    assert_eq!(capture_stat(&counters, "pending"), 2, "{counters}");
    assert_eq!(counts(&counters, "RX"), [0; 7], "{counters}");
    assert!(err.contains("   overflow : 9 "), "{err}");
    assert!(err.contains("   pending  : 2 "), "{err}");

    // The same SYNs with room for all: nothing overflows.
    let out = tcpeek(&["-r", p, "--json", "--local", "10.0.0.1"]);
    let counters = final_counters(&out);
    assert_eq!(capture_stat(&counters, "overflow"), 0, "{counters}");
    assert_eq!(capture_stat(&counters, "pending"), 10, "{counters}");
    assert_eq!(counts(&counters, "RX")[0], 1, "{counters}");
}

#[test]
fn one_frame_stamped_far_ahead_does_not_time_out_everything() {
    // A damaged timestamp (year 2037) in the middle of a capture: the open
    // handshake still completes, and only a confirmed jump moves time.
    let dir = TempDir::new("jump");
    let path = dir.path("jump.pcap");
    let mut t = Trace::default();
    let (isn, sisn) = (7_000u32, 9_000u32);
    t.push(0, segment(CLIENT, SERVER, 40_000, 80, isn, 0, Flags::Syn));
    // (libpcap reads a record's seconds as signed 32 bits: 2038 at most.)
    let far_us = 11 * 365 * 86_400 * 1_000_000u64;
    t.push(
        far_us,
        segment(CLIENT, SERVER, 40_001, 80, 1, 0, Flags::Syn),
    );
    t.push(
        1_000,
        segment(SERVER, CLIENT, 80, 40_000, sisn, isn + 1, Flags::SynAck),
    );
    t.push(
        2_000,
        segment(CLIENT, SERVER, 40_000, 80, isn + 1, sisn + 1, Flags::Ack),
    );
    // Time goes on: a later SYN left unanswered still times out, which the
    // stray one (taken as arriving at 1 ms, not in 2037) must not hold up.
    t.push(3_000, segment(CLIENT, SERVER, 40_002, 80, 5, 0, Flags::Syn));
    t.handshake(200_000_000, 40_003, 443);
    t.write_pcap(&path, 1);
    let out = tcpeek(&[
        "-r",
        path.to_str().unwrap(),
        "--json",
        "--local",
        "10.0.0.1",
    ]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let counters = final_counters(&out);
    // Both unanswered SYNs time out by 200 s; both handshakes succeed.
    assert_eq!(counts(&counters, "RX"), [2, 0, 0, 2, 2, 0, 0], "{counters}");
    assert_eq!(capture_stat(&counters, "pending"), 0, "{counters}");
}

#[test]
fn full_table_frees_slots_for_later_handshakes() {
    let dir = TempDir::new("reuse");
    let path = dir.path("reuse.pcap");
    let mut t = Trace::default();
    for i in 0..20u16 {
        // One at a time: each completes before the next begins.
        t.handshake(u64::from(i) * 10_000, 52_000 + i, 80);
    }
    t.write_pcap(&path, 1);
    let out = tcpeek(&[
        "-r",
        path.to_str().unwrap(),
        "--json",
        "--local",
        "10.0.0.1",
        "--max-sessions",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let counters = final_counters(&out);
    assert_eq!(counts(&counters, "RX")[0], 20, "{counters}");
    assert_eq!(capture_stat(&counters, "overflow"), 0, "{counters}");
}

/// Runs `tcpeek ARGS...` and returns its final counters and its peak
/// resident memory (VmHWM, KiB).
///
/// The peak must be read while the process is alive: the rusage of a
/// reaped child also counts the test process, whose memory the child
/// shared until exec (posix_spawn uses vfork; exec keeps the old mm's
/// high-water mark, fs/exec.c `exec_mmap`). So stdout is a pipe filled
/// beforehand: tcpeek blocks writing its final line, after the summary,
/// with all its memory still mapped.
fn run_measuring_peak(args: &[&str]) -> (Value, u64) {
    use std::os::fd::AsRawFd;
    let (reader, mut writer) = std::io::pipe().unwrap();
    let fd = writer.as_raw_fd();
    let set_nonblocking = |on: bool| {
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            let flags = if on {
                flags | libc::O_NONBLOCK
            } else {
                flags & !libc::O_NONBLOCK
            };
            assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags), 0);
        }
    };
    set_nonblocking(true);
    let filler = [b'\n'; 4096];
    let mut filled = 0;
    while let Ok(n) = writer.write(&filler) {
        filled += n;
    }
    set_nonblocking(false);
    let mut child = Command::new(tcpeek_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpeek");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut stderr = String::new();
    // The summary's last line is the last thing before the final write.
    while !stderr.ends_with("====================================\n") {
        let n = err.read_line(&mut stderr).unwrap();
        assert!(n > 0, "stderr closed before the summary:\n{stderr}");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    let mut stdout = String::new();
    BufReader::new(reader).read_to_string(&mut stdout).unwrap();
    let exit = wait_exit(&mut child);
    assert!(exit.success(), "{exit}: {stderr}");
    let counters = serde_json::from_str(stdout[filled..].trim()).unwrap();
    (counters, peak_kib)
}

/// A SYN flood of 200,000 distinct handshakes against `--max-sessions
/// 1000` is counted to the last SYN and does not grow the table: peak
/// memory stays well below what tracking them all takes.
#[test]
fn syn_flood_memory_is_bounded_by_max_sessions() {
    const FLOOD: u32 = 200_000;
    let dir = TempDir::new("flood");
    let path = dir.path("flood.pcap");
    let mut t = Trace::default();
    for i in 0..FLOOD {
        let src = Ipv4Addr::from(0x0a80_0000 + (i >> 14)).octets();
        let sport = 1024 + (i & 0x3fff) as u16;
        t.push(
            u64::from(i),
            segment(src, SERVER, sport, 80, i, 0, Flags::Syn),
        );
    }
    t.write_pcap(&path, 1);
    let p = path.to_str().unwrap();
    drop(t);
    let run = |max: &str| {
        run_measuring_peak(&[
            "-r",
            p,
            "--json",
            "-q",
            "--local",
            "10.0.0.1",
            "--max-sessions",
            max,
        ])
    };
    let (bounded, bounded_kib) = run("1000");
    assert_eq!(capture_stat(&bounded, "pending"), 1000, "{bounded}");
    assert_eq!(
        capture_stat(&bounded, "overflow"),
        u64::from(FLOOD) - 1000,
        "{bounded}"
    );
    let (all, all_kib) = run("1000000");
    assert_eq!(capture_stat(&all, "pending"), u64::from(FLOOD), "{all}");
    assert_eq!(capture_stat(&all, "overflow"), 0, "{all}");
    // Tracking 200,000 more handshakes costs megabytes (about 100 bytes
    // each); a bounded table does not pay it.
    assert!(
        bounded_kib + 8 * 1024 < all_kib,
        "peak RSS {bounded_kib} KiB bounded vs {all_kib} KiB unbounded"
    );
    eprintln!("peak RSS {bounded_kib} KiB bounded vs {all_kib} KiB unbounded");
}

// ---------------------------------------------------------------------------
// Closed output

/// A capture with enough handshakes that their lines overflow any pipe
/// buffer, so the reader's going away is noticed mid-run.
fn many_handshakes(dir: &TempDir) -> PathBuf {
    let path = dir.path("many.pcap");
    let mut t = Trace::default();
    for i in 0..20_000u32 {
        t.handshake(u64::from(i) * 1000, 1024 + (i % 60_000) as u16, 80);
    }
    t.write_pcap(&path, 1);
    path
}

/// Waits for `child` to exit, with [`PATIENCE`].
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    wait_for("tcpeek to exit", || child.try_wait().unwrap())
}

/// `tcpeek -r FILE --json | head -1`: the closed stdout ends the run
/// quietly, with status 0.
#[test]
fn closed_stdout_is_a_normal_exit() {
    let dir = TempDir::new("epipe");
    let path = many_handshakes(&dir);
    let mut child = Command::new(tcpeek_bin())
        .arg("-r")
        .arg(&path)
        .args(["--json", "--local", "10.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(first["result"], "success");
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = wait_exit(&mut child);
    assert_no_panic(&err);
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("error"), "{err}");
    // The summary still goes to stderr, with what was counted.
    assert!(err.contains("TCPEEK SUMMARY"), "{err}");
}

/// `tcpeek -r FILE 2>&1 | head -1`: lines and the summary go to stderr,
/// which is the closed pipe; that too is a normal exit, not a panic in
/// `eprint!`.
#[test]
fn closed_stderr_is_a_normal_exit() {
    let dir = TempDir::new("epipe2");
    let path = many_handshakes(&dir);
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut cmd = Command::new(tcpeek_bin());
        cmd.arg("-r")
            .arg(&path)
            .args(["--local", "10.0.0.1"])
            .args(json.then_some("--json"))
            .stdin(Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer);
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let mut r = BufReader::new(reader);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("reading from file"), "{line}");
        drop(r);
        let status = wait_exit(&mut child);
        assert!(status.success(), "--json {json}: {status}");
    }
}

// ---------------------------------------------------------------------------
// Live start-up, the socket path and signals (root, own namespaces)

/// `tcpeek -i IF ARGS...` inside `ns`, to completion.
fn tcpeek_in(ns: &Netns, args: &[&str]) -> Output {
    ns.command(&tcpeek_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn tcpeek")
}

#[test]
fn unknown_user_is_named_and_leaves_no_socket() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("user");
    let sock = dir.path("run/tcpeek.sock");
    let s = sock.to_str().unwrap();
    for backend in backends() {
        let out = tcpeek_in(
            &pair.server,
            &[
                "-i",
                &pair.server_if,
                "--backend",
                backend,
                "-U",
                s,
                "-u",
                "no-such-user-tcpeek",
            ],
        );
        assert_fails(&out, Some(1), &["no such user 'no-such-user-tcpeek'"]);
        assert!(!sock.exists(), "{backend}: socket left behind");
    }
}

#[test]
fn ebpf_backend_refuses_libpcap_only_options() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("ebpfopts");
    let s = dir.path("s");
    let s = s.to_str().unwrap();
    for (opts, want) in [(&["-c", "2"][..], "-c"), (&["--promisc"][..], "--promisc")] {
        let mut args = vec!["-i", &pair.server_if, "--backend", "ebpf", "-U", s];
        args.extend_from_slice(opts);
        let out = tcpeek_in(&pair.server, &args);
        assert_fails(
            &out,
            Some(1),
            &[
                &format!("--backend ebpf: {want} "),
                "use --backend pcap or auto",
            ],
        );
        assert!(!Path::new(s).exists(), "{opts:?}: socket left behind");
    }
}

/// A GET on `path` that must be answered.
fn get(path: &Path) -> Value {
    let reply = request(path, "GET\r\n");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

#[test]
fn stale_socket_file_does_not_block_a_restart() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("stale");
    let sock = dir.path("tcpeek.sock");
    // What a crashed tcpeek leaves: a socket file nobody listens on.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_err());
    let d = Daemon::start(&pair.server, "pcap", &sock, &["-i", &pair.server_if]);
    // The new daemon answers on the path.
    let v = get(&sock);
    assert_eq!(counts(&v, "RX"), [0; 7], "{v}");
    let e = d.stop();
    assert!(e.status.success(), "{}: {}", e.status, e.stderr);
    assert!(!sock.exists(), "socket left behind");
}

#[test]
fn second_daemon_on_a_live_socket_fails_naming_the_path() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("twice");
    let sock = dir.path("tcpeek.sock");
    let s = sock.to_str().unwrap();
    let first = Daemon::start(&pair.server, "pcap", &sock, &["-i", &pair.server_if]);
    for backend in backends() {
        let out = tcpeek_in(
            &pair.server,
            &["-i", &pair.server_if, "--backend", backend, "-U", s],
        );
        assert_fails(
            &out,
            Some(1),
            &[&format!("another tcpeek is already serving on {s}")],
        );
    }
    // The first one is untouched and still serves.
    assert_eq!(counts(&get(&sock), "TX"), [0; 7]);
    let e = first.stop();
    assert!(e.status.success(), "{}: {}", e.status, e.stderr);
    assert!(!sock.exists());
}

#[test]
fn regular_file_at_the_socket_path_is_left_alone() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("notsock");
    let path = dir.path("tcpeek.sock");
    std::fs::write(&path, "precious\n").unwrap();
    let p = path.to_str().unwrap();
    let out = tcpeek_in(
        &pair.server,
        &["-i", &pair.server_if, "--backend", "pcap", "-U", p],
    );
    assert_fails(
        &out,
        Some(1),
        &[&format!("{p} exists and is not a socket"), "-U"],
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
}

/// SIGTERM with no traffic at all: libpcap's reads must not block the exit
/// (TPACKET_V3 only honours its timeout once a packet arrived).
#[test]
fn sigterm_on_an_idle_capture_exits_promptly_with_the_summary() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("idle");
    // The loopback interface of a namespace nothing runs in is silent (a
    // veth would carry IPv6 router solicitations and MLD reports).
    for backend in backends() {
        let sock = dir.path(&format!("{backend}.sock"));
        let d = Daemon::start(&pair.server, backend, &sock, &["-i", "lo"]);
        let started = Instant::now();
        let e = d.stop_with(libc::SIGTERM);
        let took = started.elapsed();
        assert_no_panic(&e.stderr);
        assert!(e.status.success(), "{backend}: {}: {}", e.status, e.stderr);
        assert!(
            took < Duration::from_secs(20),
            "{backend}: SIGTERM took {took:?}"
        );
        assert!(e.stderr.contains("TCPEEK SUMMARY"), "{}", e.stderr);
        assert_eq!(counts(&e.counters, "RX"), [0; 7]);
        assert!(!sock.exists(), "{backend}: socket left behind");
    }
}

#[test]
fn overlong_socket_path_is_named() {
    require_root!();
    let pair = Pair::new();
    let dir = TempDir::new("long");
    // sun_path holds 108 bytes with the terminating NUL (unix(7)).
    let path = dir.path(&format!("{}/tcpeek.sock", "d".repeat(110)));
    let p = path.to_str().unwrap();
    let out = tcpeek_in(
        &pair.server,
        &["-i", &pair.server_if, "--backend", "pcap", "-U", p],
    );
    assert_fails(
        &out,
        Some(1),
        &[&format!(
            "-U {p}: a UNIX socket path can be at most 107 bytes"
        )],
    );
    assert!(
        !path.parent().unwrap().exists(),
        "nothing is created for it"
    );
}

#[test]
fn check_validates_without_capturing() {
    let ok = tcpeek(&[
        "--check",
        "-r",
        fixture("success.pcap").to_str().unwrap(),
        "web:RX@%:80",
    ]);
    let said = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{}", stderr_of(&ok));
    assert!(
        said.starts_with("tcpeek: configuration OK: file ") && said.contains("filters RX TX web"),
        "{said}"
    );
    assert!(!stderr_of(&ok).contains("SUMMARY"), "nothing was read");
    let live = tcpeek(&["--check", "-i", "lo", "--local", "127.0.0.1"]);
    assert!(live.status.success(), "{}", stderr_of(&live));
    assert!(String::from_utf8_lossy(&live.stdout).contains("interface lo"));

    let garbage = TempDir::new("check");
    let bad = garbage.path("not-a-capture.pcap");
    std::fs::write(&bad, b"this is not a capture file at all").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    for (args, want) in [
        (
            vec!["--check", "-r", "/nonexistent/x.pcap"],
            "/nonexistent/x.pcap",
        ),
        (
            vec!["--check", "-r", bad.to_str().unwrap()],
            "not-a-capture.pcap",
        ),
        (
            vec!["--check", "-i", "no-such-if0", "--local", "10.0.0.1"],
            "-i no-such-if0: no such interface",
        ),
        (
            vec!["--check", "-r", "x.pcap", "web:RX@%:99999"],
            "port '99999'",
        ),
        (
            vec![
                "--check",
                "--metrics",
                &port,
                "-r",
                fixture("success.pcap").to_str().unwrap(),
            ],
            "cannot listen",
        ),
    ] {
        assert_fails(&tcpeek(&args), Some(1), &[want]);
    }
}
