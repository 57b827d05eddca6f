//! Wires the stages together: a capture feeds events to the [`Aggregator`]
//! (engine, filters, counters, printing), which publishes the counters for
//! the socket server.
//!
//! - [`aggregator`]: the pipeline stage, no I/O of its own;
//! - [`file`]: reading a capture file, with its timestamps as the clock;
//! - [`live`]: live capture (libpcap on its own thread, or the eBPF ring
//!   buffer), the socket, signals. If the aggregator falls behind, the
//!   capture thread blocks and the kernel drops packets, which the
//!   capture counts and the summary reports.

mod aggregator;
mod file;
mod live;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::{Config, Source};
use crate::output::queue::Dest;
use crate::output::{format_summary, SessionPrinter, SummaryInfo};

pub use aggregator::{Aggregator, Reloaded};
pub use file::FileFeed;

/// Runs tcpeek with a validated configuration.
pub fn run(cfg: Config) -> anyhow::Result<ExitCode> {
    if cfg.check {
        return check(&cfg);
    }
    if let Some(note) = &cfg.local_note {
        log::info!("{note}");
    }
    match cfg.source.clone() {
        Source::File(path) => file::run(&cfg, &path),
        Source::Live { interfaces } => live::run(&cfg, &interfaces),
    }
}

/// `--check`: what the command line parsed to, and what it names that
/// must exist and that [`Config::from_args`] does not open (the file,
/// readable as a capture; the metrics port, free), without capturing.
fn check(cfg: &Config) -> anyhow::Result<ExitCode> {
    let source = match &cfg.source {
        Source::File(path) => {
            crate::capture::file::FileCapture::open(path, cfg.checksum)?;
            format!("file {}", path.display())
        }
        // Config::from_args checked that it exists.
        Source::Live { interfaces } => {
            let s = if interfaces.len() > 1 { "s" } else { "" };
            format!("interface{s} {}", interfaces.join(", "))
        }
    };
    if let Some(addr) = cfg.metrics {
        drop(crate::metrics::http::MetricsServer::bind(addr)?);
    }
    let names: Vec<&str> = cfg.filters.names().collect();
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "tcpeek: configuration OK: {source}, backend {:?}, filters {}",
        cfg.backend,
        names.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn printer(cfg: &Config, out: Box<dyn Write + Send>) -> SessionPrinter {
    SessionPrinter::new(cfg.quiet, cfg.json, out)
}

/// The run's aggregator, printing to `out`; with the metrics' detail
/// when a metrics output wants it.
pub(crate) fn aggregator(cfg: &Config, out: Box<dyn Write + Send>) -> Aggregator {
    let mut agg = Aggregator::new(
        crate::engine::Engine::new(cfg.engine),
        cfg.filters.clone(),
        printer(cfg, out),
    );
    agg.config_loaded(true, wall_ns() / 1_000_000_000);
    if cfg.metrics.is_some() || cfg.metrics_file.is_some() || cfg.otlp.is_some() {
        agg.with_detail(cfg.buckets.clone())
    } else {
        agg
    }
}

/// Where per-handshake output goes: stdout with `--json`, else stderr.
pub(crate) fn session_dest(cfg: &Config) -> Dest {
    if cfg.json {
        Dest::Stdout
    } else {
        Dest::Stderr
    }
}

/// Writes to stderr, ignoring failure. `eprint!` panics when stderr is gone
/// (`tcpeek -r x.pcap 2>&1 | head -1` closes it), and a closed output is a
/// normal way for a run to end; there is nowhere left to report it anyway.
pub(crate) fn to_stderr(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// The end-of-run OTLP push (`--otlp`).
pub(crate) struct FinalPush {
    #[cfg(feature = "otlp")]
    pusher: crate::metrics::otlp::Pusher,
}

impl FinalPush {
    /// Pushes the final counters, counted since `span.0` (a file's first
    /// packet; live: the start), at `span.1`, waiting a few seconds at
    /// most.
    pub(crate) fn push(self, counters: &crate::stats::Counters, span: (u64, u64)) {
        #[cfg(feature = "otlp")]
        {
            let mut pusher = self.pusher.since(span.0);
            crate::metrics::otlp::push_once(&mut pusher, counters, span.1);
        }
        #[cfg(not(feature = "otlp"))]
        let _ = (self, counters, span);
    }
}

/// `--otlp`: makes the metrics count failed pushes, starts pushing
/// `periodic`'s snapshots every interval (live capture), and returns the
/// end-of-run push. `None` without `--otlp`.
pub(crate) fn start_otlp(
    cfg: &Config,
    about: &mut crate::metrics::About,
    periodic: Option<&crate::stats::SharedCounters>,
    start_ns: u64,
) -> anyhow::Result<Option<FinalPush>> {
    #[cfg(feature = "otlp")]
    if let Some((target, interval)) = &cfg.otlp {
        use crate::metrics::otlp::Pusher;
        about.otlp_failures = Some(Default::default());
        if let Some(shared) = periodic {
            Pusher::new(target.clone(), about.clone(), start_ns)
                .spawn(shared.clone(), *interval)?;
        }
        to_stderr(format_args!(
            "pushing OTLP metrics to {target} every {}s\n",
            interval.as_secs()
        ));
        return Ok(Some(FinalPush {
            pusher: Pusher::new(target.clone(), about.clone(), start_ns),
        }));
    }
    let _ = (cfg, about, periodic, start_ns);
    Ok(None)
}

/// Says where the metrics are served (the port the kernel chose for
/// `--metrics ADDR:0`).
pub(crate) fn announce_metrics(server: &crate::metrics::http::MetricsServer) {
    if let Ok(addr) = server.local_addr() {
        to_stderr(format_args!("metrics on http://{addr}/metrics\n"));
    }
}

/// What is printed at exit: the summary (for stderr) and, with `--json`,
/// the final GET array (for stdout).
pub(crate) fn final_output(
    agg: &mut Aggregator,
    cfg: &Config,
    span: (u64, u64),
    capture: &str,
    dropped_lines: u64,
) -> (String, Option<String>) {
    agg.flush_input();
    agg.flush();
    let counters = agg.counters();
    let summary = format_summary(
        counters,
        &SummaryInfo {
            from_ns: span.0,
            to_ns: span.1,
            icmp: cfg.engine.icmp,
            capture,
            dropped_lines,
        },
    );
    let json = cfg.json.then(|| format!("{}\n", counters.to_get_json()));
    (summary, json)
}
