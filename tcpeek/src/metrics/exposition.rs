//! The metric set (README, "Metrics"), encoded from a [`Counters`]
//! snapshot on each scrape: a scrape never touches the live counters.
//!
//! Names follow the Prometheus naming guide: base unit seconds, `_total`
//! on counters (the encoder adds it), no label values inside names. No
//! label takes an address or a port: the series are bounded by the
//! filters.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::stats::histogram::{Buckets, Histogram};
use crate::stats::{result_label, Counters, FilterDetail, FAMILIES, ICMP_SLOTS, OUTCOMES};

/// What the metrics say about tcpeek itself, fixed for a run.
#[derive(Clone, Debug)]
pub struct About {
    pub version: &'static str,
    /// `ebpf`, `pcap` or `file`.
    pub backend: &'static str,
    /// The interface watched, or the file read.
    pub interface: String,
}

/// The exposition format a scrape gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4: what a client that does
    /// not ask for anything else gets.
    Prometheus,
    /// OpenMetrics 1.0 text, for a scraper whose `Accept` header asks for
    /// it (Prometheus does).
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let asks = accept.is_some_and(|a| {
            a.split(',').any(|r| {
                let mut parts = r.split(';').map(str::trim);
                let media = parts.next().unwrap_or("");
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if asks {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The exposition of `counters` in `format`.
pub fn encode(counters: Counters, about: &About, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot {
        counters,
        about: about.clone(),
    }));
    let mut out = String::new();
    let r = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing to a String cannot fail, and every value is encodable.
    r.expect("the exposition encodes");
    out
}

/// An OpenMetrics exposition with every sample stamped `ts_ns` (whole
/// milliseconds, as Prometheus stores them): what `promtool tsdb
/// create-blocks-from openmetrics` backfills. prometheus-client writes no
/// timestamps; a sample line is `name{labels} value`, and label values
/// cannot hold a newline (the encoder escapes it), so each line that is
/// not a comment gets one appended.
pub fn with_timestamp(exposition: &str, ts_ns: u64) -> String {
    let ts = format!(" {}.{:03}", ts_ns / 1_000_000_000, ts_ns / 1_000_000 % 1000);
    let mut out = String::with_capacity(exposition.len() + exposition.len() / 4);
    for line in exposition.lines() {
        out.push_str(line);
        if !line.starts_with('#') && !line.is_empty() {
            out.push_str(&ts);
        }
        out.push('\n');
    }
    out
}

#[derive(Debug)]
struct Snapshot {
    counters: Counters,
    about: About,
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

fn counter(m: &mut MetricEncoder<'_>, v: u64) -> fmt::Result {
    m.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn histogram(m: &mut MetricEncoder<'_>, h: &Histogram, b: &Buckets) -> fmt::Result {
    let bounds = b.secs().iter().copied().chain([f64::INFINITY]);
    let buckets: Vec<(f64, u64)> = bounds.zip(h.counts().iter().copied()).collect();
    m.encode_histogram::<NoLabelSet>(h.sum_secs(), h.count(), &buckets, None)
}

impl Snapshot {
    /// Each filter with its detail.
    fn filters(&self) -> impl Iterator<Item = (&str, &FilterDetail)> {
        let c = &self.counters;
        c.filters.iter().map(|(n, _)| n.as_str()).zip(&c.detail)
    }

    fn handshakes(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut m = enc.encode_descriptor(
            "tcpeek_handshakes",
            "Finished TCP handshakes by filter, address family and result",
            None,
            MetricType::Counter,
        )?;
        for (filter, d) in self.filters() {
            for (fam, f) in FAMILIES.iter().zip(&d.family) {
                for o in OUTCOMES {
                    let labels = [
                        ("filter", filter),
                        ("family", fam),
                        ("result", result_label(o)),
                    ];
                    counter(&mut m.encode_family(&labels)?, f.results[o as usize])?;
                }
            }
        }
        Ok(())
    }

    fn latency(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let b = &self.counters.buckets;
        let mut m = enc.encode_descriptor(
            "tcpeek_handshake_duration",
            "Established handshakes, first SYN to completing ACK",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (filter, d) in self.filters() {
            for (fam, f) in FAMILIES.iter().zip(&d.family) {
                let labels = [("filter", filter), ("family", fam)];
                histogram(&mut m.encode_family(&labels)?, &f.duration, b)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "tcpeek_handshake_phase_duration",
            "Established handshakes by phase: first SYN to the server's acknowledgement of it (syn_to_synack), that to the completing ACK (synack_to_ack)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (filter, d) in self.filters() {
            for (fam, f) in FAMILIES.iter().zip(&d.family) {
                for (phase, h) in [
                    ("syn_to_synack", &f.syn_to_synack),
                    ("synack_to_ack", &f.synack_to_ack),
                ] {
                    let labels = [("filter", filter), ("family", fam), ("phase", phase)];
                    histogram(&mut m.encode_family(&labels)?, h, b)?;
                }
            }
        }
        Ok(())
    }

    fn retransmissions(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut m = enc.encode_descriptor(
            "tcpeek_handshakes_retransmitted",
            "Established handshakes with at least one retransmitted SYN or SYN/ACK (the socket's dupsyn and dupsynack)",
            None,
            MetricType::Counter,
        )?;
        for (filter, d) in self.filters() {
            for (fam, f) in FAMILIES.iter().zip(&d.family) {
                for (segment, v) in ["syn", "synack"].iter().zip(f.retransmitted) {
                    let labels = [("filter", filter), ("family", fam), ("segment", segment)];
                    counter(&mut m.encode_family(&labels)?, v)?;
                }
            }
        }
        let mut m = enc.encode_descriptor(
            "tcpeek_handshakes_in_progress",
            "Handshakes being tracked, by filter",
            None,
            MetricType::Gauge,
        )?;
        for (filter, d) in self.filters() {
            m.encode_family(&[("filter", filter)])?
                .encode_gauge(&d.in_progress)?;
        }
        Ok(())
    }

    fn icmp(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut m = enc.encode_descriptor(
            "tcpeek_icmp_unreachable",
            "Handshakes ended by an ICMP (type 3) or ICMPv6 (type 1) destination unreachable, by code (with --icmp)",
            None,
            MetricType::Counter,
        )?;
        for (filter, d) in self.filters() {
            for (fi, (fam, ty, codes)) in [
                ("ipv4", "3", &ICMP_V4_CODES[..]),
                ("ipv6", "1", &ICMP_V6_CODES[..]),
            ]
            .into_iter()
            .enumerate()
            {
                for &(slot, code) in codes {
                    let labels = [
                        ("filter", filter),
                        ("family", fam),
                        ("type", ty),
                        ("code", code),
                    ];
                    counter(&mut m.encode_family(&labels)?, d.family[fi].icmp[slot])?;
                }
            }
        }
        Ok(())
    }

    fn itself(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let c = &self.counters;
        let a = &self.about;
        enc.encode_descriptor(
            "tcpeek_build",
            "tcpeek's version and capture backend",
            None,
            MetricType::Info,
        )?
        .encode_info(&[("version", a.version), ("backend", a.backend)])?;
        let iface = [("interface", a.interface.as_str())];
        counter(
            &mut enc
                .encode_descriptor(
                    "tcpeek_capture_packets",
                    "Packets the capture looked at",
                    None,
                    MetricType::Counter,
                )?
                .encode_family(&iface)?,
            c.capture.recv,
        )?;
        let reasons: &[(&str, u64)] = match a.backend {
            "ebpf" => &[
                ("ring_full", c.capture.drop),
                ("kernel_table_full", c.capture.ifdrop),
            ],
            "pcap" => &[("libpcap", c.capture.drop), ("ifdrop", c.capture.ifdrop)],
            _ => &[],
        };
        let mut m = enc.encode_descriptor(
            "tcpeek_capture_dropped",
            "What the capture lost, by reason: eBPF ring buffer full or in-kernel handshake table full; libpcap buffer or interface drops",
            None,
            MetricType::Counter,
        )?;
        for &(reason, v) in reasons {
            let labels = [("interface", a.interface.as_str()), ("reason", reason)];
            counter(&mut m.encode_family(&labels)?, v)?;
        }
        for (name, help, v) in [
            (
                "tcpeek_packets_malformed",
                "Frames that could not be decoded or failed the checksum check",
                c.capture.malformed,
            ),
            (
                "tcpeek_packets_truncated",
                "Frames cut short by the snapshot length whose TCP header was still decoded",
                c.capture.truncated,
            ),
            (
                "tcpeek_records_late",
                "Records that arrived later than the reordering window allows",
                c.engine.late,
            ),
            (
                "tcpeek_sessions_overflow",
                "Opening SYNs not tracked because the session table was full",
                c.engine.overflow,
            ),
            (
                "tcpeek_output_lines_dropped",
                "Handshake lines dropped because their reader was too slow",
                c.lines_dropped,
            ),
        ] {
            counter(
                &mut enc.encode_descriptor(name, help, None, MetricType::Counter)?,
                v,
            )?;
        }
        for (name, help, v) in [
            (
                "tcpeek_sessions_tracked",
                "Handshakes in progress in the session table",
                c.engine.pending,
            ),
            (
                "tcpeek_session_table_capacity",
                "Most handshakes the session table tracks at once (--max-sessions)",
                c.engine.capacity,
            ),
        ] {
            enc.encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&v)?;
        }
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        self.handshakes(&mut enc)?;
        self.latency(&mut enc)?;
        self.retransmissions(&mut enc)?;
        self.icmp(&mut enc)?;
        self.itself(&mut enc)
    }
}
