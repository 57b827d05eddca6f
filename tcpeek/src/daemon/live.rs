//! Live capture: libpcap on its own thread (its reads block) or the eBPF
//! ring buffer read by a task, handing batches of events to the
//! aggregator over a bounded channel; the socket server; signals.

use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use tcpeek_common::Event;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use super::{
    announce_metrics, final_output, session_dest, start_otlp, to_stderr, wall_ns, Aggregator,
};
use crate::capture::ebpf::{EbpfCapture, EbpfOptions};
use crate::capture::pcap::{LiveOptions, Next, PcapCapture, DEFAULT_SNAPLEN};
use crate::capture::CaptureStats;
use crate::cli::{Backend, Config};
use crate::metrics::http::MetricsServer;
use crate::metrics::About;
use crate::output::queue::{Dest, OutputQueue};
use crate::output::{format_summary, SummaryInfo};
use crate::socket::{drop_capabilities, drop_privileges, prepare_dir, SocketServer};
use crate::stats::SharedCounters;

/// Live capture ends a handshake this long after its deadline passed on
/// the clock, not at once: records of it may still be on their way from the
/// kernel (a batch, the channel).
pub(super) const LIVE_EXPIRY_MARGIN_NS: u64 = 1_000_000_000;

/// What a capture thread or task sends the aggregator; `u8` is the
/// interface's slot (its place in `-i` order).
enum Feed {
    Events(Vec<Event>),
    Stats(u8, CaptureStats),
    Failed(u8, anyhow::Error),
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

/// How often the watched interfaces are looked up, to report one deleted
/// or renamed (eBPF sees nothing more from a deleted one, and says
/// nothing).
const INTERFACE_CHECK: Duration = Duration::from_secs(1);

/// Runs libpcap on its own thread until `stop` is set or capture fails.
///
/// Per packet it reads no clock: a batch's age is measured with the
/// packets' own timestamps (the kernel's, on the host's clock), and a read
/// that finds nothing for the read timeout hands over what is waiting. Two
/// clock reads per packet cost as much as decoding it.
fn spawn_pcap_feeder(
    mut cap: PcapCapture,
    slot: u8,
    tx: mpsc::Sender<Feed>,
    stop: Arc<AtomicBool>,
) -> io::Result<thread::JoinHandle<()>> {
    const BATCH_AGE_NS: u64 = BATCH_AGE.as_nanos() as u64;
    thread::Builder::new()
        .name(format!("capture-{slot}"))
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut stats_sent = Instant::now();
            let mut since_stats = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let idle = match cap.next() {
                    Ok(Next::Event(mut ev)) => {
                        ev.iface = slot;
                        batch.push(ev);
                        false
                    }
                    Ok(Next::Timeout) => true,
                    Ok(Next::Eof) => break,
                    Err(e) => {
                        if !batch.is_empty() {
                            let _ = tx.blocking_send(Feed::Events(batch));
                        }
                        let _ = tx.blocking_send(Feed::Stats(slot, cap.stats()));
                        let _ = tx.blocking_send(Feed::Failed(slot, e.into()));
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
                        let _ = tx.blocking_send(Feed::Stats(slot, cap.stats()));
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(Feed::Events(batch));
            }
            let _ = tx.blocking_send(Feed::Stats(slot, cap.stats()));
        })
}

/// A running capture feeding the aggregator.
enum Feeder {
    /// libpcap on its own thread, stopped through the flag.
    Thread(thread::JoinHandle<()>, Arc<AtomicBool>),
    /// The eBPF ring buffer read by a task, stopped through the watch.
    Task(tokio::task::JoinHandle<()>),
}

