//! `--otlp`: what a collector receives, decoded with the official OTLP
//! protobuf definitions (opentelemetry-proto), and what a collector that
//! is down or refuses costs (a counted, rate-limited log line; the run's
//! results are untouched).

#![cfg(feature = "otlp")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::collector::{collector, int_value, metric, string_attr};
use hyper::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric as data, AggregationTemporality};
use prost::Message;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// `tcpeek --json` on mixed.pcap, pushing to `otlp` if given.
fn tcpeek_mixed(otlp: Option<&str>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .args([
            "-q", "--json", "--icmp", "--local", "10.0.0.1", "--local", "fd00::1",
        ])
        .args(otlp.map(|u| ["--otlp", u]).into_iter().flatten())
        .arg("-r")
        .arg(fixture("mixed.pcap"))
        .arg("web:RX@%:80:443")
        .output()
        .unwrap()
}

#[test]
fn a_file_run_pushes_its_final_counters() {
    let (addr, got) = collector(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        StatusCode::OK,
    );
    let out = tcpeek_mixed(Some(&format!("http://{addr}")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("push failed"), "{stderr}");
    let get: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();

    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "one push, at the end of the file");
    let (path, ct, body) = &got[0];
    assert_eq!(
        (path.as_str(), ct.as_str()),
        ("/v1/metrics", "application/x-protobuf")
    );
    let req =
        ExportMetricsServiceRequest::decode(body.as_slice()).expect("an OTLP metrics request");
    let rm = &req.resource_metrics[0];
    let res = &rm.resource.as_ref().unwrap().attributes;
    assert_eq!(string_attr(res, "service.name"), Some("tcpeek"));
    let metrics = &rm.scope_metrics[0].metrics;

    // The counters: cumulative, monotonic, and adding up to the socket's.
    let Some(data::Data::Sum(sum)) = &metric(metrics, "tcpeek_handshakes").data else {
        panic!("tcpeek_handshakes is not a sum");
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let total = |filter: &str, result: &str| -> i64 {
        sum.data_points
            .iter()
            .filter(|p| {
                string_attr(&p.attributes, "filter") == Some(filter)
                    && string_attr(&p.attributes, "result") == Some(result)
            })
            .map(int_value)
            .sum()
    };
    for (i, name) in ["RX", "TX", "web"].into_iter().enumerate() {
        let f = &get[i][name];
        let n = |v: &Value| v.as_i64().unwrap();
        assert_eq!(
            total(name, "established"),
            n(&f["success"]["total"]),
            "{name}"
        );
        assert_eq!(
            total(name, "reset_by_server") + total(name, "reset_by_client"),
            n(&f["failure"]["reject"]),
            "{name}"
        );
        assert_eq!(
            total(name, "timeout"),
            n(&f["failure"]["timeout"]),
            "{name}"
        );
        assert_eq!(
            total(name, "unreachable"),
            n(&f["failure"]["unreach"]),
            "{name}"
        );
    }
    assert!(total("RX", "established") > 0);
    // Stamped with the file's time (mixed.pcap: its first packet at
    // 2026-01-01 00:00:00.005 UTC, its last at 00:02:57.6), not the run's.
    for p in &sum.data_points {
        assert_eq!(p.start_time_unix_nano, 1_767_225_600_005_000_000);
        assert_eq!(p.time_unix_nano, 1_767_225_777_600_000_000);
    }

    // The latency histogram: explicit bounds, one more count than bounds.
    let m = metric(metrics, "tcpeek_handshake_duration");
    assert_eq!(m.unit, "s");
    let Some(data::Data::Histogram(h)) = &m.data else {
        panic!("not a histogram");
    };
    assert_eq!(
        h.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let rx: Vec<_> = h
        .data_points
        .iter()
        .filter(|p| string_attr(&p.attributes, "filter") == Some("RX"))
        .collect();
    assert_eq!(rx.len(), 2, "ipv4 and ipv6");
    let count: u64 = rx.iter().map(|p| p.count).sum();
    assert_eq!(count as i64, total("RX", "established"));
    for p in &rx {
        assert_eq!(p.explicit_bounds.len(), 20);
        assert_eq!(p.explicit_bounds[12], 0.9);
        assert_eq!(p.bucket_counts.len(), 21);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
    }
    let Some(data::Data::Gauge(g)) = &metric(metrics, "tcpeek_build_info").data else {
        panic!("build info is not a gauge");
    };
    assert_eq!(
        string_attr(&g.data_points[0].attributes, "backend"),
        Some("file")
    );
    assert!(metrics
        .iter()
        .any(|m| m.name == "tcpeek_otlp_push_failures"));
}

#[test]
fn a_collector_that_is_down_costs_one_log_line() {
    // A port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = tcpeek_mixed(Some(&format!("http://{addr}/v1/metrics")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("push failed").count(), 1, "{stderr}");
    assert!(stderr.contains("1 failed so far"), "{stderr}");
    assert!(stderr.contains("TCPEEK SUMMARY"), "{stderr}");
    // The results are those of a run without --otlp.
    let plain = tcpeek_mixed(None);
    assert_eq!(out.stdout, plain.stdout);
}

#[test]
fn a_collector_that_refuses_is_reported_with_its_status() {
    let (addr, got) = collector(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
    );
    let out = tcpeek_mixed(Some(&format!("http://{addr}")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("HTTP 503"), "{stderr}");
    assert_eq!(got.lock().unwrap().len(), 1);
}
