//! The metrics endpoint and its exposition, without privileges: what
//! `promtool` (Prometheus's own checker) says of it, whether a backfill
//! file loads, and how the endpoint answers good, bad and stuck clients.
//! promtool comes with Debian's `prometheus` package (scripts/setup.sh).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tcpeek::capture::decode::ChecksumMode;
use tcpeek::capture::file::FileCapture;
use tcpeek::daemon::{Aggregator, FileFeed};
use tcpeek::engine::{Engine, EngineConfig};
use tcpeek::filter::FilterSet;
use tcpeek::local::{Local, Prefix};
use tcpeek::metrics::http::{MetricsServer, MAX_CONNECTIONS};
use tcpeek::metrics::{encode, About, Format};
use tcpeek::output::SessionPrinter;
use tcpeek::stats::histogram::Buckets;
use tcpeek::stats::{Counters, SharedCounters};
use tcpeek_testkit::{wait_for, TempDir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// The README demo's counters: `mixed.pcap` seen from its server, with a
/// filter of its own, ICMP on.
fn mixed_counters() -> Counters {
    let local = Local::Prefixes(vec![
        Prefix::host("10.0.0.1".parse().unwrap()),
        Prefix::host("fd00::1".parse().unwrap()),
    ]);
    let mut agg = Aggregator::new(
        Engine::new(EngineConfig::new(60_000_000_000, 1000, true)),
        FilterSet::parse(&["web:RX@%:80:443"], local).unwrap(),
        SessionPrinter::new(true, false, Box::new(std::io::sink())),
    )
    .with_detail(Buckets::default());
    let mut cap = FileCapture::open(&fixture("mixed.pcap"), ChecksumMode::default()).unwrap();
    let mut feed = FileFeed::new();
    while let Some(f) = cap.next_frame().unwrap() {
        feed.frame(&mut agg, f.ts_ns, f.event);
    }
    feed.finish(&mut agg);
    agg.set_capture_stats(cap.stats());
    agg.counters().clone()
}

fn about() -> About {
    About {
        version: "0.0.0-test",
        ..About::new("pcap", "veth0")
    }
}

fn promtool() -> Command {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "promtool not found: it comes with Debian's prometheus package (scripts/setup.sh installs it)"
    );
    Command::new("promtool")
}

#[test]
fn the_exposition_passes_promtool_check_metrics() {
    let text = encode(mixed_counters(), &about(), Format::Prometheus);
    assert!(text.contains(
        "tcpeek_handshakes_total{filter=\"web\",family=\"ipv4\",result=\"established\"}"
    ));
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // promtool exits non-zero on a parse error or any lint problem
    // (naming, units, _total, ...), which it prints.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool:\n{said}\n{text}"
    );
}

#[test]
fn the_metrics_file_backfills_into_a_prometheus_tsdb() {
    let dir = TempDir::new("metrics-file");
    let file = dir.path("mixed.om");
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .args([
            "-q", "--icmp", "--local", "10.0.0.1", "--local", "fd00::1", "-r",
        ])
        .arg(fixture("mixed.pcap"))
        .arg("--metrics-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    // Stamped with the file's last packet time (mixed.pcap: 2026-01-01
    // 00:02:57.6 UTC), not the time of the run.
    for s in &samples {
        assert!(s.ends_with(" 1767225777.600"), "{s}");
    }
    let out = promtool()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.path("tsdb"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One block, every sample a series of its own.
    let block = said.lines().nth(1).expect("a block line");
    let cols: Vec<&str> = block.split_whitespace().collect();
    assert_eq!(cols[4], samples.len().to_string(), "samples: {block}");
    assert_eq!(cols[6], samples.len().to_string(), "series: {block}");
}

#[test]
fn a_port_in_use_is_an_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .args(["-q", "--metrics", &addr.to_string(), "-r"])
        .arg(fixture("success.pcap"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--metrics {addr}: cannot listen: ")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SUMMARY"),
        "it stops before reading: {stderr}"
    );
}

/// A metrics endpoint on a free loopback port serving `counters`.
fn serve(counters: Counters) -> SocketAddr {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    server
        .spawn(SharedCounters::new(counters), about())
        .unwrap();
    addr
}

/// Sends `request` as is and returns the whole reply (the server closes
/// after it: every request here says `Connection: close` or is refused).
fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> String {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"),
    )
}

#[test]
fn a_scrape_gets_the_format_it_asks_for() {
    let addr = serve(mixed_counters());
    let plain = get(addr, "/metrics", None);
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert!(
        plain.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{plain}"
    );
    assert!(plain.contains("# TYPE tcpeek_handshakes_total counter"));
    assert!(!plain.contains("# EOF"));
    // What Prometheus sends.
    let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = get(addr, "/metrics", Some(prom));
    assert!(
        om.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{om}"
    );
    assert!(om.contains("# TYPE tcpeek_handshakes counter") && om.ends_with("# EOF\n"));
    assert!(om.contains("tcpeek_build_info{version=\"0.0.0-test\",backend=\"pcap\"} 1"));
    // Refused explicitly: the plain format.
    let refused = get(
        addr,
        "/metrics",
        Some("application/openmetrics-text;q=0, text/plain"),
    );
    assert!(refused.contains("version=0.0.4"));
}

#[test]
fn bad_requests_get_a_4xx() {
    let addr = serve(Counters::new(["RX", "TX"]));
    assert!(get(addr, "/nothing", None).starts_with("HTTP/1.1 404"));
    let post = raw(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405") && post.contains("allow: GET, HEAD"),
        "{post}"
    );
    for junk in [
        "GARBAGE\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        "GET /metrics HTTP/9.9\r\n\r\n",
    ] {
        let r = raw(addr, junk);
        assert!(r.starts_with("HTTP/1.1 4"), "{junk:?}: {r:?}");
    }
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let r = raw(addr, &huge);
    assert!(
        r.starts_with("HTTP/1.1 4"),
        "oversized headers: {:?}",
        &r[..r.len().min(80)]
    );
    // Still serving.
    assert!(get(addr, "/metrics", None).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_scrape_is_served_within_a_second_with_a_thousand_idle_clients() {
    // Both ends of every connection are in this process.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 8192.min(hard) {
        setrlimit(Resource::RLIMIT_NOFILE, 8192.min(hard), hard).unwrap();
    }
    let counters = SharedCounters::new(Counters::new(["RX", "TX"]));
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    server.spawn(counters.clone(), about()).unwrap();
    // Far more clients that never send a request than it keeps: each new
    // one closes the one idle the longest.
    let stuck: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let start = Instant::now();
    let reply = get(addr, "/metrics", None);
    let took = start.elapsed();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(took < Duration::from_secs(1), "scraped in {took:?}");
    // Closed to make room, counted, and reported in the scrape itself.
    wait_for("the drops counted", || {
        (counters.server_stats().metrics_dropped >= (1000 - MAX_CONNECTIONS) as u64).then_some(())
    });
    let reply = get(addr, "/metrics", None);
    let line = reply
        .lines()
        .find(|l| l.starts_with("tcpeek_server_clients_dropped_total{server=\"metrics\"}"))
        .unwrap_or_else(|| panic!("{reply}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > (1000 - MAX_CONNECTIONS) as u64, "{line}");
    drop(stuck);
}
