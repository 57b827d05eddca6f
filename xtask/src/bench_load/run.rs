//! One replay: a stream sent by tcpreplay at top speed from the sender
//! namespace while a monitor (or none) watches the receiving veth, with
//! what it cost and what the monitor counted.
//!
//! Windows: the machine's CPU (/proc/stat, every CPU, busy = user + nice +
//! system + irq + softirq + steal) is taken over tcpreplay's run alone. The
//! monitor's own CPU and context switches run from just before the replay
//! until everything captured was counted (two equal GET replies: the
//! backlog drained); what it spends after that, until the last timeout
//! expired, is reported apart (`expiry`): that is the engine's work, the
//! same for every backend, plus the idle wakeups of those seconds. VmHWM
//! is read just before SIGINT.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::monitor::{ctxt_total, Counts, Mode, Monitor};
use super::netns::Pair;
use super::streams::Stream;

/// Figures of one run.
#[derive(Clone, Debug)]
pub struct Run {
    pub stream: &'static str,
    pub mode: String,
    pub packets: u64,
    pub events: u64,
    pub replay: Replay,
    /// Busy CPU of the whole machine during the replay, ns, and its
    /// softirq part.
    pub machine_ns: u64,
    pub softirq_ns: u64,
    pub monitor: Option<Watched>,
    /// veth TX drops (sender) and RX drops (receiver), softnet backlog drops.
    pub lost: (u64, u64, u64),
}

/// What tcpreplay reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Replay {
    pub sent: u64,
    pub failed: u64,
    pub secs: f64,
    pub pps: f64,
}

#[derive(Clone, Debug)]
pub struct Watched {
    /// CPU from the replay's start until the backlog drained.
    pub cpu_ns: u64,
    /// CPU after that, until every timeout expired, and how long that took.
    pub expiry_ns: u64,
    pub expiry_secs: f64,
    pub hwm_kb: u64,
    pub counts: Counts,
    pub settled: bool,
    pub stdout_lines: u64,
    /// Per thread (name, voluntary, nonvoluntary) over the monitor window.
    pub ctxt: Vec<(String, u64, u64)>,
    /// `perf stat` over the replay, when asked.
    pub perf: Option<PerfFigures>,
}

/// `perf stat` context-switches and cpu-migrations over the replay (from
/// 300 ms before it), and the /proc switches per thread over the same
/// window.
#[derive(Clone, Debug)]
pub struct PerfFigures {
    pub switches: u64,
    pub migrations: u64,
    pub threads: Vec<(String, u64, u64)>,
}

/// Busy time of every CPU, ns (the "cpu" line of /proc/stat).
pub fn machine_busy_ns() -> u64 {
    machine_cpu().0
}

/// Busy time of every CPU, and the part of it /proc/stat puts in softirq
/// (where the capture hooks run: the eBPF programs, libpcap's packet tap),
/// in ns. Without CONFIG_IRQ_TIME_ACCOUNTING the split is sampled at each
/// tick: an estimate.
pub fn machine_cpu() -> (u64, u64) {
    let tick_ns = 1_000_000_000 / super::monitor::clk_tck();
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest is in user)
            let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
            Some((busy * tick_ns, f.get(6)? * tick_ns))
        })
        .unwrap_or((0, 0))
}

/// Packets the kernel dropped for a full backlog, every CPU
/// (/proc/net/softnet_stat, second column, hexadecimal).
pub fn softnet_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

/// Runs `tcpreplay --topspeed -i IF FILE` in the sender namespace.
pub fn tcpreplay(pair: &Pair, file: &Path) -> anyhow::Result<Replay> {
    let t0 = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.sender,
            "tcpreplay",
            "--topspeed",
            "-i",
        ])
        .arg(&pair.sender_if)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .context("running tcpreplay")?;
    let wall = t0.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("tcpreplay failed ({}):\n{text}", out.status);
    }
    Ok(parse_tcpreplay(&text, wall))
}