/// Opens a capture of each interface with the backend the configuration
/// asks for (`--backend`), as root. `auto` uses eBPF if it opens on every
/// interface, else libpcap on all: one backend per run.
fn open_captures(cfg: &Config, interfaces: &[String]) -> anyhow::Result<Captures> {
    // The conversion of the command line settled what libpcap-only options
    // imply (cli::Config::from_args).
    if let Some(why) = cfg.backend_note {
        log::info!("using libpcap: {why}");
    }
    // With several interfaces, an error names the one it is about.
    fn named<T>(many: bool, i: &str, r: anyhow::Result<T>) -> anyhow::Result<T> {
        if many {
            r.with_context(|| format!("-i {i}"))
        } else {
            r
        }
    }
    let many = interfaces.len() > 1;
    let pcap = || -> anyhow::Result<Captures> {
        let caps = interfaces
            .iter()
            .map(|i| named(many, i, open_pcap(cfg, i)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Captures::Pcap(caps))
    };
    let ebpf = || -> anyhow::Result<Captures> {
        let caps = interfaces
            .iter()
            .map(|i| named(many, i, open_ebpf(cfg, i)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Captures::Ebpf(caps))
    };
    match cfg.backend {
        Backend::Pcap => pcap(),
        Backend::Ebpf => ebpf(),
        Backend::Auto => ebpf().or_else(|e| {
            to_stderr(format_args!(
                "tcpeek: eBPF backend unavailable ({e:#}); using libpcap\n"
            ));
            pcap()
        }),
    }
}

/// One capture per interface, in `-i` order, all of one backend.
enum Captures {
    Pcap(Vec<PcapCapture>),
    Ebpf(Vec<EbpfCapture>),
}

impl Captures {
    fn name(&self) -> &'static str {
        match self {
            Captures::Pcap(_) => "pcap",
            Captures::Ebpf(_) => "ebpf",
        }
    }
}

/// The interfaces watched, by name and index: one that is deleted (its
/// index gone) or whose capture fails is reported once and no longer
/// waited for; the others go on.
struct Watched {
    names: Vec<String>,
    /// `None` for libpcap's `any`.
    index: Vec<Option<u32>>,
    /// Reported gone or failed.
    lost: Vec<bool>,
    /// Why, for each lost one.
    why: Vec<String>,
    /// The name it was last seen under, when renamed.
    renamed: Vec<Option<String>>,
}

impl Watched {
    fn new(names: &[String]) -> Watched {
        Watched {
            index: names
                .iter()
                .map(|n| {
                    (n != "any")
                        .then(|| nix::net::if_::if_nametoindex(n.as_str()).ok())
                        .flatten()
                })
                .collect(),
            lost: vec![false; names.len()],
            why: vec![String::new(); names.len()],
            renamed: vec![None; names.len()],
            names: names.to_vec(),
        }
    }

    /// Looks each interface up by its index: reports one deleted or
    /// renamed since.
    fn check(&mut self) {
        for slot in 0..self.names.len() {
            let Some(index) = self.index[slot] else {
                continue;
            };
            if self.lost[slot] {
                continue;
            }
            // nix 0.30 gives an empty name, not an error, for an index
            // that no longer exists.
            let name = nix::net::if_::if_indextoname(index)
                .ok()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.is_empty());
            match name {
                Some(now) => {
                    let was = self.renamed[slot].as_deref().unwrap_or(&self.names[slot]);
                    if now != was {
                        log::warn!(
                            "interface {} (index {index}) is now called {now}; still watched, still reported as {}",
                            was,
                            self.names[slot]
                        );
                        self.renamed[slot] = Some(now);
                    }
                }
                None => self.lose(slot, "the interface was deleted"),
            }
        }
    }

    /// Reports interface `slot` lost, once.
    fn lose(&mut self, slot: usize, why: impl std::fmt::Display) {
        if std::mem::replace(&mut self.lost[slot], true) {
            return;
        }
        self.why[slot] = why.to_string();
        let left = self.remaining();
        if left == 0 {
            // The run ends with the reasons (Watched::ended).
            return;
        }
        log::error!(
            "stopped watching {}: {}; its counts so far stay; {left} interface{} still watched (it is not picked up again if it comes back)",
            self.names[slot],
            self.why[slot],
            if left == 1 { "" } else { "s" },
        );
    }

    /// Why the run ends when no interface is left.
    fn ended(&self) -> anyhow::Error {
        let each: Vec<String> = self
            .names
            .iter()
            .zip(&self.why)
            .map(|(n, why)| format!("{n}: {why}"))
            .collect();
        anyhow::anyhow!("no interface left to watch: {}", each.join("; "))
    }

    fn remaining(&self) -> usize {
        self.lost.iter().filter(|l| !**l).count()
    }
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
    let opts = EbpfOptions {
        xdp: cfg.xdp,
        ring_bytes: cfg.ring_bytes,
        ..EbpfOptions::default()
    };
    Ok(EbpfCapture::open(interface, opts)?)
}

