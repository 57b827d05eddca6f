//! Wires the stages together: a capture feeds events to the [`Aggregator`]
//! (engine, filters, counters, printing), which publishes the counters for
//! the socket server.
//!
//! Live capture runs libpcap on its own thread (its reads block) and hands
//! batches of events to the aggregator task over a bounded channel: if the
//! aggregator falls behind, the capture thread blocks and the kernel drops
//! packets, which libpcap counts and the summary reports. Capture files are
//! read synchronously, with time taken from the packets.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tcpeek_common::Event;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::capture::clock::{FileClock, Timed};
use crate::capture::decode::ChecksumMode;
use crate::capture::ebpf::{EbpfCapture, EbpfOptions};
use crate::capture::file::FileCapture;
use crate::capture::pcap::{LiveOptions, Next, PcapCapture, DEFAULT_SNAPLEN};
use crate::capture::CaptureStats;
use crate::cli::{Backend, Config, Source};
use crate::engine::reorder::{self, Reorder};
use crate::engine::{Engine, Finished};
use crate::filter::FilterSet;
use crate::output::queue::{Dest, OutputQueue};
use crate::output::{format_summary, SessionPrinter, SummaryInfo};
use crate::socket::{drop_privileges, lookup_user, prepare_dir, SocketServer};
use crate::stats::{Counters, SharedCounters};

/// Engine, filters and counters, and the printing of finished handshakes.
///
/// Records pass the reordering window ([`Reorder`]) first, so the engine
/// sees them in time order; time is the records' own (the caller decides
/// which timestamps to believe: [`FileClock`] for files, the host's clock
/// live).
pub struct Aggregator {
    engine: Engine,
    filters: FilterSet,
    counters: Counters,
    finished: Vec<Finished>,
    printer: SessionPrinter,
    names: Vec<String>,
    matched: Vec<usize>,
    reorder: Reorder,
    /// Latest record time seen.
    now_ns: u64,
    first_ns: Option<u64>,
    output_error: Option<io::Error>,
}

impl Aggregator {
    pub fn new(engine: Engine, filters: FilterSet, printer: SessionPrinter) -> Aggregator {
        let names: Vec<String> = filters.names().map(str::to_string).collect();
        Aggregator {
            engine,
            counters: Counters::new(names.iter().cloned()),
            filters,
            finished: Vec::new(),
            printer,
            names,
            matched: Vec::new(),
            reorder: Reorder::new(),
            now_ns: 0,
            first_ns: None,
            output_error: None,
        }
    }

    /// Takes one record. It reaches the engine once the reordering window
    /// has passed it; handshakes idle past the timeout by then end first.
    pub fn event(&mut self, ev: &Event) {
        self.first_ns.get_or_insert(ev.ts_ns);
        self.now_ns = self.now_ns.max(ev.ts_ns);
        let (engine, filters, finished) = (&mut self.engine, &self.filters, &mut self.finished);
        self.reorder.push(*ev, &mut |e: &Event| {
            engine.expire(e.ts_ns, finished);
            engine.process(e, |c| filters.admit(c), finished);
        });
        if !self.finished.is_empty() {
            self.report();
        }
    }

    /// Time has reached `now_ns` on the records' clock without a record
    /// (an irrelevant frame of a file, or live capture's clock): releases
    /// what the reordering window held, and ends handshakes whose deadline
    /// passed before `now_ns - expire_margin_ns` (live capture leaves
    /// records in flight from the kernel that margin).
    pub fn advance(&mut self, now_ns: u64, expire_margin_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let (engine, filters, finished) = (&mut self.engine, &self.filters, &mut self.finished);
        self.reorder.advance(now_ns, &mut |e: &Event| {
            engine.expire(e.ts_ns, finished);
            engine.process(e, |c| filters.admit(c), finished);
        });
        let until = now_ns
            .saturating_sub(reorder::WINDOW_NS)
            .min(now_ns.saturating_sub(expire_margin_ns));
        self.engine.expire(until, &mut self.finished);
        self.report();
    }

    /// A frame of a capture file, at the time [`FileClock`] settled on.
    pub fn timed(&mut self, t: Timed) {
        match t.event {
            Some(ev) => self.event(&ev),
            None => self.advance(t.ts_ns, 0),
        }
    }

    /// Frames of a capture file whose timestamps were not believed.
    pub fn set_clock_overruled(&mut self, n: u64) {
        self.counters.engine.clock_overruled = n;
    }

