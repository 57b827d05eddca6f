//! `cargo xtask soak`: a live tcpeek, each backend in turn, watching
//! mixed traffic for a long time, sampled every 10 s: memory, CPU, open
//! descriptors, how fast the socket answers, and its counters against what
//! the generator knows it sent. Prints a table and flags growth or a count
//! that does not match; exits 1 if anything was flagged.
//!
//! The traffic, through the real kernel between the pair's namespaces
//! (filters name each kind, so each count is checked on its own):
//! - `ok`: connects to a listener that accepts and closes, one every
//!   10 ms or as fast as they complete (about 50/s on the test machine);
//! - `refused`: every tenth round, a connect to a closed port, refused by
//!   RST;
//! - `icmp`: every fiftieth, a connect refused by an ICMP port unreachable
//!   (nftables `reject`);
//! - `dropped`: every fiftieth, a SYN nftables drops, the socket closed at
//!   once: a timeout;
//! - `flood`: every minute, 20,000 SYNs from spoofed sources injected on
//!   the link (addressed to another MAC, so the server's stack never
//!   answers): 20,000 timeouts;
//! - abusive socket clients: every minute, 1,500 connections to tcpeek's
//!   socket that send nothing, held for 20 s, while the samples' GETs must
//!   still be answered within a second.
//!
//! During the run a count may trail what was sent by what is in flight:
//! `ok`, `refused` and `icmp` by a second's worth, the timeouts by the
//! timeout plus the expiry margin. At the end the generator stops, tcpeek
//! settles, and every count must match exactly.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use super::monitor::{sample, Monitor};
use super::netns::{spawn_in, Pair, RECEIVER_ADDR};
use crate::trace::{Addr, Conn, Link, Trace};

const OK: u16 = 5001;
const REFUSED: u16 = 5002;
const DROPPED: u16 = 5003;
const ICMP: u16 = 5004;
const FLOOD: u16 = 5005;
const FLOOD_SYNS: u32 = 20_000;
const ABUSERS: usize = 1_500;
const SAMPLE: Duration = Duration::from_secs(10);
/// tcpeek's `-t` (the monitor's) plus its expiry margin and a second.
const TIMEOUT_LAG: Duration = Duration::from_secs(5 + 1 + 2);
/// The session table's bound for the run, and what it may cost.
const MAX_SESSIONS: u64 = 100_000;
const BYTES_PER_SESSION: u64 = 145;

struct Options {
    minutes: f64,
    backends: Vec<&'static str>,
    tcpeek: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut o = Options {
            minutes: 30.0,
            backends: vec!["ebpf", "pcap"],
            tcpeek: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .with_context(|| format!("soak: {a} needs a value"))
            };
            match a.as_str() {
                "--minutes" => {
                    let v = value()?;
                    o.minutes = v.parse().ok().filter(|m: &f64| *m > 0.0).with_context(|| {
                        format!("soak: --minutes '{v}' is not a positive number")
                    })?;
                }
                "--backend" => {
                    o.backends = match value()?.as_str() {
                        "ebpf" => vec!["ebpf"],
                        "pcap" => vec!["pcap"],
                        "both" => vec!["ebpf", "pcap"],
                        other => bail!("soak: --backend '{other}': ebpf, pcap or both"),
                    }
                }
                "--tcpeek" => o.tcpeek = Some(PathBuf::from(value()?)),
                other => bail!("soak: unknown option '{other}'"),
            }
        }
        Ok(o)
    }
}

/// What the generator sent, by kind; timeouts with their times, to tell
/// which must have been counted by now.
#[derive(Default)]
struct Sent {
    ok: u64,
    refused: u64,
    icmp: u64,
    /// `ok` connects that failed (flagged: their handshakes did not
    /// complete).
    other: u64,
    /// Refused connects that failed with another error than the expected
    /// one: what the client saw, printed but not flagged (tcpeek counts
    /// what was on the wire, the same whatever the client made of it).
    odd: Vec<String>,
    dropped: Vec<Instant>,
    flood: Vec<(Instant, u64)>,
}

impl Sent {
    fn dropped_before(&self, t: Instant) -> u64 {
        self.dropped.iter().filter(|s| **s < t).count() as u64
    }
    fn flood_total(&self) -> u64 {
        self.flood.iter().map(|f| f.1).sum()
    }
    fn flood_before(&self, t: Instant) -> u64 {
        self.flood.iter().filter(|f| f.0 < t).map(|f| f.1).sum()
    }
}

