//! `cargo xtask bench-load`: what each capture backend costs on a busy
//! host, side by side in one run. Prints figures; asserts nothing.
//!
//! Part 1 replays generated captures (streams.rs) with tcpreplay at top
//! speed across a veth pair between two namespaces of its own (netns.rs)
//! while a tcpeek watches the receiving end (monitor.rs, run.rs). Part 2 is
//! a connection storm through the real kernel (storm.rs). Modes — no
//! monitor, `--backend pcap`, `--backend ebpf`, `--backend ebpf --xdp`, and
//! the same three of a `--baseline` binary — are interleaved within each
//! repetition, so that drift of the machine spreads over all of them.
//! Counts are checked against what was sent, and a difference is printed
//! on a line starting with `MISMATCH`, never turned into a failure.

mod monitor;
mod netns;
mod perf;
mod report;
mod run;
pub mod soak;
mod storm;
mod streams;
mod wakeups;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};

use monitor::Mode;
use streams::{Sizes, Stream};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C (SIGINT) or SIGTERM arrived: every loop returns early,
/// and the guards' `Drop` removes the namespaces and stops the monitor.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

struct Options {
    reps: u32,
    tcpeek: Option<PathBuf>,
    baseline: Option<PathBuf>,
    storm_secs: f64,
    quick: bool,
    /// Parts to run (stream names, "storm"); empty: all.
    only: Vec<String>,
}

/// What `--only` accepts.
const PARTS: [&str; 6] = ["handshake", "flood", "flood-cap", "data", "mixed", "storm"];

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut o = Options {
            reps: 5,
            tcpeek: None,
            baseline: None,
            storm_secs: 10.0,
            quick: false,
            only: Vec::new(),
        };
        let (mut reps, mut storm) = (None, None);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value"))
            };
            match a.as_str() {
                "--reps" => {
                    let v = value("--reps")?;
                    reps = Some(v.parse::<u32>().ok().filter(|n| *n >= 1).with_context(|| {
                        format!("--reps {v}: expected a whole number of repetitions, at least 1")
                    })?);
                }
                "--storm-secs" => {
                    let v = value("--storm-secs")?;
                    storm = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|s| *s > 0.0 && *s <= 600.0)
                            .with_context(|| {
                                format!(
                                    "--storm-secs {v}: expected seconds, more than 0, at most 600"
                                )
                            })?,
                    );
                }
                "--tcpeek" => o.tcpeek = Some(value("--tcpeek")?.into()),
                "--baseline" => o.baseline = Some(value("--baseline")?.into()),
                "--quick" => o.quick = true,
                "--only" => {
                    for part in value("--only")?.split(',') {
                        if !PARTS.contains(&part) {
                            bail!("--only {part}: expected a comma-separated list of {}", PARTS.join(", "));
                        }
                        o.only.push(part.to_string());
                    }
                }
                other => bail!(
                    "bench-load: unknown argument '{other}' \
                     (accepted: --reps N, --tcpeek PATH, --baseline PATH, --storm-secs S, --quick, --only PARTS)"
                ),
            }
        }
        if o.quick {
            o.reps = 1;
            o.storm_secs = 2.0;
        }
        o.reps = reps.unwrap_or(o.reps);
        o.storm_secs = storm.unwrap_or(o.storm_secs);
        Ok(o)
    }

    fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tcpeek binary to run: `given`, or the release build, built first.
