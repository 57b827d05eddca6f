//! The Prometheus exposition of the metric set ([`super::model`]),
//! encoded by prometheus-client from a [`Counters`] snapshot on each
//! scrape: a scrape never touches the live counters.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::model::{families, About, Kind, Value};
use crate::stats::Counters;

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

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        for f in families(&self.counters, &self.about) {
            let unit = f.seconds.then_some(&Unit::Seconds);
            let ty = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Info => MetricType::Info,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut m = enc.encode_descriptor(f.name, f.help, unit, ty)?;
            for p in &f.points {
                if f.kind == Kind::Info {
                    m.encode_info(&p.labels)?;
                    continue;
                }
                let mut s = m.encode_family(&p.labels)?;
                match (f.kind, p.value) {
                    (Kind::Counter, Value::Int(v)) => {
                        s.encode_counter::<NoLabelSet, _, u64>(&v, None)?
                    }
                    (Kind::Gauge, Value::Int(v)) => s.encode_gauge(&v)?,
                    (Kind::Histogram, Value::Histogram(h, b)) => {
                        let bounds = b.secs().iter().copied().chain([f64::INFINITY]);
                        let buckets: Vec<(f64, u64)> =
                            bounds.zip(h.counts().iter().copied()).collect();
                        s.encode_histogram::<NoLabelSet>(h.sum_secs(), h.count(), &buckets, None)?
                    }
                    _ => unreachable!("{}: a value of another kind", f.name),
                }
            }
        }
        Ok(())
    }
}