/// "Actual: N packets (B bytes) sent in S seconds", "Rated: ... P pps",
/// "Failed packets: F" (tcpreplay 4.4). Falls back to wall time.
fn parse_tcpreplay(text: &str, wall: f64) -> Replay {
    let mut r = Replay::default();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Actual:") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            r.sent = w.first().and_then(|n| n.parse().ok()).unwrap_or(0);
            if let Some(i) = w.iter().position(|x| *x == "in") {
                r.secs = w.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            }
        } else if let Some(rest) = line.strip_prefix("Rated:") {
            r.pps = rest
                .split(',')
                .find(|p| p.trim().ends_with("pps"))
                .and_then(|p| p.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("Failed packets:") {
            r.failed = rest.trim().parse().unwrap_or(0);
        }
    }
    if r.secs <= 0.0 {
        r.secs = wall;
    }
    if r.pps <= 0.0 && r.secs > 0.0 {
        r.pps = r.sent as f64 / r.secs;
    }
    r
}

/// One replay of `stream` under `mode`. With `perf`, `perf stat -e
/// context-switches,cpu-migrations -p PID` watches the monitor during the
/// replay.
pub fn run(
    pair: &Pair,
    stream: &Stream,
    mode: &Mode,
    socket: &Path,
    perf: bool,
) -> anyhow::Result<Run> {
    let monitor = match &mode.binary {
        Some(bin) => Some(Monitor::start(
            pair,
            bin,
            &mode.args,
            &stream.monitor_args,
            socket,
        )?),
        None => None,
    };
    // The /proc window that matches perf's (perf attaches, then waits).
    let sp0 = monitor.as_ref().filter(|_| perf).map(Monitor::sample);
    let perf_child = match (&monitor, perf) {
        (Some(m), true) => Some(super::perf::Stat::start(m.pid)?),
        _ => None,
    };
    // After perf attached, so that both windows start together.
    let s0 = monitor.as_ref().map(Monitor::sample);
    let (tx0, rx0) = pair.drops();
    let soft0 = softnet_drops();
    let busy0 = machine_cpu();
    let replay = tcpreplay(pair, &stream.path)?;
    let busy1 = machine_cpu();
    let soft1 = softnet_drops();
    let perf_counts = perf_child.map(super::perf::Stat::finish).transpose()?;
    let sp1 = monitor.as_ref().filter(|_| perf).map(Monitor::sample);
    let (tx1, rx1) = pair.drops();
    let watched = match monitor {
        None => None,
        Some(m) => {
            let st = m.settle(Duration::from_secs(30))?;
            if super::interrupted() {
                bail!("interrupted");
            }
            let (s2, s3) = (st.drained, st.end);
            let s0 = s0.unwrap_or_default();
            let (counters, lines) = m.stop()?;
            let counts = Counts::parse(&counters).context("the monitor's final counters")?;
            Some(Watched {
                cpu_ns: s2.cpu_ns.saturating_sub(s0.cpu_ns),
                expiry_ns: s3.cpu_ns.saturating_sub(s2.cpu_ns),
                expiry_secs: st.end_after.saturating_sub(st.drained_after).as_secs_f64(),
                hwm_kb: s3.hwm_kb,
                counts,
                settled: st.settled,
                stdout_lines: lines,
                ctxt: s2.ctxt_since(&s0),
                perf: perf_counts.map(|(switches, migrations)| PerfFigures {
                    switches,
                    migrations,
                    threads: sp1.unwrap_or_default().ctxt_since(&sp0.unwrap_or_default()),
                }),
            })
        }
    };
    Ok(Run {
        stream: stream.name,
        mode: mode.label.clone(),
        packets: stream.packets,
        events: stream.events,
        replay,
        machine_ns: busy1.0.saturating_sub(busy0.0),
        softirq_ns: busy1.1.saturating_sub(busy0.1),
        monitor: watched,
        lost: (
            tx1 - tx0.min(tx1),
            rx1 - rx0.min(rx1),
            soft1.saturating_sub(soft0),
        ),
    })
}

