//! The metric set (README, "Metrics") as plain data, built from a
//! [`Counters`] snapshot: one description that both the Prometheus
//! exposition and OTLP encode, so the two can never disagree.
//!
//! Names follow the Prometheus naming guide without the suffixes the
//! encoders add: `_total` on counters, the unit (`_seconds`) on the
//! durations. No label takes an address or a port: the series are bounded
//! by the filters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::stats::histogram::{Buckets, Histogram};
use crate::stats::{result_label, Counters, FilterDetail, FAMILIES, ICMP_SLOTS, OUTCOMES};

/// What tcpeek says about itself, fixed for a run.
#[derive(Clone, Debug)]
pub struct About {
    pub version: &'static str,
    /// `ebpf`, `pcap` or `file`.
    pub backend: &'static str,
    /// The interface watched, or the file read.
    pub interface: String,
    /// With `--otlp`: the pushes that failed.
    pub otlp_failures: Option<Arc<AtomicU64>>,
}

impl About {
    pub fn new(backend: &'static str, interface: impl Into<String>) -> About {
        About {
            version: env!("CARGO_PKG_VERSION"),
            backend,
            interface: interface.into(),
            otlp_failures: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// A gauge of 1 whose labels are the information.
    Info,
    Histogram,
}

#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Int(u64),
    Histogram(&'a Histogram, &'a Buckets),
}

/// One series: its labels and its value.
#[derive(Clone, Debug)]
pub struct Point<'a> {
    pub labels: Vec<(&'static str, &'a str)>,
    pub value: Value<'a>,
}

/// One metric and its series.
#[derive(Clone, Debug)]
pub struct Family<'a> {
    /// Without `_total` or a unit suffix.
    pub name: &'static str,
    pub help: &'static str,
    /// Measured in seconds (the name gains `_seconds`).
    pub seconds: bool,
    pub kind: Kind,
    pub points: Vec<Point<'a>>,
}

impl<'a> Family<'a> {
    fn new(name: &'static str, kind: Kind, help: &'static str) -> Family<'a> {
        Family {
            name,
            help,
            seconds: false,
            kind,
            points: Vec::new(),
        }
    }

    fn point(&mut self, labels: Vec<(&'static str, &'a str)>, value: Value<'a>) {
        self.points.push(Point { labels, value });
    }
}

/// ICMP code labels by slot (`stats::icmp_slot`), per family. IPv4 code 4
/// (fragmentation needed) never ends a handshake and has no series.
const ICMP_V4_CODES: [(usize, &str); 15] = [
    (0, "0"),
    (1, "1"),
    (2, "2"),
    (3, "3"),
    (5, "5"),
    (6, "6"),
    (7, "7"),
    (8, "8"),
    (9, "9"),
    (10, "10"),
    (11, "11"),
    (12, "12"),
    (13, "13"),
    (14, "14"),
    (15, "15"),
];
const ICMP_V6_CODES: [(usize, &str); 10] = [
    (0, "0"),
    (1, "1"),
    (2, "2"),
    (3, "3"),
    (4, "4"),
    (5, "5"),
    (6, "6"),
    (7, "7"),
    (8, "8"),
    (9, "other"),
];
const _: () = assert!(ICMP_V4_CODES[14].0 < ICMP_SLOTS && ICMP_V6_CODES[9].0 < ICMP_SLOTS);