pub fn release_tcpeek(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    crate::run(
        &crate::cargo(),
        &["build", "--release", "-p", "tcpeek", "--bins"],
    )?;
    Ok(crate::workspace_root()?.join("target/release/tcpeek"))
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let result = bench(args);
    // The guards inside `bench` have run: namespaces and monitor are gone.
    if interrupted() {
        eprintln!("bench-load: interrupted; namespaces, monitor and captures removed");
        std::process::exit(130);
    }
    result
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    let opts = Options::parse(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-load: needs root (network namespaces, packet capture, tcpreplay)");
        std::process::exit(1);
    }
    install_signal_handlers();
    let tmp = TempDir(std::env::temp_dir().join(format!("tcpeek-bench-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).context("creating the scratch directory")?;
    ensure_installed("tcpreplay", "tcpreplay", &tmp.0)?;
    let (perf_ok, perf_hw) =
        if which("perf") || ensure_installed("perf", "linux-perf", &tmp.0).is_ok() {
            perf::available()
        } else {
            (false, false)
        };
    let tcpeek = release_tcpeek(opts.tcpeek.as_deref())?;
    let mut modes = vec![Mode {
        label: "none".into(),
        binary: None,
        args: Vec::new(),
    }];
    modes.extend(Mode::of(&tcpeek, ""));
    if let Some(b) = &opts.baseline {
        modes.extend(Mode::of(b, "before "));
    }
    header(&opts, args, &tcpeek, perf_ok, perf_hw)?;
    let started = Instant::now();

    let t = Instant::now();
    let sizes = if opts.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    let mut streams = streams::generate(&tmp.0, sizes, |name| opts.runs(name))?;
    streams.retain(|s| opts.runs(s.name));
    for s in &streams {
        println!(
            "stream {:<10} {} packets, {} events: {}",
            s.name, s.packets, s.events, s.about
        );
    }
    println!("captures generated in {:.1} s", t.elapsed().as_secs_f64());

    let pair = netns::Pair::new()?;
    let socket = tmp.0.join("tcpeek.sock");
    let labels: Vec<String> = modes.iter().map(|m| m.label.clone()).collect();

    // Part 1.
    let t = Instant::now();
    let mut runs = Vec::new();
    let mut mismatches = 0;
    for rep in 1..=opts.reps {
        for s in &streams {
            for m in &modes {
                if s.only_modes.is_some_and(|o| !o.contains(&m.label.as_str())) {
                    continue;
                }
                check_interrupt()?;
                match run::run(&pair, s, m, &socket, false) {
                    Ok(r) => {
                        println!("{}", run::line(rep, &r));
                        for l in run::check(rep, s, &r) {
                            mismatches += u64::from(l.starts_with("MISMATCH"));
                            println!("{l}");
                        }
                        runs.push(r);
                    }
                    Err(e) => {
                        check_interrupt()?;
                        println!("ERROR rep {rep} {} {}: {e:#}", s.name, m.label);
                    }
                }
            }
        }
    }
    println!("part 1 took {:.0} s", t.elapsed().as_secs_f64());
    for s in &streams {
        let rate = none_median(&runs, &streams, s, |r| r.replay.pps);
        let machine = none_median(&runs, &streams, s, |r| {
            r.machine_ns as f64 / r.packets.max(1) as f64
        });
        report::stream_table(s, &runs, &labels, rate, machine);
    }

    wakeups::report(&pair, &streams, &modes, &runs, &socket, perf_ok, opts.quick)?;

    // Part 2.
    let mut storms = Vec::new();
    if opts.runs("storm") {
        mismatches += storm_part(&opts, &pair, &modes, &socket, &mut storms)?;
        report::storm_table(&storms, &labels);
    }
    println!();
    println!(
        "bench-load: {} replay runs, {} storm runs, {mismatches} MISMATCH lines, {:.0} s, done at {}",
        runs.len(),
        storms.len(),
        started.elapsed().as_secs_f64(),
        utc(now_secs())
    );
    Ok(())
}

/// The storm in every mode, interleaved; returns the MISMATCH lines.
fn storm_part(
    opts: &Options,
    pair: &netns::Pair,
    modes: &[Mode],
    socket: &Path,
    storms: &mut Vec<storm::StormRun>,
) -> anyhow::Result<u64> {
    let mut mismatches = 0;
    let t = Instant::now();
    println!();
    println!("storm: {} s per run, {} reps", opts.storm_secs, opts.reps);
    for rep in 1..=opts.reps {
        for m in modes {
            check_interrupt()?;
            match storm::run(pair, m, socket, opts.storm_secs) {
                Ok(r) => {
                    println!("{}", storm::line(rep, &r));
                    for l in storm::check(rep, &r) {
                        mismatches += u64::from(l.starts_with("MISMATCH"));
                        println!("{l}");
                    }
                    storms.push(r);
                }
                Err(e) => {
                    check_interrupt()?;
                    println!("ERROR rep {rep} storm {}: {e:#}", m.label);
                }
            }
        }
    }
    println!("part 2 took {:.0} s", t.elapsed().as_secs_f64());
    Ok(mismatches)
}

pub fn check_interrupt() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// The median of `f` over the no-monitor runs of the capture `s` replays
/// (the capped flood shares the flood's file and its no-monitor runs).
fn none_median(
    runs: &[run::Run],
    streams: &[Stream],
    s: &Stream,
    f: impl Fn(&run::Run) -> f64,
) -> Option<f64> {
    let names: Vec<&str> = streams
        .iter()
        .filter(|o| o.path == s.path)
        .map(|o| o.name)
        .collect();
    report::spread(
        runs.iter()
            .filter(|r| r.monitor.is_none() && names.contains(&r.stream))
            .map(f)
            .collect(),
    )
    .map(|x| x.1)
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian's `package` when `tool` is missing; apt's output goes to
/// a log file, printed only if the install fails.
fn ensure_installed(tool: &str, package: &str, dir: &Path) -> anyhow::Result<()> {
    if which(tool) {
        return Ok(());
    }
    let log = dir.join(format!("apt-{package}.log"));
    println!(
        "bench-load: installing {package} with apt-get (log: {})",
        log.display()
    );
    let apt = |args: &[&str]| -> anyhow::Result<bool> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        Ok(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .context("running apt-get")?
            .success())
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    // An old or missing package list: update once and try again.
    let ok = apt(&install)? || (apt(&["update"])? && apt(&install)?);
    if !ok {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("apt-get install {package} failed:\n{text}");
    }
    Ok(())
}

/// What was run, on what, when.
fn header(
    opts: &Options,
    args: &[String],
    tcpeek: &Path,
    perf_ok: bool,
    perf_hw: bool,
) -> anyhow::Result<()> {
    let describe = |p: &Path| -> anyhow::Result<String> {
        let md = std::fs::metadata(p).with_context(|| format!("tcpeek binary {}", p.display()))?;
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Ok(format!(
            "{} ({} bytes, modified {})",
            p.display(),
            md.len(),
            utc(mtime)
        ))
    };
    let now = now_secs();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "bench-load at {} on Linux {}, {} CPUs; {} reps{}",
        utc(now),
        kernel.trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        opts.reps,
        if opts.quick {
            " (--quick: small captures)"
        } else {
            ""
        }
    );
    println!("command: cargo xtask bench-load {}", args.join(" "));
    println!("tcpeek:   {}", describe(tcpeek)?);
    if let Some(b) = &opts.baseline {
        println!("baseline: {}", describe(b)?);
        if std::fs::read(b).ok() == std::fs::read(tcpeek).ok() {
            println!(
                "note: the baseline is byte-for-byte the same binary: 'before' rows measure noise"
            );
        }
    }
    println!(
        "perf: {}",
        match (perf_ok, perf_hw) {
            (true, true) => "software and hardware counters",
            (true, false) =>
                "software counters only (no hardware counters: instructions not supported)",
            _ => "unavailable",
        }
    );
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DD HH:MM:SS UTC` from seconds since the epoch (civil-from-days,
/// H. Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let s = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_of_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_661), "2000-02-29 01:01:01 UTC");
    }
}