/// One sample's row.
struct Row {
    at: Duration,
    rss_kb: u64,
    cpu_pct: f64,
    fds: usize,
    get_ms: f64,
    abusers: bool,
    problems: Vec<String>,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let opts = Options::parse(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("soak: needs root (network namespaces, packet capture)");
    }
    super::install_signal_handlers();
    let tcpeek = super::release_tcpeek(opts.tcpeek.as_deref())?;
    let mut flagged = 0;
    for backend in &opts.backends {
        flagged += soak(&tcpeek, backend, opts.minutes)?;
        if super::interrupted() {
            bail!("soak: interrupted; namespaces and monitor removed");
        }
    }
    if flagged > 0 {
        bail!("soak: {flagged} problem(s) flagged above");
    }
    eprintln!("soak: nothing flagged");
    Ok(())
}

/// One backend's soak; returns how many problems it flagged.
fn soak(tcpeek: &Path, backend: &'static str, minutes: f64) -> anyhow::Result<usize> {
    let pair = Pair::new()?;
    let [a, b, c, d] = RECEIVER_ADDR;
    let server = Ipv4Addr::new(a, b, c, d);
    nft(
        &pair.receiver,
        &format!(
            "table inet soak {{ chain input {{ type filter hook input priority 0; tcp dport {DROPPED} drop; tcp dport {ICMP} reject with icmp type port-unreachable; }} }}"
        ),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let servers = spawn_in(&pair.receiver, "soak-servers", {
        let stop = stop.clone();
        move || servers(server, &stop)
    })?;
    // The listeners are up once the flood's port answers.
    let dir = std::env::temp_dir().join(format!("tcpeek-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join(format!("{backend}.sock"));
    let extra: Vec<String> = [
        "--max-sessions".to_string(),
        MAX_SESSIONS.to_string(),
        format!("ok:RX@%:{OK}"),
        format!("refused:RX@%:{REFUSED}"),
        format!("dropped:RX@%:{DROPPED}"),
        format!("icmp:RX@%:{ICMP}"),
        format!("flood:RX@%:{FLOOD}"),
    ]
    .into();
    let monitor = Monitor::start(&pair, tcpeek, &["--backend", backend], &extra, &socket)?;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let generator = spawn_in(&pair.sender, "soak-traffic", {
        let (stop, sent) = (stop.clone(), sent.clone());
        move || traffic(server, &stop, &sent)
    })?;
    let flood_frames = flood_frames(&pair);

    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    eprintln!(
        "soak: {backend}, {minutes} min, pid {}; a row every {} s",
        monitor.pid,
        SAMPLE.as_secs()
    );
    eprintln!(
        "{:>6} {:>9} {:>6} {:>5} {:>7}  {:>9} {:>8} {:>6} {:>8} {:>8}  status",
        "time", "RSS MiB", "CPU %", "fds", "GET ms", "ok", "refused", "icmp", "dropped", "flood"
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut last = (Instant::now(), sample(monitor.pid).cpu_ns);
    let mut next_sample = start + SAMPLE;
    let mut abusers: Vec<UnixStream> = Vec::new();
    let mut abusers_since = None;
    let mut floods = 0u32;
    while Instant::now() < end && !super::interrupted() {
        let t = start.elapsed().as_secs();
        // The flood at 30 s past each minute, the abusers at 15 s.
        if t % 60 >= 30 && floods as u64 <= t / 60 {
            floods += 1;
            let at = Instant::now();
            let frames = flood_frames(floods);
            let n = inject(&pair, &frames)?;
            sent.lock().expect("sent").flood.push((at, n));
        }
        if t % 60 >= 15 && abusers_since.is_none() && abusers.is_empty() {
            for _ in 0..ABUSERS {
                if let Ok(s) = UnixStream::connect(&socket) {
                    abusers.push(s);
                }
            }
            abusers_since = Some(Instant::now());
        }
        if abusers_since.is_some_and(|s| s.elapsed() >= Duration::from_secs(20)) {
            abusers.clear();
        }
        if abusers_since.is_some_and(|s| s.elapsed() >= Duration::from_secs(45)) {
            abusers_since = None;
        }
        if Instant::now() >= next_sample {
            next_sample += SAMPLE;
            let row = take_sample(
                &monitor,
                &socket,
                &sent,
                &mut last,
                start,
                !abusers.is_empty(),
            );
            print_row(&row, &monitor, &socket);
            rows.push(row);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    abusers.clear();
    // The end: traffic stops, tcpeek settles, counts must match exactly.
    stop.store(true, Ordering::Relaxed);
    generator
        .join()
        .map_err(|_| anyhow::anyhow!("the traffic thread panicked"))???;
    std::thread::sleep(TIMEOUT_LAG);
    let settled = monitor.settle(Duration::from_secs(60))?;
    let v = monitor.get()?;
    let mut problems = Vec::new();
    {
        let s = sent.lock().expect("sent");
        let want = [
            ("ok", "success", s.ok),
            ("refused", "reject", s.refused),
            ("icmp", "unreach", s.icmp),
            ("dropped", "timeout", s.dropped.len() as u64),
            ("flood", "timeout", s.flood_total()),
        ];
        for (filter, field, n) in want {
            let got = count(&v, filter, field);
            if got != n {
                problems.push(format!("MISMATCH {filter}: {got} counted, {n} sent"));
            }
        }
        if s.other > 0 {
            problems.push(format!("{} connects to the listener failed", s.other));
        }
        if !s.odd.is_empty() {
            eprintln!(
                "soak {backend}: {} refused connects saw another error (not flagged), the first: {:?}",
                s.odd.len(),
                &s.odd[..s.odd.len().min(5)]
            );
        }
        let st = stats(&v);
        for key in ["drop", "ifdrop", "evicted"] {
            if st[key].as_u64().unwrap_or(0) > 0 {
                problems.push(format!("capture lost some: {key} {}", st[key]));
            }
        }
    }
    if !settled.settled {
        problems.push("did not settle within 60 s".into());
    }
    let growth = growth(&rows);
    let flagged: usize =
        rows.iter().map(|r| r.problems.len()).sum::<usize>() + growth.len() + problems.len();
    let (counters, _) = monitor.stop()?;
    stop.store(true, Ordering::Relaxed);
    let _ = servers.join();
    let _ = std::fs::remove_dir_all(&dir);
    let rss: Vec<u64> = rows.iter().map(|r| r.rss_kb).collect();
    let cpu: Vec<f64> = rows.iter().map(|r| r.cpu_pct).collect();
    let get: Vec<f64> = rows.iter().map(|r| r.get_ms).collect();
    eprintln!(
        "soak {backend}: {} samples over {:.1} min; RSS {} MiB first, {} max, {} last; CPU % median {:.1}, max {:.1}; GET ms median {:.2}, max {:.2}; counted {}",
        rows.len(),
        start.elapsed().as_secs_f64() / 60.0,
        rss.first().map_or(0, |k| k / 1024),
        rss.iter().max().map_or(0, |k| k / 1024),
        rss.last().map_or(0, |k| k / 1024),
        median(&cpu),
        cpu.iter().copied().fold(0.0, f64::max),
        median(&get),
        get.iter().copied().fold(0.0, f64::max),
        summary(&counters),
    );
    for p in growth.iter().chain(&problems) {
        eprintln!("soak {backend}: FLAG {p}");
    }
    Ok(flagged)
}

/// The listeners: `OK` accepts and closes, `FLOOD` never accepts (and
/// never sees a SYN: the flood is addressed to another MAC).
fn servers(server: Ipv4Addr, stop: &AtomicBool) -> anyhow::Result<()> {
    let ok = TcpListener::bind(SocketAddrV4::new(server, OK)).context("bind the ok port")?;
    let _flood =
        TcpListener::bind(SocketAddrV4::new(server, FLOOD)).context("bind the flood port")?;
    ok.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match ok.accept() {
            Ok((s, _)) => drop(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The generator, every 10 ms until `stop`.
fn traffic(server: Ipv4Addr, stop: &AtomicBool, sent: &Mutex<Sent>) -> anyhow::Result<()> {
    let to = |port| std::net::SocketAddr::V4(SocketAddrV4::new(server, port));
    let mut i = 0u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let ok = TcpStream::connect_timeout(&to(OK), Duration::from_secs(5));
        {
            let mut s = sent.lock().expect("sent");
            match ok {
                Ok(_) => s.ok += 1,
                Err(_) => s.other += 1,
            }
        }
        // What was sent to the closed and the rejected port is counted,
        // whatever the client's connect made of the answer.
        for (every, port, what) in [(10, REFUSED, "refused"), (50, ICMP, "icmp")] {
            if !i.is_multiple_of(every) {
                continue;
            }
            let r = TcpStream::connect_timeout(&to(port), Duration::from_secs(5));
            let mut s = sent.lock().expect("sent");
            match what {
                "refused" => s.refused += 1,
                _ => s.icmp += 1,
            }
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => s.odd.push(format!("{what}: {e}")),
                Ok(_) => s.odd.push(format!("{what}: connected")),
            }
        }
        if i % 50 == 25 {
            syn_only(to(DROPPED))?;
            sent.lock().expect("sent").dropped.push(Instant::now());
        }
        i += 1;
        next += Duration::from_millis(10);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

/// One SYN, then the socket closed before any retransmission: a timeout.
fn syn_only(to: std::net::SocketAddr) -> anyhow::Result<()> {
    // SAFETY: plain socket calls on a descriptor owned here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        if fd < 0 {
            bail!("socket: {}", std::io::Error::last_os_error());
        }
        let std::net::SocketAddr::V4(v4) = to else {
            unreachable!()
        };
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        libc::connect(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        // Long enough for the SYN to leave; closing a connecting socket
        // sends nothing.
        std::thread::sleep(Duration::from_millis(1));
        libc::close(fd);
    }
    Ok(())
}

/// Round `round`'s flood: SYNs from distinct spoofed sources in the pair's
/// /16 to the flood port, each with an ISN of its own.
fn flood_frames(_pair: &Pair) -> impl Fn(u32) -> Vec<Vec<u8>> {
    let [a, b, c, d] = RECEIVER_ADDR;
    move |round: u32| {
        let mut tr = Trace::new(Link::Ethernet, u64::from(round));
        for i in 0..FLOOD_SYNS {
            let conn = Conn {
                client: Addr::V4([10, 200, (i / 250 % 250) as u8 + 1, (i % 250) as u8 + 1]),
                server: Addr::V4([a, b, c, d]),
                cport: 1024 + ((i + round * FLOOD_SYNS) % 60_000) as u16,
                sport: FLOOD,
                cisn: tr.rng.next() as u32,
                sisn: 0,
            };
            tr.syn(u64::from(i), &conn);
        }
        tr.frames.into_iter().map(|(_, f)| f).collect()
    }
}

fn inject(pair: &Pair, frames: &[Vec<u8>]) -> anyhow::Result<u64> {
    let frames = frames.to_vec();
    let ifname = pair.sender_if.clone();
    spawn_in(&pair.sender, "soak-flood", move || {
        tcpeek_testkit::inject::inject(&ifname, frames.iter().map(Vec::as_slice))
    })?
    .join()
    .map_err(|_| anyhow::anyhow!("the flood thread panicked"))??
    .context("injecting the flood")
}

fn nft(ns: &str, ruleset: &str) -> anyhow::Result<()> {
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("running nft")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(ruleset.replace(';', "\n").replace('}', "\n}").as_bytes())?;
    if !child.wait()?.success() {
        bail!("nft refused the soak's rules");
    }
    Ok(())
}

fn take_sample(
    monitor: &Monitor,
    socket: &Path,
    sent: &Mutex<Sent>,
    last: &mut (Instant, u64),
    start: Instant,
    abusers: bool,
) -> Row {
    let s = sample(monitor.pid);
    let now = Instant::now();
    let cpu_pct = (s.cpu_ns.saturating_sub(last.1)) as f64
        / now.duration_since(last.0).as_nanos().max(1) as f64
        * 100.0;
    *last = (now, s.cpu_ns);
    let rss_kb = std::fs::read_to_string(format!("/proc/{}/status", monitor.pid))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", monitor.pid)).map_or(0, |d| d.count());
    let t = Instant::now();
    let reply = get(socket);
    let get_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut problems = Vec::new();
    if get_ms > 1000.0 {
        problems.push(format!("GET took {get_ms:.0} ms"));
    }
    match reply {
        Err(e) => problems.push(format!("GET failed: {e:#}")),
        Ok(v) => {
            let s = sent.lock().expect("sent");
            let lag = now.checked_sub(TIMEOUT_LAG).unwrap_or(start);
            // (filter, field, at least, at most)
            let checks = [
                ("ok", "success", s.ok.saturating_sub(100), s.ok + 100),
                (
                    "refused",
                    "reject",
                    s.refused.saturating_sub(10),
                    s.refused + 10,
                ),
                ("icmp", "unreach", s.icmp.saturating_sub(2), s.icmp + 2),
                (
                    "dropped",
                    "timeout",
                    s.dropped_before(lag),
                    s.dropped.len() as u64,
                ),
                ("flood", "timeout", s.flood_before(lag), s.flood_total()),
            ];
            for (filter, field, lo, hi) in checks {
                let got = count(&v, filter, field);
                if got < lo || got > hi {
                    problems.push(format!("MISMATCH {filter}: {got}, expected {lo}..={hi}"));
                }
            }
        }
    }
    Row {
        at: start.elapsed(),
        rss_kb,
        cpu_pct,
        fds,
        get_ms,
        abusers,
        problems,
    }
}

fn print_row(r: &Row, _monitor: &Monitor, socket: &Path) {
    let v = get(socket).ok();
    let c = |f: &str, k: &str| v.as_ref().map_or(0, |v| count(v, f, k));
    eprintln!(
        "{:>5}s {:>9.1} {:>6.1} {:>5} {:>7.2}  {:>9} {:>8} {:>6} {:>8} {:>8}  {}{}",
        r.at.as_secs(),
        r.rss_kb as f64 / 1024.0,
        r.cpu_pct,
        r.fds,
        r.get_ms,
        c("ok", "success"),
        c("refused", "reject"),
        c("icmp", "unreach"),
        c("dropped", "timeout"),
        c("flood", "timeout"),
        if r.problems.is_empty() {
            "ok".to_string()
        } else {
            r.problems.join("; ")
        },
        if r.abusers {
            " (abusers connected)"
        } else {
            ""
        },
    );
}

/// Growth beyond the bounds: RSS past the first minute's by more than the
/// session table's bound (plus 16 MiB), descriptors past the first
/// minute's (abusers aside) by more than 16.
fn growth(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(base) = rows.iter().find(|r| r.at >= Duration::from_secs(60)) else {
        return out;
    };
    let bound_kb = MAX_SESSIONS * BYTES_PER_SESSION / 1024 + 16 * 1024;
    if let Some(r) = rows.iter().find(|r| r.rss_kb > base.rss_kb + bound_kb) {
        out.push(format!(
            "RSS grew from {} to {} KiB at {} s (bound {} KiB)",
            base.rss_kb,
            r.rss_kb,
            r.at.as_secs(),
            bound_kb
        ));
    }
    let base_fds = rows
        .iter()
        .filter(|r| !r.abusers && r.at >= Duration::from_secs(60))
        .map(|r| r.fds)
        .min()
        .unwrap_or(base.fds);
    if let Some(r) = rows.iter().find(|r| !r.abusers && r.fds > base_fds + 16) {
        out.push(format!(
            "descriptors grew from {base_fds} to {} at {} s",
            r.fds,
            r.at.as_secs()
        ));
    }
    out
}

fn get(socket: &Path) -> anyhow::Result<Value> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(serde_json::from_str(&reply)?)
}

fn count(v: &Value, filter: &str, field: &str) -> u64 {
    let section = if field == "success" {
        "success"
    } else {
        "failure"
    };
    let key = if field == "success" { "total" } else { field };
    v.as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o.get(filter))
        .and_then(|f| f[section][key].as_u64())
        .unwrap_or(0)
}

fn stats(v: &Value) -> &Value {
    &v.as_array().and_then(|a| a.last()).unwrap_or(&Value::Null)["pcap"]["stats"]
}

fn summary(v: &Value) -> String {
    ["ok", "refused", "icmp", "dropped", "flood"]
        .iter()
        .map(|f| {
            let field = match *f {
                "ok" => "success",
                "refused" => "reject",
                "icmp" => "unreach",
                _ => "timeout",
            };
            format!("{f} {}", count(v, f, field))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
