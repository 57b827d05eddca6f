//! Reading a capture file: every frame, relevant or not, through the file
//! clock ([`FileClock`]) to the aggregator, synchronously.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use tcpeek_common::Event;

use anyhow::Context;

use super::{final_output, session_dest, to_stderr, Aggregator};
use crate::capture::clock::FileClock;
use crate::capture::file::FileCapture;
use crate::cli::Config;
use crate::metrics::http::MetricsServer;
use crate::metrics::{self, About, Format};
use crate::output::queue::Dest;
use crate::stats::SharedCounters;

/// While a file is read with `--metrics`, the counters are published for
/// scrapes every this many frames.
const PUBLISH_EVERY: u64 = 1 << 16;

/// Feeds a capture file's frames, relevant or not, to an [`Aggregator`] at
/// the time [`FileClock`] settles on for each: every frame's stamp is a
/// sample of the file's clock.
#[derive(Debug, Default)]
pub struct FileFeed {
    clock: FileClock,
}

impl FileFeed {
    pub fn new() -> FileFeed {
        FileFeed::default()
    }

    /// One frame stamped `ts_ns`, with its event if it has one.
    pub fn frame(&mut self, agg: &mut Aggregator, ts_ns: u64, event: Option<Event>) {
        self.clock.push(ts_ns, event, &mut |t| agg.timed(t));
    }

    /// End of the file: everything held goes to the aggregator, and time
    /// runs on to the last believed stamp. Returns it.
    pub fn finish(&mut self, agg: &mut Aggregator) -> Option<u64> {
        self.clock.finish(&mut |t| agg.timed(t));
        agg.flush_input();
        if let Some(now) = self.clock.now() {
            agg.advance(now, 0);
        }
        agg.set_clock_overruled(self.clock.overruled());
        self.clock.now()
    }
}

pub(super) fn run(cfg: &Config, path: &Path) -> anyhow::Result<ExitCode> {
    let mut cap = FileCapture::open(path, cfg.checksum)?;
    to_stderr(format_args!("{}\n", cap.banner()));
    let out: Box<dyn Write + Send> = match session_dest(cfg) {
        Dest::Stdout => Box::new(io::stdout()),
        Dest::Stderr => Box::new(io::stderr()),
    };
    let mut agg = super::aggregator(cfg, out);
    let mut about = About::new("file", path.display().to_string());
    let final_push = super::start_otlp(cfg, &mut about, None, super::wall_ns())?;
    let shared = match cfg.metrics {
        Some(addr) => {
            let shared = SharedCounters::new(agg.counters().clone());
            let server = MetricsServer::bind(addr)?;
            super::announce_metrics(&server);
            server.spawn(shared.clone(), about.clone())?;
            Some(shared)
        }
        None => None,
    };
    agg.start_output();
    let mut failure = None;
    let mut feed = FileFeed::new();
    let mut frames = 0u64;
    loop {
        frames += 1;
        if let Some(shared) = shared
            .as_ref()
            .filter(|_| frames.is_multiple_of(PUBLISH_EVERY))
        {
            agg.set_capture_stats(cap.stats());
            shared.publish(agg.counters());
        }
        match cap.next_frame() {
            Ok(Some(frame)) => feed.frame(&mut agg, frame.ts_ns, frame.event),
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        if agg.output_error().is_some() {
            break;
        }
    }
    // Packet time went on to the last frame, relevant or not: handshakes
    // idle for the timeout by then have timed out.
    let end = feed.finish(&mut agg);
    agg.set_capture_stats(cap.stats());
    let (from, _) = agg.packet_span().unwrap_or((0, 0));
    let to = end.unwrap_or(from);
    let (summary, json) = final_output(&mut agg, cfg, (from, to), "pcap", 0);
    if let Some(shared) = &shared {
        shared.publish(agg.counters());
    }
    if let Some(p) = final_push {
        // Cumulative since the first packet, at the last one: the file's
        // own time, as the summary and --metrics-file give it.
        p.push(agg.counters(), (from, to));
    }
    if let Some(out) = &cfg.metrics_file {
        let text = metrics::encode(agg.counters().clone(), &about, Format::OpenMetrics);
        std::fs::write(out, metrics::exposition::with_timestamp(&text, to))
            .with_context(|| format!("--metrics-file {}", out.display()))?;
    }
    to_stderr(format_args!("{summary}"));
    if let Some(json) = json {
        let mut out = io::stdout().lock();
        // A closed stdout is not an error at exit.
        let _ = out.write_all(json.as_bytes()).and_then(|()| out.flush());
    }
    match failure {
        // Everything before the damage was counted and reported above. The
        // error names the file already (FileError::TruncatedFile,
        // ReadFile); more context would print the path twice. The status
        // is a failure, as tcpdump -r's: the file did not hold what it
        // claimed, and a script must not take partial counts for whole ones.
        Some(e) => Err(anyhow::Error::new(e)),
        None => Ok(ExitCode::SUCCESS),
    }
}
