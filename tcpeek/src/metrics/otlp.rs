//! `--otlp URL`: the metric set ([`super::model`]) pushed as OTLP over
//! HTTP with protobuf bodies, cumulative, every `--otlp-interval`, and once
//! more at the end of the run.
//!
//! The messages are opentelemetry-proto's (the OpenTelemetry project's
//! generated types for the official definitions). The OpenTelemetry SDK's
//! instruments do not fit: they aggregate what they are given, while
//! tcpeek's histograms are counted already; handing the SDK each duration
//! from the aggregator would cost far more than counting it. Pushing runs
//! on a thread and a runtime of its own: a collector that is slow or down
//! costs the capture nothing; each failed push is counted
//! (`tcpeek_otlp_push_failures_total`) and logged at most once a minute.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::http::MetricsError;
use super::model::{families, About, Kind, Value};
use crate::stats::{Counters, SharedCounters};

/// Where pushes go: an `http://HOST[:PORT][/PATH]` URL; the path defaults
/// to OTLP's `/v1/metrics`, the port to 80.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    url: String,
    host: String,
    port: u16,
    path: String,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let uri: Uri = s.parse().map_err(|e| format!("'{s}' is not a URL ({e})"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "'{s}': https is not supported; push to a collector or agent over http (e.g. http://127.0.0.1:4318)"
                ))
            }
            _ => return Err(format!("'{s}' is not an http:// URL")),
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("'{s}' has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => "/v1/metrics".to_string(),
            Some(p) => p.to_string(),
        };
        Ok(Target {
            url: s.to_string(),
            port: uri.port_u16().unwrap_or(80),
            host,
            path,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

impl Target {
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Longest a push may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed pushes are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The push of `counters`: cumulative since `start_ns`, at `now_ns`.
pub fn request(
    counters: &Counters,
    about: &About,
    start_ns: u64,
    now_ns: u64,
) -> ExportMetricsServiceRequest {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let mut metrics = Vec::new();
    for f in families(counters, about) {
        let attrs = |labels: &[(&str, &str)]| -> Vec<KeyValue> {
            labels.iter().map(|(k, v)| attr(k, v)).collect()
        };
        let number = |labels: &[(&str, &str)], v: u64| NumberDataPoint {
            attributes: attrs(labels),
            start_time_unix_nano: start_ns,
            time_unix_nano: now_ns,
            // OTLP integers are signed; a count never reaches 2^63.
            value: Some(number_data_point::Value::AsInt(
                v.min(i64::MAX as u64) as i64
            )),
            ..Default::default()
        };
        // A counter's or gauge's points.
        let numbers = || -> Vec<NumberDataPoint> {
            f.points
                .iter()
                .map(|p| match p.value {
                    Value::Int(v) => number(&p.labels, v),
                    Value::Histogram(..) => unreachable!("{}: a histogram", f.name),
                })
                .collect()
        };
        let (name, data) = match f.kind {
            Kind::Counter => (
                f.name.to_string(),
                metric::Data::Sum(Sum {
                    data_points: numbers(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
            ),
            Kind::Gauge | Kind::Info => (
                if f.kind == Kind::Info {
                    format!("{}_info", f.name)
                } else {
                    f.name.to_string()
                },
                metric::Data::Gauge(Gauge {
                    data_points: numbers(),
                }),
            ),
            Kind::Histogram => (
                f.name.to_string(),
                metric::Data::Histogram(Histogram {
                    data_points: f
                        .points
                        .iter()
                        .map(|p| {
                            let Value::Histogram(h, b) = p.value else {
                                unreachable!("{}: not a histogram", f.name)
                            };
                            HistogramDataPoint {
                                attributes: attrs(&p.labels),
                                start_time_unix_nano: start_ns,
                                time_unix_nano: now_ns,
                                count: h.count(),
                                sum: Some(h.sum_secs()),
                                bucket_counts: h.counts().to_vec(),
                                explicit_bounds: b.secs().to_vec(),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            ),
        };
        metrics.push(Metric {
            name,
            description: f.help.to_string(),
            unit: if f.seconds { "s" } else { "" }.to_string(),
            data: Some(data),
            ..Default::default()
        });
    }
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "tcpeek"),
                    attr("service.version", about.version),
                    attr("host.name", &host),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "tcpeek".to_string(),
                    version: about.version.to_string(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Pushes what `source` gives, every `interval` and when `done` resolves.
pub struct Pusher {
    target: Target,
    about: About,
    start_ns: u64,
    failures: Arc<AtomicU64>,
    logged: Option<Instant>,
}

impl Pusher {
    /// `about.otlp_failures` counts the failed pushes.
    pub fn new(target: Target, about: About, start_ns: u64) -> Pusher {
        let failures = about.otlp_failures.clone().unwrap_or_default();
        Pusher {
            target,
            about,
            start_ns,
            failures,
            logged: None,
        }
    }

    /// Counted since `start_ns`.
    pub fn since(mut self, start_ns: u64) -> Pusher {
        self.start_ns = start_ns;
        self
    }

    /// One push of `counters`; a failure is counted and logged (at most
    /// once a minute), never returned.
    pub async fn push(&mut self, counters: &Counters, now_ns: u64) -> bool {
        let body = request(counters, &self.about, self.start_ns, now_ns).encode_to_vec();
        let r = tokio::time::timeout(PUSH_TIMEOUT, post(&self.target, body)).await;
        let err = match r {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {PUSH_TIMEOUT:?}"),
        };
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.logged = Some(Instant::now());
            log::warn!(
                "--otlp {}: push failed: {err} ({n} failed so far; logged at most once a minute)",
                self.target.url
            );
        }
        false
    }

    /// Pushes `counters`' snapshots every `interval` on a thread of its
    /// own, until the process ends.
    pub fn spawn(
        mut self,
        counters: SharedCounters,
        interval: Duration,
    ) -> Result<(), MetricsError> {
        super::spawn_thread("otlp", move || async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                self.push(&counters.snapshot(), crate::daemon::wall_ns())
                    .await;
            }
        })
    }
}

/// Pushes `counters` once, waiting at most [`PUSH_TIMEOUT`] (the end of
/// a run): on a thread and a runtime of its own, so that it may be called
/// from anywhere, a live run's runtime included.
pub fn push_once(pusher: &mut Pusher, counters: &Counters, now_ns: u64) -> bool {
    thread::scope(|s| {
        s.spawn(|| {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(pusher.push(counters, now_ns)),
                Err(e) => {
                    log::error!("--otlp: cannot start its runtime: {e}");
                    false
                }
            }
        })
        .join()
        .unwrap_or(false)
    })
}

async fn post(target: &Target, body: Vec<u8>) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect to {}: {e}", target.authority()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let req = Request::post(target.path.as_str())
        .header(HOST, target.authority())
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    // Read the reply to its end (a partial-success message, or why not).
    let reply = resp.into_body().collect().await.map(|b| b.to_bytes());
    drop(sender);
    let _ = conn.await;
    if !status.is_success() {
        let reply = reply.unwrap_or_default();
        let text = String::from_utf8_lossy(&reply[..reply.len().min(200)]).into_owned();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(())
}
