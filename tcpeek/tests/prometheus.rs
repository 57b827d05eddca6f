//! A real Prometheus (Debian's `prometheus` package) scrapes live tcpeek
//! daemons, one per backend, watching real kernel TCP between two network
//! namespaces with known outcomes; through Prometheus's query API the test
//! checks the series, the counters and the histogram counts against each
//! daemon's socket `GET`. Prometheus runs inside the server's namespace,
//! on its loopback, with a generated configuration and a temporary data
//! directory. The daemons also push OTLP every second to a test collector
//! there. Run as root (CI does).

#![cfg(feature = "otlp")]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric as data;
use prost::Message;
use serde_json::Value;

const CONNECT: Duration = Duration::from_secs(20);

/// A Prometheus server, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Prometheus {
    fn start(ns: &Netns, port: u16, targets: &[SocketAddr]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: tcpeek\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.path("prometheus.yml"), config).unwrap();
        let child = ns
            .command("prometheus".as_ref())
            .arg(format!(
                "--config.file={}",
                dir.path("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (scripts/setup.sh)");
        let p = Prometheus {
            child,
            port,
            _dir: dir,
        };
        wait_for("Prometheus to be ready", || {
            p.get(ns, "/-/ready", &[]).ok().map(drop)
        });
        p
    }

    fn get(&self, ns: &Netns, path: &str, query: &[(&str, &str)]) -> Result<String, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        ns.enter(|| {
            let mut req = ureq::get(&url);
            for (k, v) in query {
                req = req.query(*k, *v);
            }
            req.call()
                .and_then(|mut r| r.body_mut().read_to_string())
                .map_err(|e| e.to_string())
        })
    }

    /// An instant query's result vector.
    fn query(&self, ns: &Netns, promql: &str) -> Vec<Value> {
        let body = self
            .get(ns, "/api/v1/query", &[("query", promql)])
            .unwrap_or_else(|e| panic!("{promql}: {e}"));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{promql}: {body}");
        v["data"]["result"].as_array().unwrap().clone()
    }

    /// `promql`'s value for each series, by the value of `label`.
    fn by(&self, ns: &Netns, promql: &str, label: &str) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .query(ns, promql)
            .iter()
            .map(|s| {
                let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
                (
                    s["metric"][label].as_str().unwrap_or("").to_string(),
                    v as u64,
                )
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The socket's counters of filter `name` as (result, count), as the
/// metrics name results.
fn socket_results(get: &Value, name: &str) -> Vec<(String, u64)> {
    let f = filter(get, name);
    let n = |v: &Value| v.as_u64().unwrap();
    vec![
        ("established".into(), n(&f["success"]["total"])),
        ("reset".into(), n(&f["failure"]["reject"])),
        ("timeout".into(), n(&f["failure"]["timeout"])),
        ("unreachable".into(), n(&f["failure"]["unreach"])),
    ]
}

#[test]
fn prometheus_scrapes_what_the_socket_counts() {
    require_root!();
    let pair = Pair::new();
    let _l4 = pair.server.listen(SocketAddr::new(pair.server4, 8080));
    let _l6 = pair.server.listen(SocketAddr::new(pair.server6, 8080));
    // 7003: SYNs dropped (timeout); 7004: refused with ICMP host
    // unreachable (3/1), which makes the connecting client give up.
    pair.server.nft(
        "table inet t { chain in { type filter hook input priority 0; \
         tcp dport 7003 drop; \
         tcp dport 7004 reject with icmp type host-unreachable; } }",
    );
    pair.client.sysctl("net.ipv4.tcp_syn_retries", "1");
    // An OTLP collector on the server namespace's loopback.
    let otlp_listener = pair
        .server
        .enter(|| std::net::TcpListener::bind("127.0.0.1:4318"))
        .unwrap();
    let (otlp_addr, pushes) = collector::collector(otlp_listener, hyper::StatusCode::OK);
    let otlp_url = format!("http://{otlp_addr}");
    let dir = TempDir::new("prometheus-daemons");
    let daemons: Vec<(Daemon, SocketAddr)> = backends()
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let addr: SocketAddr = format!("127.0.0.1:{}", 9381 + i).parse().unwrap();
            let metrics = addr.to_string();
            let d = Daemon::start(
                &pair.server,
                b,
                &dir.path(&format!("{b}.sock")),
                &[
                    "-i",
                    &pair.server_if,
                    "-t",
                    "3",
                    "--icmp",
                    "--metrics",
                    &metrics,
                    "--otlp",
                    &otlp_url,
                    "--otlp-interval",
                    "1",
                    "web:RX@%:8080",
                ],
            );
            assert!(d
                .stderr()
                .contains(&format!("metrics on http://{addr}/metrics")));
            (d, addr)
        })
        .collect();
    let targets: Vec<SocketAddr> = daemons.iter().map(|(_, a)| *a).collect();
    let prom = Prometheus::start(&pair.server, 9390, &targets);

    for ip in [pair.server4, pair.server4, pair.server4, pair.server6] {
        pair.client
            .connect(SocketAddr::new(ip, 8080), CONNECT)
            .expect("connect");
    }
    for _ in 0..2 {
        pair.client
            .connect(SocketAddr::new(pair.server4, 8081), CONNECT)
            .expect_err("nothing listens on 8081");
    }
    pair.client
        .connect(SocketAddr::new(pair.server4, 7003), CONNECT)
        .expect_err("SYNs are dropped");
    pair.client
        .connect(SocketAddr::new(pair.server4, 7004), CONNECT)
        .expect_err("host unreachable");
    for (d, _) in &daemons {
        d.wait_sessions(8);
    }

    for (d, addr) in &daemons {
        let b = &d.backend;
        // Published after the batch whose lines were printed.
        let get: Value = wait_for(&format!("{b}: the socket to count 8"), || {
            let v: Value = serde_json::from_str(&request(&d.socket, "GET\r\n")).ok()?;
            let rx = filter(&v, "RX");
            let done = rx["success"]["total"].as_u64()? + rx["failure"]["total"].as_u64()?;
            (done == 8).then_some(v)
        });
        let inst = format!("instance=\"{addr}\"");
        for name in ["RX", "web"] {
            let want = socket_results(&get, name);
            let promql =
                format!("sum by (result) (tcpeek_handshakes_total{{{inst},filter=\"{name}\"}})");
            let mut want_sorted = want.clone();
            want_sorted.sort();
            let got = wait_for(
                &format!("{b}: Prometheus to scrape {name}'s final counts"),
                || {
                    // Resets folded together, as the socket counts them.
                    let mut got: Vec<(String, u64)> = Vec::new();
                    for (result, v) in prom.by(&pair.server, &promql, "result") {
                        let result = if result.starts_with("reset_by_") {
                            "reset".to_string()
                        } else {
                            result
                        };
                        match got.iter_mut().find(|(r, _)| *r == result) {
                            Some((_, n)) => *n += v,
                            None => got.push((result, v)),
                        }
                    }
                    got.sort();
                    (got == want_sorted).then_some(got)
                },
            );
            eprintln!("{b} {name}: {got:?}");
            let established = want[0].1;
            let h = prom.by(
                &pair.server,
                &format!(
                    "sum(tcpeek_handshake_duration_seconds_count{{{inst},filter=\"{name}\"}})"
                ),
                "",
            );
            assert_eq!(
                h,
                [(String::new(), established)],
                "{b} {name}: histogram count"
            );
            let inf = prom.by(
                &pair.server,
                &format!("sum(tcpeek_handshake_duration_seconds_bucket{{{inst},filter=\"{name}\",le=\"+Inf\"}})"),
                "",
            );
            assert_eq!(inf, h, "{b} {name}: +Inf bucket");
            let phases = prom.by(
                &pair.server,
                &format!("sum by (phase) (tcpeek_handshake_phase_duration_seconds_count{{{inst},filter=\"{name}\"}})"),
                "phase",
            );
            assert_eq!(
                phases,
                [
                    ("syn_to_synack".into(), established),
                    ("synack_to_ack".into(), established)
                ],
                "{b} {name}"
            );
            let v6 = prom.by(
                &pair.server,
                &format!("tcpeek_handshakes_total{{{inst},filter=\"{name}\",family=\"ipv6\",result=\"established\"}}"),
                "family",
            );
            assert_eq!(v6, [("ipv6".into(), 1)], "{b} {name}");
        }
        // The expected outcomes, as the socket and Prometheus both say.
        assert_eq!(
            socket_results(&get, "RX"),
            [
                ("established".to_string(), 4),
                ("reset".to_string(), 2),
                ("timeout".to_string(), 1),
                ("unreachable".to_string(), 1)
            ],
            "{b}"
        );
        let codes = prom.by(
            &pair.server,
            &format!("tcpeek_icmp_unreachable_total{{{inst},filter=\"RX\"}} > 0"),
            "code",
        );
        assert_eq!(codes, [("1".into(), 1)], "{b}: host unreachable");
        let resets = prom.by(
            &pair.server,
            &format!("tcpeek_handshakes_total{{{inst},filter=\"RX\",result=~\"reset.*\"}} > 0"),
            "result",
        );
        assert_eq!(resets, [("reset_by_server".into(), 2)], "{b}");
        let info = prom.by(
            &pair.server,
            &format!("tcpeek_build_info{{{inst}}}"),
            "backend",
        );
        assert_eq!(info, [(b.clone(), 1)], "{b}");
        let gauges = prom.by(
            &pair.server,
            &format!("tcpeek_handshakes_in_progress{{{inst}}}"),
            "filter",
        );
        assert_eq!(
            gauges,
            [("RX".into(), 0), ("TX".into(), 0), ("web".into(), 0)],
            "{b}"
        );
        // Every combination exists from the start, at zero or not.
        let series = prom.query(&pair.server, &format!("tcpeek_handshakes_total{{{inst}}}"));
        assert_eq!(series.len(), 3 * 2 * 5, "{b}: filters x families x results");
    }
    drop(prom);
    // Each daemon also pushed OTLP every second: cumulative series from
    // one start time, which reach the socket's counts.
    for (d, _) in &daemons {
        let b = &d.backend;
        let get: Value = serde_json::from_str(&request(&d.socket, "GET\r\n")).unwrap();
        let want = filter(&get, "RX")["success"]["total"].as_i64().unwrap();
        let starts = wait_for(&format!("{b}: an OTLP push with the final counts"), || {
            let got = pushes.lock().unwrap();
            let mut starts = Vec::new();
            let mut reached = false;
            for (_, _, body) in got.iter() {
                let req = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
                let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
                let Some(data::Data::Gauge(info)) =
                    &collector::metric(metrics, "tcpeek_build_info").data
                else {
                    panic!("build info is not a gauge")
                };
                if collector::string_attr(&info.data_points[0].attributes, "backend") != Some(b) {
                    continue;
                }
                let Some(data::Data::Sum(sum)) =
                    &collector::metric(metrics, "tcpeek_handshakes").data
                else {
                    panic!("tcpeek_handshakes is not a sum")
                };
                let established: i64 = sum
                    .data_points
                    .iter()
                    .filter(|p| {
                        collector::string_attr(&p.attributes, "filter") == Some("RX")
                            && collector::string_attr(&p.attributes, "result")
                                == Some("established")
                    })
                    .map(collector::int_value)
                    .sum();
                starts.push(sum.data_points[0].start_time_unix_nano);
                reached |= established == want;
            }
            (reached && starts.len() >= 2).then_some(starts)
        });
        assert!(
            starts.windows(2).all(|w| w[0] == w[1]),
            "{b}: one start time: {starts:?}"
        );
    }
    for (d, _) in daemons {
        let e = d.stop();
        assert!(e.status.success(), "{}", e.stderr);
    }
}
