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

/// Runs the future `task` makes on a thread named `name` with a runtime of
/// its own, until the process ends: what the metrics outputs run on, so
/// that they never share a thread with the capture.
pub(crate) fn spawn_thread<F>(
    name: &str,
    task: impl FnOnce() -> F + Send + 'static,
) -> Result<(), http::MetricsError>
where
    F: std::future::Future<Output = ()>,
{
    let what = format!("--{name}");
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(task()),
                Err(e) => log::error!("{what}: cannot start its runtime: {e}"),
            }
        })
        .map(drop)
        .map_err(http::MetricsError::Thread)
}