/// Reads the eBPF ring buffer until `stop` turns true, in batches: when the
/// kernel side wakes us (the unread data passed a quarter of the ring) or
/// after `ebpf::DRAIN_INTERVAL` (`EbpfCapture::next_batch`).
async fn ebpf_feeder(
    mut cap: EbpfCapture,
    slot: u8,
    tx: mpsc::Sender<Feed>,
    mut stop: watch::Receiver<bool>,
) {
    let stamp = |batch: &mut Vec<Event>| {
        if slot != 0 {
            batch.iter_mut().for_each(|e| e.iface = slot);
        }
    };
    let mut stats_sent = Instant::now();
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        tokio::select! {
            r = cap.next_batch(&mut batch) => {
                if let Err(e) = r {
                    let e = anyhow::Error::new(e).context("reading the eBPF ring buffer");
                    let _ = tx.send(Feed::Failed(slot, e)).await;
                    return;
                }
            }
            () = stopped(&mut stop) => break,
        }
        stamp(&mut batch);
        if !batch.is_empty() && tx.send(Feed::Events(batch)).await.is_err() {
            return;
        }
        if stats_sent.elapsed() >= Duration::from_secs(1) {
            stats_sent = Instant::now();
            let _ = tx.send(Feed::Stats(slot, cap.stats().into())).await;
        }
    }
    // What the kernel wrote before we stopped still counts.
    let mut batch = Vec::new();
    while cap.drain(&mut batch) > 0 {}
    stamp(&mut batch);
    if !batch.is_empty() {
        let _ = tx.send(Feed::Events(batch)).await;
    }
    let _ = tx.send(Feed::Stats(slot, cap.stats().into())).await;
    // Dropping `cap` detaches the programs.
}

