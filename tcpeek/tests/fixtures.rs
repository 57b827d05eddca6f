//! File mode on the generated captures in tests/fixtures (see its README
//! and `cargo xtask fixtures`): each gives known counters, every time.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const LOCAL: [&str; 4] = ["--local", "10.0.0.1", "--local", "fd00::1"];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

struct Run {
    sessions: Vec<Value>,
    counters: Value,
    stderr: String,
}

/// `tcpeek -r FIXTURE --json ARGS...`, which must succeed.
fn read(name: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .arg("-r")
        .arg(fixture(name))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name}: {stderr}");
    let values: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect();
    let (counters, sessions) = values.split_last().expect("final counters line");
    assert!(counters.is_array(), "{counters}");
    Run {
        sessions: sessions.to_vec(),
        counters: counters.clone(),
        stderr,
    }
}

/// `(success, dupsyn, dupsynack, failure, timeout, reject, unreach)`
fn counts(run: &Run, name: &str) -> [u64; 7] {
    common::counts(&run.counters, name)
}

fn stat(run: &Run, key: &str) -> u64 {
    let a = run.counters.as_array().unwrap();
    a.last().unwrap()["pcap"]["stats"][key].as_u64().unwrap()
}

fn results(run: &Run) -> Vec<String> {
    run.sessions
        .iter()
        .map(|s| s["result"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn success() {
    let r = read("success.pcap", &[&LOCAL[..], &["web:RX@%:80"]].concat());
    assert_eq!(counts(&r, "RX"), [4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(counts(&r, "TX"), [0; 7]);
    assert_eq!(counts(&r, "web"), [3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(stat(&r, "malformed"), 0);
    assert_eq!(stat(&r, "pending"), 0);
}

#[test]
fn without_local_every_handshake_is_both_rx_and_tx() {
    let r = read("success.pcap", &[]);
    assert_eq!(counts(&r, "RX"), [4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(counts(&r, "TX"), [4, 0, 0, 0, 0, 0, 0]);
    assert!(r.stderr.contains("no --local given"), "{}", r.stderr);
    assert_eq!(r.sessions[0]["filters"], serde_json::json!(["RX", "TX"]));
}

#[test]
fn success6() {
    let r = read("success6.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [2, 0, 0, 0, 0, 0, 0]);
    assert!(r
        .sessions
        .iter()
        .all(|s| s["src"] == "fd00::2" && s["dport"] == 443));
}

#[test]
fn reject() {
    let r = read("reject.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [0, 0, 0, 2, 0, 2, 0]);
}

#[test]
fn rst_with_a_wrong_ack_does_not_decide() {
    let r = read("bogus_rst.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [1, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn timeout_is_decided_by_packet_time() {
    // SYNs at 0, 1, 3, 7 s; the last plus 60 s is 67 s, and unrelated
    // packets carry packet time on to 200 s.
    let r = read("timeout.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [0, 0, 0, 1, 1, 0, 0]);
    assert_eq!(r.sessions[0]["duration"], 67.0);
    assert_eq!(r.sessions[0]["dupsyn"], 3);
    // A shorter timeout: the 4 s gap after the third SYN is too long.
    let r = read("timeout.pcap", &[&LOCAL[..], &["-t", "3"]].concat());
    assert_eq!(counts(&r, "RX"), [0, 0, 0, 1, 1, 0, 0]);
    assert_eq!(r.sessions[0]["duration"], 6.0);
}

#[test]
fn timeout_is_the_same_every_run() {
    let a = read("timeout.pcap", &LOCAL);
    let b = read("timeout.pcap", &LOCAL);
    assert_eq!(a.sessions, b.sessions);
    assert_eq!(a.counters, b.counters);
}

#[test]
fn dupsyn() {
    let r = read("dupsyn.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [1, 1, 0, 0, 0, 0, 0]);
}

#[test]
fn dupsynack() {
    let r = read("dupsynack.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [1, 0, 1, 0, 0, 0, 0]);
}

#[test]
fn unreach_needs_the_icmp_option() {
    let r = read("unreach.pcap", &[&LOCAL[..], &["--icmp"]].concat());
    assert_eq!(counts(&r, "RX"), [0, 0, 0, 2, 0, 0, 2]);
    assert!(
        r.stderr.contains("ICMP Unreachable      :      2"),
        "{}",
        r.stderr
    );
    // Without --icmp the ICMP is ignored: the handshakes are still open at
    // the end of the file.
    let r = read("unreach.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [0; 7]);
    assert_eq!(stat(&r, "pending"), 2);
    assert!(!r.stderr.contains("ICMP Unreachable"));
}

#[test]
fn syn_retried_after_icmp_is_not_a_second_session() {
    let r = read("icmp_retry.pcap", &[&LOCAL[..], &["--icmp"]].concat());
    assert_eq!(results(&r), ["unreach"]);
    assert_eq!(counts(&r, "RX"), [0, 0, 0, 1, 0, 0, 1]);
    assert_eq!(stat(&r, "pending"), 0);
    // Without --icmp, the retransmitted SYN is part of one attempt that
    // times out.
    let r = read("icmp_retry.pcap", &LOCAL);
    assert_eq!(results(&r), ["timeout"]);
    assert_eq!(r.sessions[0]["dupsyn"], 1);
}

#[test]
fn simultaneous_open() {
    let r = read("simultaneous.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.sessions[0]["src"], "10.0.0.2");
}

#[test]
fn tcp_fast_open() {
    let r = read("tfo.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [1, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn linux_cooked_v2_and_vlan() {
    for f in ["sll2.pcap", "vlan.pcap"] {
        let r = read(f, &LOCAL);
        assert_eq!(counts(&r, "RX"), [1, 0, 0, 0, 0, 0, 0], "{f}");
        assert_eq!(stat(&r, "malformed"), 0, "{f}");
    }
}

#[test]
fn checksum_modes_accept_the_fixtures() {
    for level in ["1", "2"] {
        let r = read("success.pcap", &[&LOCAL[..], &["-c", level]].concat());
        assert_eq!(counts(&r, "RX")[0], 4, "-c {level}");
        assert_eq!(stat(&r, "malformed"), 0, "-c {level}");
    }
}

#[test]
fn mixed_demo_capture() {
    let r = read("mixed.pcap", &[&LOCAL[..], &["--icmp"]].concat());
    let rx = counts(&r, "RX");
    let tx = counts(&r, "TX");
    // Every finished handshake is counted once, in RX or in TX.
    assert_eq!((rx[0] + rx[3] + tx[0] + tx[3]) as usize, r.sessions.len());
    for kind in ["success", "reject", "timeout", "unreach"] {
        assert!(
            results(&r).iter().any(|k| k == kind),
            "no {kind} in the demo"
        );
    }
    assert!(
        rx[1] > 0 && tx[2] > 0,
        "a dupsyn and a dupsynack: {rx:?} {tx:?}"
    );
    assert!(r.sessions.iter().any(|s| s["src"] == "fd00::1"), "IPv6 TX");
    assert_eq!(stat(&r, "pending"), 0);
    // The human output of the same run.
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .arg("-r")
        .arg(fixture("mixed.pcap"))
        .args(LOCAL)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(" TIME(s) |       TIMESTAMP       |"),
        "{text}"
    );
    assert!(text.contains("| failure (reject)  |"), "{text}");
    assert!(
        text.contains("========== TCPEEK SUMMARY =========="),
        "{text}"
    );
}

/// Each finished handshake as `"DPORT RESULT[/by WHO] dupsyn=N dupsynack=N
/// START+DURATION"` (START in seconds from the file's start, both to the
/// microsecond), in the order they finished.
fn pinned(run: &Run) -> Vec<String> {
    run.sessions
        .iter()
        .map(|s| {
            let start = s["start"].as_str().unwrap();
            let rest = start
                .strip_prefix("2026-01-01T")
                .expect("starts 2026-01-01");
            // "HH:MM:SS.ffffffZ"
            let hms: Vec<f64> = rest
                .trim_end_matches('Z')
                .split(':')
                .map(|x| x.parse().unwrap())
                .collect();
            let at = hms[0] * 3600.0 + hms[1] * 60.0 + hms[2];
            let by = s
                .get("reset_by")
                .and_then(Value::as_str)
                .map(|w| format!("/by {w}"))
                .unwrap_or_default();
            format!(
                "{} {}{by} dupsyn={} dupsynack={} {at:.6}+{:.6}",
                s["dport"],
                s["result"].as_str().unwrap(),
                s["dupsyn"],
                s["dupsynack"],
                s["duration"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// `(src, sport, dst, dport, result)` of each finished handshake.
fn sessions(run: &Run) -> Vec<(String, u64, String, u64, String)> {
    run.sessions
        .iter()
        .map(|s| {
            (
                s["src"].as_str().unwrap().to_string(),
                s["sport"].as_u64().unwrap(),
                s["dst"].as_str().unwrap().to_string(),
                s["dport"].as_u64().unwrap(),
                s["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn quiet_period_does_not_break_the_next_handshake() {
    // Regression: the first handshake after more than 10 minutes without
    // a frame was stamped before the gap, timed out, and its retransmitted
    // SYN counted again.
    let r = read("quiet.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "80 success dupsyn=0 dupsynack=0 0.100000+0.000840",
            "80 success dupsyn=1 dupsynack=0 3600.000000+1.000840",
        ]
    );
    assert_eq!(counts(&r, "RX"), [2, 1, 0, 0, 0, 0, 0]);
}

#[test]
fn lone_damaged_timestamps_do_not_move_time() {
    // The first frame and the last are stamped 2099, a SYN/ACK 1970: none
    // of them moves packet time, so the durations are real and the open
    // handshake is still open at the end (not timed out by the last frame).
    let r = read("damaged_time.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "80 success dupsyn=0 dupsynack=0 0.100000+0.000840",
            "80 success dupsyn=0 dupsynack=0 1.000000+0.000840",
        ]
    );
    assert_eq!(stat(&r, "pending"), 1);
    assert!(
        r.stderr.contains("overruled timestamps : 3"),
        "{}",
        r.stderr
    );
    // The summary's span is the real one (in local time: no year 2099 or
    // 1970 whatever the time zone).
    let span: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("     from :") || l.starts_with("       to :"))
        .collect();
    assert_eq!(span.len(), 2, "{}", r.stderr);
    assert!(
        span.iter()
            .all(|l| l.contains("2026-01-01") || l.contains("2025-12-31")),
        "{span:?}"
    );
}

#[test]
fn records_out_of_order_give_the_same_verdicts() {
    let r = read("reordered.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "80 success dupsyn=0 dupsynack=0 0.100000+0.000090",
            "80 success dupsyn=0 dupsynack=0 0.200000+0.000090",
            "80 success dupsyn=0 dupsynack=0 0.300000+0.000040",
            // Silent for 60 s: times out at 70 s although a record stamped
            // 5 s came after it; that record is late, at the engine's clock.
            "81 timeout dupsyn=0 dupsynack=0 10.000000+60.000000",
            "82 timeout dupsyn=0 dupsynack=0 10.000000+60.000000",
            "83 timeout dupsyn=0 dupsynack=0 20.000000+60.000000",
        ]
    );
    assert_eq!(stat(&r, "late"), 1);
}

#[test]
fn synack_with_a_new_isn_after_a_retransmitted_syn_completes() {
    let r = read("new_isn.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "80 success dupsyn=1 dupsynack=1 0.100000+1.000840",
            "80 success dupsyn=1 dupsynack=1 5.100000+1.000840",
        ]
    );
}

#[test]
fn fast_open_server_data_and_rst_below_rcv_nxt() {
    let r = read("tfo_data.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "443 success dupsyn=0 dupsynack=0 0.100000+0.000840",
            "443 success dupsyn=0 dupsynack=0 1.100000+0.000840",
        ]
    );
}

#[test]
fn icmp_toward_the_listener_is_judged_as_linux_does() {
    let r = read("listener_icmp.pcap", &[&LOCAL[..], &["--icmp"]].concat());
    assert_eq!(
        pinned(&r),
        [
            "80 success dupsyn=1 dupsynack=0 0.100000+1.000840",
            "80 success dupsyn=0 dupsynack=0 3.000000+0.002400",
            "80 unreach dupsyn=0 dupsynack=0 5.000000+60.000800",
        ]
    );
    // Without --icmp, the errors are ignored: the last one times out, and
    // the first one's second SYN/ACK is a SYN/ACK retransmission.
    let r = read("listener_icmp.pcap", &LOCAL);
    assert_eq!(counts(&r, "RX"), [2, 1, 1, 1, 1, 0, 0]);
}

#[test]
fn client_resets_say_who_reset() {
    let r = read("client_abort.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "80 reject/by client dupsyn=0 dupsynack=0 0.100000+0.000840",
            "81 reject/by server dupsyn=0 dupsynack=0 1.000000+0.000800",
        ]
    );
    // The socket's counters keep the original's meaning: every reset.
    assert_eq!(counts(&r, "RX"), [0, 0, 0, 2, 0, 2, 0]);
    assert!(
        r.stderr.contains("       of which by client  :      1"),
        "{}",
        r.stderr
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .arg("-r")
        .arg(fixture("client_abort.pcap"))
        .args(LOCAL)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("| failure (aborted) |"), "{text}");
    assert!(text.contains("| failure (reject)  |"), "{text}");
}

#[test]
fn syn_with_another_isn_on_a_tuple_in_syn_sent_is_a_new_handshake() {
    let r = read("port_reuse.pcap", &LOCAL);
    assert_eq!(
        pinned(&r),
        [
            "80 timeout dupsyn=0 dupsynack=0 0.100000+3.000000",
            "80 success dupsyn=0 dupsynack=0 3.100000+0.000840",
        ]
    );
    assert_eq!(r.sessions[0]["sport"], r.sessions[1]["sport"]);
}

fn session(
    src: &str,
    sport: u64,
    dst: &str,
    dport: u64,
    result: &str,
) -> (String, u64, String, u64, String) {
    (src.into(), sport, dst.into(), dport, result.into())
}

/// Snapshot length 68 cut the options off every SYN and SYN/ACK, and those
/// frames were all malformed: the handshakes were lost. An IPv6 segment
/// keeps 14 bytes of its TCP header at 68, through the flags: enough.
#[test]
fn snaplen_68_cut_options_do_not_lose_the_handshakes() {
    let r = read("snaplen.pcap", &LOCAL);
    assert!(r.stderr.contains("snapshot length 68"), "{}", r.stderr);
    assert_eq!(counts(&r, "RX"), [3, 0, 0, 1, 0, 1, 0]);
    assert_eq!(
        sessions(&r),
        [
            session("10.0.0.2", 40047, "10.0.0.1", 80, "success"),
            session("10.0.0.2", 40094, "10.0.0.1", 80, "success"),
            session("10.0.0.2", 40110, "10.0.0.1", 81, "reject"),
            session("fd00::2", 40112, "fd00::1", 443, "success"),
        ]
    );
    // Three IPv4 SYNs and two SYN/ACKs decoded from their fixed header,
    // and the IPv6 SYN, SYN/ACK and ACK from their first 14 bytes.
    assert_eq!(stat(&r, "truncated"), 8);
    assert_eq!(stat(&r, "malformed"), 0);
    assert_eq!(stat(&r, "pending"), 0);
    assert!(r.stderr.contains("   truncated : 8\n"), "{}", r.stderr);
}

/// libpcap refuses this file ("an interface has a type 101 different from
/// the type of the first interface").
#[test]
fn multilink_pcapng_decodes_each_interface_with_its_link_type() {
    let r = read("multilink.pcapng", &LOCAL);
    assert_eq!(counts(&r, "RX"), [2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        sessions(&r),
        [
            session("10.0.0.2", 40045, "10.0.0.1", 80, "success"),
            session("10.8.0.2", 40047, "10.0.0.1", 443, "success"),
        ]
    );
    // Interface 1 counts nanoseconds (if_tsresol 9); its SYN comes 400 µs
    // after the Ethernet one.
    assert_eq!(r.sessions[1]["start"], "2026-01-01T00:00:00.100400Z");
    // The one 802.11 frame.
    assert_eq!(stat(&r, "malformed"), 1);
    assert_eq!(stat(&r, "truncated"), 0);
    assert_eq!(stat(&r, "recv"), 17);
    assert!(
        r.stderr
            .contains("interface 2: link type 105 (IEEE802_11 (802.11))"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("3 interfaces: 0: link-type EN10MB (Ethernet)"),
        "{}",
        r.stderr
    );
}
