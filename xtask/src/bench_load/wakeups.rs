//! The wakeup question: does the eBPF backend wake userspace for (almost)
//! every ring-buffer submit? Context switches per event on the handshake
//! stream from the runs already made, each monitor idle (what it costs
//! with no traffic), and one extra replay per mode under `perf stat`.

use std::path::Path;

use super::monitor::{self, Mode};
use super::netns::Pair;
use super::run::{self, Run};
use super::streams::Stream;
use super::{check_interrupt, report};

/// The wakeup question on the handshake stream: context switches per event
/// of every monitor mode (from /proc, over the repetitions above), then one
/// extra replay per mode under `perf stat` (not part of the figures above:
/// perf itself costs a little on every switch).
pub fn report(
    pair: &Pair,
    streams: &[Stream],
    modes: &[Mode],
    runs: &[Run],
    socket: &Path,
    perf_ok: bool,
    quick: bool,
) -> anyhow::Result<()> {
    let Some(hs) = streams.iter().find(|s| s.name == "handshake") else {
        return Ok(());
    };
    println!();
    println!(
        "== wakeups, handshake stream ({} events): context switches of the monitor, from /proc/PID/task/*/status",
        hs.events
    );
    for m in modes.iter().filter(|m| m.binary.is_some()) {
        let per: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.stream == hs.name && r.mode == m.label)
            .filter_map(|r| r.monitor.as_ref())
            .map(|w| {
                let (v, i) = monitor::ctxt_total(&w.ctxt);
                (v as f64 / hs.events as f64, i as f64 / hs.events as f64)
            })
            .collect();
        let v = report::spread(per.iter().map(|p| p.0).collect());
        let i = report::spread(per.iter().map(|p| p.1).collect());
        if let (Some(v), Some(i)) = (v, i) {
            println!(
                "{:<16} voluntary/ev {:.4}/{:.4}/{:.4}  nonvoluntary/ev {:.4}/{:.4}/{:.4}  (min/med/max)",
                m.label, v.0, v.1, v.2, i.0, i.1, i.2
            );
        }
    }
    idle(pair, modes, socket, if quick { 1.0 } else { 2.0 })?;
    if !perf_ok {
        println!("perf stat unavailable: no perf figures");
        return Ok(());
    }
    println!("perf stat -e context-switches,cpu-migrations -p PID during the replay (one extra run per mode):");
    for m in modes.iter().filter(|m| m.binary.is_some()) {
        check_interrupt()?;
        match run::run(pair, hs, m, socket, true) {
            Ok(r) => {
                let Some(w) = &r.monitor else { continue };
                let Some(p) = &w.perf else {
                    continue;
                };
                let (cs, mig) = (p.switches, p.migrations);
                let ev = hs.events as f64;
                let per_thread: Vec<String> = p
                    .threads
                    .iter()
                    .filter(|t| t.1 + t.2 > 0)
                    .map(|t| format!("{} {}v/{}i", t.0, t.1, t.2))
                    .collect();
                println!(
                    "{:<16} {:>9.0} pps  context-switches {cs} ({:.4}/ev)  cpu-migrations {mig}  /proc over the same window: {}  monitor {:.0} ns/ev",
                    m.label,
                    r.replay.pps,
                    cs as f64 / ev,
                    per_thread.join(", "),
                    w.cpu_ns as f64 / ev,
                );
            }
            Err(e) => {
                check_interrupt()?;
                println!("ERROR perf run {}: {e:#}", m.label);
            }
        }
    }
    Ok(())
}

/// Each monitor with no traffic at all for `secs`: its CPU (schedstat,
/// exact) and context switches per second, what every window above
/// contains on top of the traffic's cost (nothing polls the socket
/// meanwhile).
fn idle(pair: &Pair, modes: &[Mode], socket: &Path, secs: f64) -> anyhow::Result<()> {
    println!("idle monitor, no traffic, {secs} s:");
    for m in modes {
        let Some(bin) = &m.binary else { continue };
        check_interrupt()?;
        let r = (|| -> anyhow::Result<(f64, f64, Vec<String>)> {
            let mon = monitor::Monitor::start(pair, bin, &m.args, &[], socket)?;
            std::thread::sleep(std::time::Duration::from_millis(500));
            let s0 = mon.sample();
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            let s1 = mon.sample();
            mon.stop()?;
            let threads = s1.ctxt_since(&s0);
            let (v, i) = monitor::ctxt_total(&threads);
            let names = threads
                .iter()
                .filter(|t| t.1 + t.2 > 0)
                .map(|t| format!("{} {:.0}/s", t.0, (t.1 + t.2) as f64 / secs))
                .collect();
            Ok((
                s1.exec_ns.saturating_sub(s0.exec_ns) as f64 / 1e6 / secs,
                (v + i) as f64 / secs,
                names,
            ))
        })();
        match r {
            Ok((ms, sw, names)) => println!(
                "{:<16} {ms:.1} ms CPU/s  {sw:.0} context switches/s ({})",
                m.label,
                names.join(", ")
            ),
            Err(e) => {
                check_interrupt()?;
                println!("ERROR idle {}: {e:#}", m.label);
            }
        }
    }
    Ok(())
}