/// Resolves once `stop` is true or its sender is gone; the value's read
/// guard is dropped inside, keeping the caller's future `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub(super) fn run(cfg: &Config, interfaces: &[String]) -> anyhow::Result<ExitCode> {
    raise_fd_limit();
    let captures = open_captures(cfg, interfaces)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let (server, metrics) = open_servers(cfg)?;
        // Attached and bound: nothing left needs a capability, but a
        // netlink fallback's detach (and before any thread starts, as
        // capabilities are per thread).
        let keep: &[caps::Capability] = match &captures {
            Captures::Ebpf(c) if c.iter().any(EbpfCapture::detach_needs_net_admin) => {
                &[caps::Capability::CAP_NET_ADMIN]
            }
            _ => &[],
        };
        drop_capabilities(keep)?;
        // 64 Ki lines (a few MB) may wait for a slow reader; beyond that
        // they are dropped and counted rather than stall the counters.
        let output = OutputQueue::spawn(1 << 16).context("starting the output thread")?;
        let out = Box::new(output.writer(session_dest(cfg)));
        let mut agg = super::aggregator(cfg, out);
        agg.watch_interfaces(interfaces);
        let shared = SharedCounters::new(agg.counters().clone());
        let mut about = About::new(captures.name(), interfaces.join(","));
        // OTLP's cumulative series start here, in every push.
        let pushes_from = wall_ns();
        let final_push = start_otlp(cfg, &mut about, Some(&shared), pushes_from)?;
        if let Some(m) = metrics {
            announce_metrics(&m);
            m.spawn(shared.clone(), about)?;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let server_task = server.map(|s| tokio::spawn(s.serve(shared.clone(), stop_rx.clone())));

        let (tx, mut rx) = mpsc::channel(64);
        // Timeouts are judged on the clock the events' times come from.
        let capture_name = captures.name();
        let mut feeders = Vec::with_capacity(interfaces.len());
        let clock: Box<dyn Fn() -> u64> = match captures {
            Captures::Pcap(caps) => {
                for (slot, cap) in caps.into_iter().enumerate() {
                    to_stderr(format_args!("{}\n", cap.banner()));
                    let stop = Arc::new(AtomicBool::new(false));
                    let t = spawn_pcap_feeder(cap, slot as u8, tx.clone(), stop.clone())
                        .context("starting the capture thread")?;
                    feeders.push(Feeder::Thread(t, stop));
                }
                Box::new(wall_ns)
            }
            Captures::Ebpf(mut caps) => {
                // A handshake may cross interfaces: any table holding it
                // will do.
                let tables: Vec<_> = caps
                    .iter_mut()
                    .filter_map(EbpfCapture::take_table)
                    .collect();
                agg = agg.with_kernel_table(Box::new(move |c| tables.iter().any(|t| t.holds(c))));
                let mut clock: Option<Box<dyn Fn() -> u64>> = None;
                for (slot, cap) in caps.into_iter().enumerate() {
                    to_stderr(format_args!(
                        "listening on {}, eBPF {} ingress + TC egress, ring buffer {} MB\n",
                        interfaces[slot],
                        if cfg.xdp { "XDP" } else { "TC" },
                        cfg.ring_bytes >> 20
                    ));
                    // One clock for all: the kernel's, the same for every
                    // interface.
                    clock.get_or_insert_with(|| Box::new(cap.clock()));
                    let task = ebpf_feeder(cap, slot as u8, tx.clone(), stop_rx.clone());
                    feeders.push(Feeder::Task(tokio::spawn(task)));
                }
                clock.unwrap_or_else(|| Box::new(wall_ns))
            }
        };
        // The feeders hold the senders: the channel closes when all end.
        drop(tx);
        let mut watched = Watched::new(interfaces);
        let mut checked = Instant::now();
        agg.start_output();
        let from_ns = wall_ns();
        let mut failure = None;
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut sigusr1 =
            signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
        let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
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
                _ = sigusr1.recv() => {
                    // The summary so far, behind the lines already queued;
                    // the run goes on. A stuck reader gets it dropped, with
                    // a log line, rather than hold up counting.
                    agg.flush();
                    agg.set_server_stats(shared.server_stats());
                    let summary = format_summary(
                        agg.counters(),
                        &SummaryInfo {
                            from_ns,
                            to_ns: wall_ns(),
                            icmp: cfg.engine.icmp,
                            capture: capture_name,
                            dropped_lines: output.dropped(),
                        },
                    );
                    let deadline = Instant::now() + Duration::from_millis(200);
                    if !output.send_until(Dest::Stderr, summary.into_bytes(), deadline) {
                        log::warn!("SIGUSR1: the summary was dropped: its reader is too slow");
                    }
                }
                _ = sighup.recv() => reload(cfg, &mut agg),
                m = rx.recv() => {
                    feeding = feed(&mut agg, m, &mut watched);
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
                    if checked.elapsed() >= INTERFACE_CHECK {
                        checked = Instant::now();
                        watched.check();
                    }
                }
            }
            if watched.remaining() == 0 {
                failure = Some(watched.ended());
                break;
            }
            agg.set_lines_dropped(output.dropped());
            shared.publish(agg.counters());
            if agg.output_error().is_some() {
                break;
            }
        }
        // Stop capture, then count everything it had handed over, until it
        // is gone: a feeder blocked on a full channel must be able to end.
        let _ = stop_tx.send(true);
        for f in &feeders {
            if let Feeder::Thread(_, stop) = f {
                stop.store(true, Ordering::Relaxed);
            }
        }
        while feeding {
            feeding = feed(&mut agg, rx.recv().await, &mut watched);
        }
        for f in feeders {
            let joined = match f {
                Feeder::Thread(t, _) => tokio::task::spawn_blocking(move || t.join().is_ok())
                    .await
                    .unwrap_or(false),
                Feeder::Task(t) => t.await.is_ok(),
            };
            if !joined {
                failure.get_or_insert_with(|| anyhow::anyhow!("the capture stopped abnormally"));
            }
        }
        if let Some(t) = server_task {
            let _ = t.await;
        }
        agg.set_server_stats(shared.server_stats());
        let dropped = output.dropped();
        let (summary, json) =
            final_output(&mut agg, cfg, (from_ns, wall_ns()), capture_name, dropped);
        if let Some(p) = final_push {
            agg.set_lines_dropped(dropped);
            p.push(agg.counters(), (pushes_from, wall_ns()));
        }
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

