//! Metrics for fleets: the counters as Prometheus metrics.
//!
//! - [`model`]: the metric set, as data, from a snapshot of the counters;
//! - [`exposition`]: its Prometheus text format or OpenMetrics
//!   (`prometheus-client` does the encoding);
//! - [`http`]: the `--metrics` endpoint, on a thread of its own so that
//!   no scrape can hold up the capture;
//! - `otlp`: `--otlp`, the same metrics pushed as OTLP (cargo feature
//!   `otlp`, on by default).

pub mod exposition;
pub mod http;
pub mod model;
#[cfg(feature = "otlp")]
pub mod otlp;

pub use exposition::{encode, Format};
pub use model::About;