/// Every metric of `c`, in exposition order.
pub fn families<'a>(c: &'a Counters, about: &'a About) -> Vec<Family<'a>> {
    let filters = || {
        c.filters
            .iter()
            .map(|(n, _)| n.as_str())
            .zip(&c.detail)
            .flat_map(|(filter, d): (&'a str, &'a FilterDetail)| {
                FAMILIES
                    .iter()
                    .zip(&d.family)
                    .map(move |(fam, f)| (filter, *fam, f))
            })
    };
    let b = &c.buckets;
    let mut out = Vec::new();

    let mut m = Family::new(
        "tcpeek_handshakes",
        Kind::Counter,
        "Finished TCP handshakes by filter, address family and result",
    );
    for (filter, fam, f) in filters() {
        for o in OUTCOMES {
            let labels = vec![
                ("filter", filter),
                ("family", fam),
                ("result", result_label(o)),
            ];
            m.point(labels, Value::Int(f.results[o as usize]));
        }
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_handshake_duration",
        Kind::Histogram,
        "Established handshakes, first SYN to completing ACK",
    );
    m.seconds = true;
    for (filter, fam, f) in filters() {
        m.point(
            vec![("filter", filter), ("family", fam)],
            Value::Histogram(&f.duration, b),
        );
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_handshake_phase_duration",
        Kind::Histogram,
        "Established handshakes by phase: first SYN to the server's acknowledgement of it (syn_to_synack), that to the completing ACK (synack_to_ack)",
    );
    m.seconds = true;
    for (filter, fam, f) in filters() {
        for (phase, h) in [
            ("syn_to_synack", &f.syn_to_synack),
            ("synack_to_ack", &f.synack_to_ack),
        ] {
            let labels = vec![("filter", filter), ("family", fam), ("phase", phase)];
            m.point(labels, Value::Histogram(h, b));
        }
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_handshakes_retransmitted",
        Kind::Counter,
        "Established handshakes with at least one retransmitted SYN or SYN/ACK (the socket's dupsyn and dupsynack)",
    );
    for (filter, fam, f) in filters() {
        for (segment, v) in ["syn", "synack"].into_iter().zip(f.retransmitted) {
            let labels = vec![("filter", filter), ("family", fam), ("segment", segment)];
            m.point(labels, Value::Int(v));
        }
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_handshakes_in_progress",
        Kind::Gauge,
        "Handshakes being tracked, by filter",
    );
    for ((filter, _), d) in c.filters.iter().zip(&c.detail) {
        m.point(vec![("filter", filter.as_str())], Value::Int(d.in_progress));
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_icmp_unreachable",
        Kind::Counter,
        "Handshakes ended by an ICMP (type 3) or ICMPv6 (type 1) destination unreachable, by code (with --icmp)",
    );
    for (filter, fam, f) in filters() {
        let (ty, codes) = match fam {
            "ipv4" => ("3", &ICMP_V4_CODES[..]),
            _ => ("1", &ICMP_V6_CODES[..]),
        };
        for &(slot, code) in codes {
            let labels = vec![
                ("filter", filter),
                ("family", fam),
                ("type", ty),
                ("code", code),
            ];
            m.point(labels, Value::Int(f.icmp[slot]));
        }
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_build",
        Kind::Info,
        "tcpeek's version and capture backend",
    );
    m.point(
        vec![("version", about.version), ("backend", about.backend)],
        Value::Int(1),
    );
    out.push(m);

    // Live: each interface's figures; a file: the file's.
    let per: Vec<(&'a str, crate::capture::CaptureStats)> = if c.interfaces.is_empty() {
        vec![(about.interface.as_str(), c.capture)]
    } else {
        c.interfaces.iter().map(|(n, s)| (n.as_str(), *s)).collect()
    };
    let mut m = Family::new(
        "tcpeek_capture_packets",
        Kind::Counter,
        "Packets the capture looked at",
    );
    for &(iface, s) in &per {
        m.point(vec![("interface", iface)], Value::Int(s.recv));
    }
    out.push(m);

    let mut m = Family::new(
        "tcpeek_capture_dropped",
        Kind::Counter,
        "What the capture lost, by reason: eBPF ring buffer full or in-kernel handshake table full; libpcap buffer or interface drops",
    );
    for &(iface, s) in &per {
        let reasons: &[(&str, u64)] = match about.backend {
            "ebpf" => &[("ring_full", s.drop), ("kernel_table_full", s.ifdrop)],
            "pcap" => &[("libpcap", s.drop), ("ifdrop", s.ifdrop)],
            _ => &[],
        };
        for &(reason, v) in reasons {
            m.point(
                vec![("interface", iface), ("reason", reason)],
                Value::Int(v),
            );
        }
    }
    out.push(m);

    for (name, kind, help, v) in [
        (
            "tcpeek_packets_malformed",
            Kind::Counter,
            "Frames that could not be decoded or failed the checksum check",
            c.capture.malformed,
        ),
        (
            "tcpeek_packets_truncated",
            Kind::Counter,
            "Frames cut short by the snapshot length whose TCP header was still decoded",
            c.capture.truncated,
        ),
        (
            "tcpeek_records_late",
            Kind::Counter,
            "Records that arrived later than the reordering window allows",
            c.engine.late,
        ),
        (
            "tcpeek_handshakes_evicted",
            Kind::Counter,
            "eBPF: handshakes that timed out after the kernel's table of SYN/ACKs had forgotten them (not counted in any filter)",
            c.engine.evicted,
        ),
        (
            "tcpeek_sessions_forgotten",
            Kind::Counter,
            "Finished handshakes dropped before their linger time to make room (a late SYN retransmission of one may count as a new handshake)",
            c.engine.forgotten,
        ),
        (
            "tcpeek_sessions_overflow",
            Kind::Counter,
            "Opening SYNs not tracked because the session table was full",
            c.engine.overflow,
        ),
        (
            "tcpeek_output_lines_dropped",
            Kind::Counter,
            "Handshake lines dropped because their reader was too slow",
            c.lines_dropped,
        ),
        (
            "tcpeek_sessions_tracked",
            Kind::Gauge,
            "Handshakes in progress in the session table",
            c.engine.pending,
        ),
        (
            "tcpeek_session_table_capacity",
            Kind::Gauge,
            "Most handshakes the session table tracks at once (--max-sessions)",
            c.engine.capacity,
        ),
        (
            "tcpeek_config_last_reload_successful",
            Kind::Gauge,
            "Whether the last configuration reload (SIGHUP) was taken",
            u64::from(c.config.last_reload_ok),
        ),
        (
            "tcpeek_config_last_reload_success_timestamp_seconds",
            Kind::Gauge,
            "When the configuration running was loaded, in seconds since the epoch",
            c.config.loaded_at_s,
        ),
    ] {
        let mut m = Family::new(name, kind, help);
        m.point(Vec::new(), Value::Int(v));
        out.push(m);
    }
    let mut m = Family::new(
        "tcpeek_server_clients_dropped",
        Kind::Counter,
        "Clients closed unanswered at the limit of connections: the one idle the longest, to make room, or the new one when all were being answered",
    );
    for (server, v) in [
        ("socket", c.servers.socket_dropped),
        ("metrics", c.servers.metrics_dropped),
    ] {
        m.point(vec![("server", server)], Value::Int(v));
    }
    out.push(m);

    if let Some(n) = &about.otlp_failures {
        let mut m = Family::new(
            "tcpeek_otlp_push_failures",
            Kind::Counter,
            "OTLP pushes (--otlp) that failed",
        );
        m.point(Vec::new(), Value::Int(n.load(Ordering::Relaxed)));
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureStats;

    fn ints<'a>(fams: &'a [Family<'a>], name: &str) -> Vec<(Vec<(&'static str, &'a str)>, u64)> {
        let f = fams.iter().find(|f| f.name == name).unwrap();
        f.points
            .iter()
            .map(|p| match p.value {
                Value::Int(v) => (p.labels.clone(), v),
                Value::Histogram(..) => panic!("{name} is a histogram"),
            })
            .collect()
    }

    #[test]
    fn each_live_interface_has_its_own_capture_series() {
        let mut c = Counters::new(["RX", "TX"]);
        let s = |recv, drop| CaptureStats {
            recv,
            drop,
            ..Default::default()
        };
        c.interfaces = vec![("eth0".into(), s(7, 1)), ("eth1".into(), s(5, 2))];
        c.capture = s(12, 3);
        let about = About::new("ebpf", "eth0,eth1");
        let fams = families(&c, &about);
        assert_eq!(
            ints(&fams, "tcpeek_capture_packets"),
            [
                (vec![("interface", "eth0")], 7),
                (vec![("interface", "eth1")], 5)
            ]
        );
        let dropped = ints(&fams, "tcpeek_capture_dropped");
        assert!(dropped.contains(&(vec![("interface", "eth1"), ("reason", "ring_full")], 2)));
        assert_eq!(dropped.len(), 4);
        // A file: one series, named after it.
        c.interfaces.clear();
        let about = About::new("file", "x.pcap");
        let fams = families(&c, &about);
        assert_eq!(
            ints(&fams, "tcpeek_capture_packets"),
            [(vec![("interface", "x.pcap")], 12)]
        );
    }

    #[test]
    fn the_reload_status_is_reported() {
        let mut c = Counters::new(["RX", "TX"]);
        c.config.loaded_at_s = 1_767_225_600;
        c.config.last_reload_ok = false;
        let about = About::new("pcap", "eth0");
        let fams = families(&c, &about);
        assert_eq!(
            ints(&fams, "tcpeek_config_last_reload_successful"),
            [(vec![], 0)]
        );
        assert_eq!(
            ints(&fams, "tcpeek_config_last_reload_success_timestamp_seconds"),
            [(vec![], 1_767_225_600)]
        );
    }
}