/// Descriptors the servers may need at their limits (the socket's 1024
/// clients, the metrics' 256) with room for the captures and the rest.
const WANTED_FDS: u64 = 4096;

/// Raises the soft limit on open descriptors towards [`WANTED_FDS`] (within
/// the hard limit, which needs no privilege): systemd's soft default of
/// 1024 is less than the servers may hold. Below it the servers still
/// work: out of descriptors, they close an idle client to accept a new
/// one.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let want = WANTED_FDS.min(hard);
    if soft < want {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
            log::debug!("cannot raise the descriptor limit from {soft} to {want}: {e}");
        }
    }
}

/// SIGHUP: reads the command line's `--config` file again and swaps in its
/// filters, local addresses and log level; a file that does not make a
/// configuration leaves the running one, and says why.
fn reload(running: &Config, agg: &mut Aggregator) {
    let new = match running.reread() {
        Ok(Some(new)) => new,
        Ok(None) => {
            log::warn!("SIGHUP: no --config file to read again; nothing changed");
            return;
        }
        Err(e) => {
            log::error!("SIGHUP: configuration not reloaded, the running one stays: {e:#}");
            agg.config_loaded(false, 0);
            return;
        }
    };
    let restart = running.restart_needed(&new);
    if !restart.is_empty() {
        log::warn!(
            "SIGHUP: these options changed and apply only at a restart: {}",
            restart.join("; ")
        );
    }
    log::set_max_level(new.loglevel);
    let local: Vec<String> = new.filters.locals().iter().map(|l| l.to_string()).collect();
    let local = local.join(" | ");
    let r = agg.reload(new.filters);
    agg.config_loaded(true, super::wall_ns() / 1_000_000_000);
    log::info!(
        "SIGHUP: configuration reloaded: {} filters kept, {} new, {} gone; local addresses {local}",
        r.kept,
        r.added,
        r.removed
    );
}

/// Handles one message from a capture; false once every capture is done.
fn feed(agg: &mut Aggregator, m: Option<Feed>, watched: &mut Watched) -> bool {
    match m {
        Some(Feed::Events(evs)) => {
            for ev in &evs {
                agg.event(ev);
            }
            true
        }
        Some(Feed::Stats(slot, s)) => {
            agg.set_interface_stats(usize::from(slot), s);
            true
        }
        Some(Feed::Failed(slot, e)) => {
            watched.lose(usize::from(slot), format_args!("capture failed: {e:#}"));
            true
        }
        None => false,
    }
}

/// Prepares the socket directory and binds the metrics port as root,
/// drops privileges (`-u`), then binds the socket, as the original does.
fn open_servers(cfg: &Config) -> anyhow::Result<(Option<SocketServer>, Option<MetricsServer>)> {
    if let Some(path) = &cfg.socket {
        prepare_dir(path, cfg.user_ids)?;
    }
    let metrics = cfg.metrics.map(MetricsServer::bind).transpose()?;
    if let Some(user) = &cfg.user {
        drop_privileges(user)?;
    }
    let socket = match &cfg.socket {
        Some(path) => Some(SocketServer::bind(path)?),
        None => None,
    };
    Ok((socket, metrics))
}