    /// End of input: everything the reordering window holds goes to the
    /// engine.
    pub fn flush_input(&mut self) {
        let (engine, filters, finished) = (&mut self.engine, &self.filters, &mut self.finished);
        self.reorder.flush(&mut |e: &Event| {
            engine.expire(e.ts_ns, finished);
            engine.process(e, |c| filters.admit(c), finished);
        });
        self.report();
    }

    /// Records the capture's own counters.
    pub fn set_capture_stats(&mut self, stats: CaptureStats) {
        self.counters.capture = stats;
    }

    /// The counters, with the engine's current figures.
    pub fn counters(&mut self) -> &Counters {
        self.counters.engine.pending = self.engine.pending() as u64;
        self.counters.engine.overflow = self.engine.overflow();
        self.counters.engine.late = self.reorder.late();
        &self.counters
    }

    /// Time of the first and the latest packet seen.
    pub fn packet_span(&self) -> Option<(u64, u64)> {
        self.first_ns.map(|f| (f, self.now_ns))
    }

    /// The first error writing handshake lines (a closed stdout ends the
    /// run like a signal).
    pub fn output_error(&self) -> Option<&io::Error> {
        self.output_error.as_ref()
    }

    /// Starts the per-handshake output (the table header, as the original
    /// prints it once capture is running).
    pub fn start_output(&mut self) {
        if let Err(e) = self.printer.header() {
            self.output_error.get_or_insert(e);
        }
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.printer.flush() {
            self.output_error.get_or_insert(e);
        }
    }

