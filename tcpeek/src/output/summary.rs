//! The exit summary, in the original's layout, followed by what the capture
//! and the engine could not see or decide.

use std::fmt::Write;

use chrono::{DateTime, Local, Utc};

use super::latency;
use crate::stats::Counters;

/// What the summary reports besides the counters.
pub struct SummaryInfo<'a> {
    /// Aggregation start and end, ns since the epoch.
    pub from_ns: u64,
    pub to_ns: u64,
    /// Whether ICMP unreachable is interpreted (`--icmp`): the original shows
    /// the `ICMP Unreachable` line only then.
    pub icmp: bool,
    /// Name of the capture section: `pcap` or `ebpf`.
    pub capture: &'a str,
    /// Handshake lines not printed because their reader was too slow.
    pub dropped_lines: u64,
}

const RULE: &str = "------------------------------------";

fn local(ns: u64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns.min(i64::MAX as u64) as i64)
        .with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Formats the summary block.
pub fn format_summary(c: &Counters, info: &SummaryInfo<'_>) -> String {
    let mut s = String::new();
    let secs = info.to_ns.saturating_sub(info.from_ns) as f64 / 1e9;
    // Writing to a String cannot fail.
    let _ = writeln!(s, "========== TCPEEK SUMMARY ==========");
    let _ = writeln!(s, "     from : {}", local(info.from_ns));
    let _ = writeln!(s, "       to : {}", local(info.to_ns));
    let _ = writeln!(s, "     time : {secs:13.3} (sec)");
    for (name, f) in &c.filters {
        let _ = writeln!(s, "{RULE}");
        let _ = writeln!(s, " {name}");
        let _ = writeln!(s, "   Success: {} session", f.success.total);
        let _ = writeln!(s, "     SYN Segment Duplicate : {:6}", f.success.dupsyn);
        let _ = writeln!(s, "     S/A Segment Duplicate : {:6}", f.success.dupsynack);
        let _ = writeln!(s, "   Failure: {} session", f.failure.total);
        let _ = writeln!(s, "     Connection Timed Out  : {:6}", f.failure.timeout);
        let _ = writeln!(s, "     Connection Rejected   : {:6}", f.failure.reject);
        let _ = writeln!(
            s,
            "       of which by client  : {:6}",
            f.failure.reject_by_client
        );
        if info.icmp {
            let _ = writeln!(s, "     ICMP Unreachable      : {:6}", f.failure.unreach);
        }
    }
    let _ = writeln!(s, "{RULE}");
    let _ = writeln!(s, " latency (established: first SYN to completing ACK)");
    for ((name, _), d) in c.filters.iter().zip(&c.detail) {
        s.push_str(&latency::render(name, &d.latency.latency(), "   "));
    }
    let _ = writeln!(s, "{RULE}");
    let _ = writeln!(s, " {} stats", info.capture);
    let _ = writeln!(s, "   recv   : {}", c.capture.recv);
    let _ = writeln!(s, "   drop   : {}", c.capture.drop);
    let _ = writeln!(s, "   ifdrop : {}", c.capture.ifdrop);
    let _ = writeln!(s, "   malformed : {}", c.capture.malformed);
    let _ = writeln!(s, "   truncated : {}", c.capture.truncated);
    if c.interfaces.len() > 1 {
        for (name, i) in &c.interfaces {
            let _ = writeln!(
                s,
                "   {name} : recv {}, drop {}, ifdrop {}, malformed {}, truncated {}",
                i.recv, i.drop, i.ifdrop, i.malformed, i.truncated
            );
        }
    }
    let _ = writeln!(s, "{RULE}");
    let _ = writeln!(s, " engine stats");
    let _ = writeln!(
        s,
        "   pending  : {}  (handshakes still open, not counted)",
        c.engine.pending
    );
    let _ = writeln!(
        s,
        "   overflow : {}  (SYNs not tracked: table full)",
        c.engine.overflow
    );
    let _ = writeln!(
        s,
        "   late     : {}  (records later than the 5 ms reordering window)",
        c.engine.late
    );
    if c.engine.forgotten > 0 {
        let _ = writeln!(
            s,
            "   forgotten : {}  (finished handshakes dropped early: table full)",
            c.engine.forgotten
        );
    }
    if c.engine.evicted > 0 {
        let _ = writeln!(
            s,
            "   evicted  : {}  (eBPF: timed out after the kernel's table forgot them, not counted)",
            c.engine.evicted
        );
    }
    if c.engine.clock_overruled > 0 {
        let _ = writeln!(
            s,
            "   overruled timestamps : {}  (frames stamped far from their neighbours)",
            c.engine.clock_overruled
        );
    }
    for (server, n) in [
        ("socket", c.servers.socket_dropped),
        ("metrics", c.servers.metrics_dropped),
    ] {
        if n > 0 {
            let _ = writeln!(
                s,
                "   {server} clients dropped : {n}  (closed unanswered at the connection limit)"
            );
        }
    }
    if info.dropped_lines > 0 {
        let _ = writeln!(
            s,
            "   lines dropped : {}  (their reader was too slow)",
            info.dropped_lines
        );
    }
    let _ = writeln!(s, "====================================");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Outcome;

    #[test]
    fn layout_follows_the_original() {
        let mut c = Counters::new(["RX", "TX"]);
        for _ in 0..10 {
            c.filters[0].1.record(Outcome::Reject, 0, 0);
        }
        c.filters[1].1.record(Outcome::Success, 1, 0);
        c.capture.drop = 3;
        c.engine.pending = 4;
        let info = SummaryInfo {
            from_ns: 0,
            to_ns: 86_106_000_000,
            icmp: false,
            capture: "pcap",
            dropped_lines: 0,
        };
        let s = format_summary(&c, &info);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "========== TCPEEK SUMMARY ==========");
        assert_eq!(lines[3], "     time :        86.106 (sec)");
        assert_eq!(lines[5], " RX");
        assert_eq!(lines[8], "     S/A Segment Duplicate :      0");
        assert_eq!(lines[9], "   Failure: 10 session");
        assert_eq!(lines[11], "     Connection Rejected   :     10");
        assert_eq!(lines[12], "       of which by client  :      0");
        assert!(s.contains(" TX\n   Success: 1 session\n     SYN Segment Duplicate :      1\n"));
        assert!(!s.contains("ICMP Unreachable"));
        assert!(s.contains(" pcap stats\n   recv   : 0\n   drop   : 3\n   ifdrop : 0\n"));
        assert!(s.contains("   pending  : 4"));
        assert_eq!(
            *lines.last().unwrap(),
            "===================================="
        );
        let with_icmp = format_summary(&c, &SummaryInfo { icmp: true, ..info });
        assert!(with_icmp.contains("     ICMP Unreachable      :      0\n"));
        assert!(!s.contains("eth0"), "one interface: no per-interface lines");
    }

    #[test]
    fn several_interfaces_each_get_a_line_after_the_totals() {
        let mut c = Counters::new(["RX", "TX"]);
        let one = |recv, drop| crate::capture::CaptureStats {
            recv,
            drop,
            ..Default::default()
        };
        c.interfaces = vec![("eth0".into(), one(7, 1)), ("eth1".into(), one(5, 0))];
        c.capture = one(12, 1);
        let info = SummaryInfo {
            from_ns: 0,
            to_ns: 1,
            icmp: false,
            capture: "ebpf",
            dropped_lines: 0,
        };
        let s = format_summary(&c, &info);
        assert!(
            s.contains(" ebpf stats\n   recv   : 12\n   drop   : 1\n"),
            "{s}"
        );
        assert!(s.contains(
            "   truncated : 0\n   eth0 : recv 7, drop 1, ifdrop 0, malformed 0, truncated 0\n   eth1 : recv 5, drop 0, ifdrop 0, malformed 0, truncated 0\n"
        ), "{s}");
    }
}