/// One line of figures for a run.
pub fn line(rep: u32, r: &Run) -> String {
    let pk = r.packets.max(1) as f64;
    let mut s = format!(
        "rep {rep} {:<10} {:<16} {:>9.0} pps  machine {:>6.2} CPU-s {:>6.0} ns/pkt (softirq {:>5.0})",
        r.stream,
        r.mode,
        r.replay.pps,
        r.machine_ns as f64 / 1e9,
        r.machine_ns as f64 / pk,
        r.softirq_ns as f64 / pk
    );
    if let Some(m) = &r.monitor {
        let (v, i) = ctxt_total(&m.ctxt);
        s.push_str(&format!(
            "  monitor {:>5.2} CPU-s {:>5.0} ns/pkt {:>5.0} ns/ev  hwm {:>6.1} MB  drop {} ifdrop {} overflow {}  ctxt {v}v/{i}i ({:.3}/ev)",
            m.cpu_ns as f64 / 1e9,
            m.cpu_ns as f64 / pk,
            m.cpu_ns as f64 / r.events.max(1) as f64,
            m.hwm_kb as f64 / 1024.0,
            m.counts.drop,
            m.counts.ifdrop,
            m.counts.overflow,
            (v + i) as f64 / r.events.max(1) as f64,
        ));
        if m.expiry_secs > 0.5 {
            s.push_str(&format!(
                "  expiry +{:.2} CPU-s in {:.1} s",
                m.expiry_ns as f64 / 1e9,
                m.expiry_secs
            ));
        }
        if !m.settled {
            s.push_str("  (counters had not settled after 30 s)");
        }
    }
    if r.replay.failed > 0 || r.replay.sent != r.packets {
        s.push_str(&format!(
            "  tcpreplay sent {} failed {}",
            r.replay.sent, r.replay.failed
        ));
    }
    if r.lost != (0, 0, 0) {
        s.push_str(&format!(
            "  lost: veth tx {} rx {} backlog {}",
            r.lost.0, r.lost.1, r.lost.2
        ));
    }
    s
}

/// `MISMATCH` lines: what the monitor counted against what the stream holds.
pub fn check(rep: u32, stream: &Stream, r: &Run) -> Vec<String> {
    let Some(m) = &r.monitor else {
        return Vec::new();
    };
    let c = m.counts;
    let e = stream.expect;
    let mut out = Vec::new();
    let mut cmp = |what: &str, got: u64, want: u64| {
        if got != want {
            out.push(format!(
                "MISMATCH rep {rep} {} {}: {what} {got}, expected {want}",
                r.stream, r.mode
            ));
        }
    };
    cmp("success", c.success, e.success);
    cmp("reject", c.reject, e.reject);
    cmp("timeout", c.timeout, e.timeout);
    cmp("unreach", c.unreach, e.unreach);
    cmp("overflow", c.overflow, e.overflow);
    cmp("TX outcomes", c.tx, 0);
    cmp("pending", c.pending, 0);
    cmp("malformed", c.malformed, 0);
    cmp("late", c.late, 0);
    if m.stdout_lines != 1 {
        out.push(format!(
            "MISMATCH rep {rep} {} {}: {} stdout lines, expected 1 (the counters)",
            r.stream, r.mode, m.stdout_lines
        ));
    }
    if !out.is_empty() {
        out.push(format!(
            "  (lost on the way: drop {} ifdrop {} veth tx {} rx {} backlog {}; tcpreplay sent {} of {})",
            c.drop, c.ifdrop, r.lost.0, r.lost.1, r.lost.2, r.replay.sent, r.packets
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpreplay_4_4_output() {
        let text = "Actual: 870000 packets (63510000 bytes) sent in 2.31 seconds\n\
                    Rated: 27493506.4 Bps, 219.94 Mbps, 376623.37 pps\n\
                    Flows: 300000 flows, 129870.12 fps, 870000 unique flow packets, 0 unique non-flow packets\n\
                    Statistics for network device: tpkb1s\n\
                    \tSuccessful packets:        870000\n\
                    \tFailed packets:            2\n";
        let r = parse_tcpreplay(text, 9.0);
        assert_eq!(r.sent, 870_000);
        assert_eq!(r.failed, 2);
        assert!((r.secs - 2.31).abs() < 1e-9);
        assert!((r.pps - 376_623.37).abs() < 1e-6);
    }
}