    fn report(&mut self) {
        for f in self.finished.drain(..) {
            self.matched.clear();
            let matched = &mut self.matched;
            self.filters
                .for_each_in(f.tag, &f.conn, |i| matched.push(i));
            for &i in &self.matched {
                self.counters.filters[i]
                    .1
                    .record(f.outcome, f.dupsyn, f.dupsynack);
            }
            if self.output_error.is_none() && !self.printer.is_quiet() {
                let names: Vec<&str> = self
                    .matched
                    .iter()
                    .map(|&i| self.names[i].as_str())
                    .collect();
                if let Err(e) = self.printer.session(&f, &names) {
                    self.output_error = Some(e);
                }
            }
        }
    }
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn printer(cfg: &Config, out: Box<dyn Write + Send>) -> SessionPrinter {
    SessionPrinter::new(cfg.quiet, cfg.json, out)
}

/// Where per-handshake output goes: stdout with `--json`, else stderr.
fn session_dest(cfg: &Config) -> Dest {
    if cfg.json {
        Dest::Stdout
    } else {
        Dest::Stderr
    }
}

/// Writes to stderr, ignoring failure. `eprint!` panics when stderr is gone
/// (`tcpeek -r x.pcap 2>&1 | head -1` closes it), and a closed output is a
/// normal way for a run to end; there is nowhere left to report it anyway.
fn to_stderr(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// What is printed at exit: the summary (for stderr) and, with `--json`,
/// the final GET array (for stdout).
fn final_output(
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

/// Runs tcpeek with a validated configuration.
pub fn run(cfg: Config) -> anyhow::Result<ExitCode> {
    if let Some(note) = &cfg.local_note {
        log::info!("{note}");
    }
    match cfg.source.clone() {
        Source::File(path) => run_file(&cfg, &path),
        Source::Live { interface } => run_live(&cfg, &interface),
    }
}

fn run_file(cfg: &Config, path: &Path) -> anyhow::Result<ExitCode> {
    let mut cap = FileCapture::open(path, cfg.checksum)?;
    to_stderr(format_args!("{}\n", cap.banner()));
    let out: Box<dyn Write + Send> = match session_dest(cfg) {
        Dest::Stdout => Box::new(io::stdout()),
        Dest::Stderr => Box::new(io::stderr()),
    };
    let mut agg = Aggregator::new(
        Engine::new(cfg.engine),
        cfg.filters.clone(),
        printer(cfg, out),
    );
    agg.start_output();
    let mut failure = None;
    let mut feed = FileFeed::new();
    loop {
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

/// Live capture ends a handshake this long after its deadline passed on
/// the clock, not at once: records of it may still be on their way from the
/// kernel (a batch, the channel).
const LIVE_EXPIRY_MARGIN_NS: u64 = 1_000_000_000;

/// What the capture thread sends the aggregator.
enum Feed {
    Events(Vec<Event>),
    Stats(CaptureStats),
    Failed(anyhow::Error),
}

/// Events are handed over in batches of this many, or after this long,
/// whichever comes first: large enough to keep per-event overhead low,
/// short enough that a handshake line appears without visible delay.
const BATCH: usize = 256;
const BATCH_AGE: Duration = Duration::from_millis(20);

/// How often the live loop lets time pass without records: releases what
/// the reordering window holds, so a finished handshake is reported within
/// a few tens of milliseconds, and times out what is due.
const LIVE_TICK: Duration = Duration::from_millis(10);

/// Runs libpcap on its own thread until `stop` is set or capture fails.
///
/// Per packet it reads no clock: a batch's age is measured with the
/// packets' own timestamps (the kernel's, on the host's clock), and a read
/// that finds nothing for the read timeout hands over what is waiting. Two
/// clock reads per packet cost as much as decoding it.
fn spawn_pcap_feeder(
    mut cap: PcapCapture,
    tx: mpsc::Sender<Feed>,
    stop: Arc<AtomicBool>,
) -> io::Result<thread::JoinHandle<()>> {
    const BATCH_AGE_NS: u64 = BATCH_AGE.as_nanos() as u64;
    thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut stats_sent = Instant::now();
            let mut since_stats = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let idle = match cap.next() {
                    Ok(Next::Event(ev)) => {
                        batch.push(ev);
                        false
                    }
                    Ok(Next::Timeout) => true,
                    Ok(Next::Eof) => break,
                    Err(e) => {
                        let _ = tx.blocking_send(Feed::Failed(e.into()));
                        return;
                    }
                };
                let full = batch.len() >= BATCH
                    || batch
                        .last()
                        .zip(batch.first())
                        .is_some_and(|(last, first)| {
                            last.ts_ns.saturating_sub(first.ts_ns) >= BATCH_AGE_NS
                        });
                if !batch.is_empty() && (full || idle) {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.blocking_send(Feed::Events(full)).is_err() {
                        return;
                    }
                }
                since_stats += 1;
                if idle || since_stats >= 4096 {
                    since_stats = 0;
                    if stats_sent.elapsed() >= Duration::from_secs(1) {
                        stats_sent = Instant::now();
                        let _ = tx.blocking_send(Feed::Stats(cap.stats()));
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(Feed::Events(batch));
            }
            let _ = tx.blocking_send(Feed::Stats(cap.stats()));
        })
}

/// A running capture feeding the aggregator.
enum Feeder {
    /// libpcap on its own thread, stopped through the flag.
    Thread(thread::JoinHandle<()>, Arc<AtomicBool>),
    /// The eBPF ring buffer read by a task, stopped through the watch.
    Task(tokio::task::JoinHandle<()>),
}

/// Opens the capture the configuration asks for (`--backend`), as root.
fn open_capture(cfg: &Config, interface: &str) -> anyhow::Result<Capture> {
    let ebpf_blocker = if cfg.checksum != ChecksumMode::None {
        Some("-c verifies checksums, which only libpcap can do")
    } else if cfg.promisc {
        Some("--promisc is a libpcap option")
    } else {
        None
    };
    match (cfg.backend, ebpf_blocker) {
        (Backend::Pcap, _) => Ok(Capture::Pcap(Box::new(open_pcap(cfg, interface)?))),
        (Backend::Ebpf, Some(why)) => {
            anyhow::bail!("--backend ebpf: {why}; use --backend pcap or auto")
        }
        (Backend::Ebpf, None) => Ok(Capture::Ebpf(Box::new(open_ebpf(cfg, interface)?))),
        (Backend::Auto, Some(why)) => {
            log::info!("using libpcap: {why}");
            Ok(Capture::Pcap(Box::new(open_pcap(cfg, interface)?)))
        }
        (Backend::Auto, None) => match open_ebpf(cfg, interface) {
            Ok(c) => Ok(Capture::Ebpf(Box::new(c))),
            Err(e) => {
                to_stderr(format_args!(
                    "tcpeek: eBPF backend unavailable ({e:#}); using libpcap\n"
                ));
                Ok(Capture::Pcap(Box::new(open_pcap(cfg, interface)?)))
            }
        },
    }
}

/// Both boxed: either handle is hundreds of bytes, and the enum is built
/// once at start-up (clippy::large_enum_variant).
enum Capture {
    Pcap(Box<PcapCapture>),
    Ebpf(Box<EbpfCapture>),
}

fn open_pcap(cfg: &Config, interface: &str) -> anyhow::Result<PcapCapture> {
    Ok(PcapCapture::open_live(&LiveOptions {
        interface: Some(interface.to_string()),
        snaplen: DEFAULT_SNAPLEN,
        buffer_mb: cfg.buffer_mb,
        promisc: cfg.promisc,
        checksum: cfg.checksum,
    })?)
}

fn open_ebpf(cfg: &Config, interface: &str) -> anyhow::Result<EbpfCapture> {
    // -B sizes the ring buffer: a power of two of at least one page.
    let ring_bytes = (cfg.buffer_mb.max(1) << 20)
        .checked_next_power_of_two()
        .unwrap_or(1 << 30);
    let opts = EbpfOptions {
        xdp: cfg.xdp,
        ring_bytes,
        ..EbpfOptions::default()
    };
    Ok(EbpfCapture::open(interface, opts)?)
}

/// Reads the eBPF ring buffer until `stop` turns true, in batches: when the
/// kernel side wakes us (the unread data passed a quarter of the ring) or
/// after `ebpf::DRAIN_INTERVAL` (`EbpfCapture::next_batch`).
async fn ebpf_feeder(
    mut cap: EbpfCapture,
    tx: mpsc::Sender<Feed>,
    mut stop: watch::Receiver<bool>,
) {
    let mut stats_sent = Instant::now();
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        tokio::select! {
            r = cap.next_batch(&mut batch) => {
                if let Err(e) = r {
                    let _ = tx.send(Feed::Failed(anyhow::Error::new(e).context("reading the eBPF ring buffer"))).await;
                    return;
                }
            }
            () = stopped(&mut stop) => break,
        }
        if !batch.is_empty() && tx.send(Feed::Events(batch)).await.is_err() {
            return;
        }
        if stats_sent.elapsed() >= Duration::from_secs(1) {
            stats_sent = Instant::now();
            let _ = tx.send(Feed::Stats(cap.stats().into())).await;
        }
    }
    // What the kernel wrote before we stopped still counts.
    let mut batch = Vec::new();
    while cap.drain(&mut batch) > 0 {}
    if !batch.is_empty() {
        let _ = tx.send(Feed::Events(batch)).await;
    }
    let _ = tx.send(Feed::Stats(cap.stats().into())).await;
    // Dropping `cap` detaches the programs.
}

/// Resolves once `stop` is true or its sender is gone; the value's read
/// guard is dropped inside, keeping the caller's future `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn run_live(cfg: &Config, interface: &str) -> anyhow::Result<ExitCode> {
    let capture = open_capture(cfg, interface)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let server = open_socket(cfg)?;
        // 64 Ki lines (a few MB) may wait for a slow reader; beyond that
        // they are dropped and counted rather than stall the counters.
        let output = OutputQueue::spawn(1 << 16).context("starting the output thread")?;
        let out = Box::new(output.writer(session_dest(cfg)));
        let mut agg = Aggregator::new(
            Engine::new(cfg.engine),
            cfg.filters.clone(),
            printer(cfg, out),
        );
        let shared = SharedCounters::new(agg.counters().clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let server_task = server.map(|s| tokio::spawn(s.serve(shared.clone(), stop_rx.clone())));

        let (tx, mut rx) = mpsc::channel(64);
        // Timeouts are judged on the clock the events' times come from.
        let (feeder, capture_name, clock): (_, _, Box<dyn Fn() -> u64>) = match capture {
            Capture::Pcap(cap) => {
                to_stderr(format_args!("{}\n", cap.banner()));
                let stop = Arc::new(AtomicBool::new(false));
                let t = spawn_pcap_feeder(*cap, tx, stop.clone())
                    .context("starting the capture thread")?;
                (Feeder::Thread(t, stop), "pcap", Box::new(wall_ns))
            }
            Capture::Ebpf(cap) => {
                to_stderr(format_args!(
                    "listening on {interface}, eBPF {} ingress + TC egress, ring buffer {} MB\n",
                    if cfg.xdp { "XDP" } else { "TC" },
                    (cfg.buffer_mb.max(1) << 20)
                        .checked_next_power_of_two()
                        .unwrap_or(1 << 30)
                        >> 20
                ));
                let clock = Box::new(cap.clock());
                (
                    Feeder::Task(tokio::spawn(ebpf_feeder(*cap, tx, stop_rx.clone()))),
                    "ebpf",
                    clock,
                )
            }
        };
        agg.start_output();
        let from_ns = wall_ns();
        let mut failure = None;
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut tick = tokio::time::interval(LIVE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut feeding = true;
        while feeding {
            tokio::select! {
                // Signals first: a capture that keeps the channel full must
                // not keep an operator's Ctrl-C waiting.
                biased;
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                m = rx.recv() => {
                    feeding = feed(&mut agg, m, &mut failure);
                    agg.advance(clock(), LIVE_EXPIRY_MARGIN_NS);
                }
                _ = tick.tick() => {
                    // Time passes without records: the reordering window
                    // hands on what it held, and what is due times out.
                    // Queued records carry their own time and end what
                    // they pass; expiry stays LIVE_EXPIRY_MARGIN_NS behind
                    // the clock, so a handshake whose next segment is
                    // still on its way is not timed out.
                    if rx.is_empty() {
                        agg.advance(clock(), LIVE_EXPIRY_MARGIN_NS);
                    }
                    agg.flush();
                }
            }
            shared.publish(agg.counters());
            if agg.output_error().is_some() {
                break;
            }
        }
        // Stop capture, then count everything it had handed over, until it
        // is gone: a feeder blocked on a full channel must be able to end.
        let _ = stop_tx.send(true);
        if let Feeder::Thread(_, stop) = &feeder {
            stop.store(true, Ordering::Relaxed);
        }
        while feeding {
            feeding = feed(&mut agg, rx.recv().await, &mut failure);
        }
        let joined = match feeder {
            Feeder::Thread(t, _) => tokio::task::spawn_blocking(move || t.join().is_ok())
                .await
                .unwrap_or(false),
            Feeder::Task(t) => t.await.is_ok(),
        };
        if !joined {
            failure.get_or_insert_with(|| anyhow::anyhow!("the capture stopped abnormally"));
        }
        if let Some(t) = server_task {
            let _ = t.await;
        }
        let dropped = output.dropped();
        let (summary, json) =
            final_output(&mut agg, cfg, (from_ns, wall_ns()), capture_name, dropped);
        drop(agg);
        // Behind the lines still queued; a reader that never comes back
        // must not keep the process from exiting.
        let deadline = Instant::now() + Duration::from_secs(5);
        output.send_until(Dest::Stderr, summary.into_bytes(), deadline);
        if let Some(json) = json {
            output.send_until(Dest::Stdout, json.into_bytes(), deadline);
        }
        output.close(deadline);
        match failure {
            Some(e) => Err(e),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}

/// Handles one message from the capture thread; false once it is done.
fn feed(agg: &mut Aggregator, m: Option<Feed>, failure: &mut Option<anyhow::Error>) -> bool {
    match m {
        Some(Feed::Events(evs)) => {
            for ev in &evs {
                agg.event(ev);
            }
            true
        }
        Some(Feed::Stats(s)) => {
            agg.set_capture_stats(s);
            true
        }
        Some(Feed::Failed(e)) => {
            *failure = Some(e.context("capture failed"));
            false
        }
        None => false,
    }
}

/// Prepares the socket directory as root, drops privileges (`-u`), then
/// binds the socket, as the original does.
fn open_socket(cfg: &Config) -> anyhow::Result<Option<SocketServer>> {
    let owner = cfg.user.as_deref().map(lookup_user).transpose()?;
    if let Some(path) = &cfg.socket {
        prepare_dir(path, owner)?;
    }
    if let Some(user) = &cfg.user {
        drop_privileges(user)?;
    }
    Ok(match &cfg.socket {
        Some(path) => Some(SocketServer::bind(path)?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::local::Local;
    use tcpeek_common::tcp_flags::{ACK, SYN};
    use tcpeek_common::{FAMILY_V4, KIND_TCP};

    const S: u64 = 1_000_000_000;
    const T0: u64 = 1_767_225_600 * S;
    const C_ISN: u32 = 1000;
    const S_ISN: u32 = 50_000;

    fn aggregator() -> Aggregator {
        Aggregator::new(
            Engine::new(EngineConfig::new(30 * S, 100, true)),
            FilterSet::parse::<&str>(&[], Local::Everything).unwrap(),
            SessionPrinter::new(true, false, Box::new(io::sink())),
        )
    }

    fn seg(t: u64, from_client: bool, flags: u8, seq: u32, ack: u32) -> Event {
        let (c, s) = ([10, 0, 0, 2], [10, 0, 0, 1]);
        let (src, dst, sport, dport) = if from_client {
            (c, s, 40000, 80)
        } else {
            (s, c, 80, 40000)
        };
        let mut ev = Event {
            ts_ns: t,
            seq,
            ack,
            sport,
            dport,
            kind: KIND_TCP,
            family: FAMILY_V4,
            tcp_flags: flags,
            ..Event::ZERO
        };
        ev.saddr[..4].copy_from_slice(&src);
        ev.daddr[..4].copy_from_slice(&dst);
        ev
    }

    fn handshake(t: u64) -> [Event; 3] {
        [
            seg(t, true, SYN, C_ISN, 0),
            seg(t + 1000, false, SYN | ACK, S_ISN, C_ISN + 1),
            seg(t + 2000, true, ACK, C_ISN + 1, S_ISN + 1),
        ]
    }

    fn rx(agg: &mut Aggregator) -> crate::stats::FilterCounters {
        agg.counters().filters[0].1
    }

    #[test]
    fn a_synack_delivered_before_its_syn_is_a_success() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        for ev in [synack, syn, ack] {
            agg.event(&ev);
        }
        agg.flush_input();
        assert_eq!(rx(&mut agg).success.total, 1);
        assert_eq!(agg.counters().engine.late, 0);
    }

    #[test]
    fn an_ack_delivered_before_its_synack_is_a_success() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        for ev in [syn, ack, synack] {
            agg.event(&ev);
        }
        agg.advance(T0 + S, 0);
        assert_eq!(rx(&mut agg).success.total, 1);
    }

    #[test]
    fn a_record_beyond_the_window_is_counted_late() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        agg.event(&syn);
        agg.event(&synack);
        agg.advance(T0 + S, 0);
        // Stamped before the SYN/ACK already handed on.
        agg.event(&Event {
            ts_ns: T0 + 500,
            ..syn
        });
        agg.event(&ack);
        agg.flush_input();
        assert_eq!(agg.counters().engine.late, 1);
        let c = rx(&mut agg);
        assert_eq!((c.success.total, c.success.dupsyn), (1, 1), "still judged");
    }

    #[test]
    fn live_quiet_period_does_not_break_the_next_handshake() {
        // Regression: after more than 10 minutes without a connection, the
        // next handshake was stamped before the gap and reported as a
        // timeout; its retransmitted SYN was counted a second time.
        let mut agg = aggregator();
        for ev in handshake(T0) {
            agg.event(&ev);
        }
        // The live clock ticks through an hour of silence.
        for m in 1..=60 {
            agg.advance(T0 + m * 60 * S, LIVE_EXPIRY_MARGIN_NS);
        }
        let t = T0 + 3600 * S + 5 * S;
        let [syn, synack, ack] = handshake(t);
        agg.event(&syn);
        agg.event(&Event {
            ts_ns: t + S,
            ..syn
        });
        agg.event(&Event {
            ts_ns: t + S + 1000,
            ..synack
        });
        agg.event(&Event {
            ts_ns: t + S + 2000,
            ..ack
        });
        agg.advance(t + 10 * S, LIVE_EXPIRY_MARGIN_NS);
        let c = rx(&mut agg);
        assert_eq!((c.success.total, c.success.dupsyn), (2, 1));
        assert_eq!(c.failure.total, 0);
    }

    #[test]
    fn live_expiry_leaves_records_in_flight_a_margin() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        agg.event(&syn);
        agg.event(&synack);
        // The clock is past the deadline, but by less than the margin: the
        // ACK may still be on its way from the kernel.
        agg.advance(
            T0 + 30 * S + 1000 + LIVE_EXPIRY_MARGIN_NS / 2,
            LIVE_EXPIRY_MARGIN_NS,
        );
        agg.event(&ack);
        agg.flush_input();
        assert_eq!(rx(&mut agg).success.total, 1);
        assert_eq!(rx(&mut agg).failure.timeout, 0);
    }

    #[test]
    fn outcomes_reach_the_counters_by_kind() {
        let mut agg = aggregator();
        let [syn, synack, _] = handshake(T0);
        agg.event(&syn);
        agg.event(&synack);
        agg.event(&seg(
            T0 + 3000,
            true,
            tcpeek_common::tcp_flags::RST,
            C_ISN + 1,
            0,
        ));
        agg.flush_input();
        let c = rx(&mut agg);
        assert_eq!((c.failure.reject, c.failure.reject_by_client), (1, 1));
    }
}
