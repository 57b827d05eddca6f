//! Metrics for fleets: the counters as Prometheus metrics.
//!
//! - [`exposition`]: the metric set, encoded from a snapshot of the
//!   counters (`prometheus-client` does the encoding, in the Prometheus
//!   text format or OpenMetrics);
//! - [`http`]: the `--metrics` endpoint, on a thread of its own so that
//!   no scrape can hold up the capture.

pub mod exposition;
pub mod http;

pub use exposition::{encode, About, Format};
