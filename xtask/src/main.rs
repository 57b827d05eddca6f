//! Project tasks, run as `cargo xtask <task>` (alias in .cargo/config.toml).
//!
//! Each task is a subcommand with its own module; `main` only dispatches.
//! `demo` and `test` are the README's two commands: both start with the
//! idempotent set-up script, so they work on a fresh machine.

mod bench_load;
mod dist;
mod fixtures;
mod mutants;
mod trace;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  demo [TCPEEK ARGS...]  set up, build, run tcpeek on the bundled example
                         capture (or with the given arguments, e.g. -i eth0)
  test                   set up, then check formatting, lints and run every test
  fixtures               regenerate the capture files in tests/fixtures/
  dist                   build the release binaries, their man pages and shell
                         completions (from the clap definitions), the systemd
                         unit and a .deb of them (cargo-deb) in target/dist/
  mutants [CRATE] [ARGS...]
                         cargo-mutants on the verdict code (.cargo/mutants.toml),
                         against the unprivileged tests: tcpeek-common, then
                         tcpeek, or CRATE only; ARGS go to cargo mutants
                         (e.g. -F Opening, --iterate)
  bench-load [OPTIONS]   as root: replay generated captures across a veth pair
                         and run a connection storm, with no monitor and with
                         each capture backend; print rates, CPU, RSS, drops
                         and any count MISMATCH (asserts nothing)
      --reps N           repetitions, modes interleaved in each (default 5)
      --tcpeek PATH      binary to measure (default: target/release/tcpeek,
                         built first)
      --baseline PATH    a second binary whose modes run too, as \"before\"
      --storm-secs S     length of each storm run (default 10)
      --quick            small captures, 1 rep, 2 s storms: a smoke test
      --only PARTS       some of handshake,flood,flood-cap,data,mixed,storm
  soak [--minutes M] [--backend ebpf|pcap|both] [--tcpeek PATH]
                         as root: a live tcpeek per backend in turn on mixed
                         namespace traffic (connections, refusals, ICMP,
                         timeouts, a SYN flood a minute, 1500 idle socket
                         clients a minute) for M minutes each (default 30):
                         RSS, CPU, descriptors, GET time and counts every
                         10 s; flags growth or a mismatch (exit 1)
  fuzz [--inputs N] [--seed S]
                         the randomized decoder and engine runs
                         (tcpeek/tests/fuzz.rs) in release mode, N inputs
                         each (default 50000000), from seed S";

/// The bundled example and the addresses that are "this host" in it.
const DEMO: [&str; 7] = [
    "-r",
    "tests/fixtures/mixed.pcap",
    "--local",
    "10.0.0.1",
    "--local",
    "fd00::1",
    "--icmp",
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    match task.as_deref() {
        Some("fixtures") => {
            no_args("fixtures", &rest)?;
            let dir = workspace_root()?.join("tests").join("fixtures");
            fixtures::run(&dir).with_context(|| format!("writing fixtures to {}", dir.display()))
        }
        Some("demo") => demo(&rest),
        Some("dist") => {
            no_args("dist", &rest)?;
            dist::main().map(drop)
        }
        Some("bench-load") => bench_load::main(&rest),
        Some("mutants") => mutants::main(&rest),
        Some("fuzz") => fuzz(&rest),
        Some("soak") => bench_load::soak::main(&rest),
        Some("test") => {
            no_args("test", &rest)?;
            test()
        }
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task '{other}'\n\n{USAGE}"),
    }
}

/// `fuzz`: tcpeek/tests/fuzz.rs at scale, timed.
fn fuzz(rest: &[String]) -> anyhow::Result<()> {
    let mut inputs = "50000000".to_string();
    let mut seed = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let value = || -> anyhow::Result<String> {
            Ok(it
                .clone()
                .next()
                .with_context(|| format!("{a} needs a value\n\n{USAGE}"))?
                .clone())
        };
        match a.as_str() {
            "--inputs" => inputs = value()?,
            "--seed" => seed = Some(value()?),
            other => bail!("fuzz: unknown option '{other}'\n\n{USAGE}"),
        }
        it.next();
    }
    let n: u64 = inputs
        .replace('_', "")
        .parse()
        .with_context(|| format!("--inputs '{inputs}' is not a number"))?;
    let start = std::time::Instant::now();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "test",
        "--release",
        "-p",
        "tcpeek",
        "--test",
        "fuzz",
        "--",
        "--nocapture",
    ])
    .current_dir(workspace_root()?)
    .env("TCPEEK_FUZZ_INPUTS", n.to_string());
    if let Some(s) = &seed {
        cmd.env("TCPEEK_FUZZ_SEED", s);
    }
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!("the fuzz run failed ({status}): its seed and count reproduce it");
    }
    eprintln!(
        "xtask fuzz: {n} decoder frames and {n} engine events in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn no_args(task: &str, rest: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = rest.first() {
        bail!("'{task}' takes no arguments, got '{arg}'\n\n{USAGE}");
    }
    Ok(())
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> anyhow::Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}

/// Runs `program args` in the workspace root; fails naming the command.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let root = workspace_root()?;
    eprintln!("xtask: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(&root)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The cargo that runs us.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Installs what building and testing need (scripts/setup.sh, as root).
fn setup() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!(
            "xtask: not root: skipping scripts/setup.sh (run it as root once on a fresh machine)"
        );
        return Ok(());
    }
    run("bash", &["scripts/setup.sh"])
}

/// The release binaries. Quiet: a newcomer should see the demo, not the
/// compiler's progress (errors and warnings still show; `run` says what it
/// runs).
fn build_release() -> anyhow::Result<()> {
    run(
        &cargo(),
        &[
            "build",
            "--quiet",
            "--release",
            "--package",
            "tcpeek",
            "--bins",
        ],
    )
}

fn demo(args: &[String]) -> anyhow::Result<()> {
    setup()?;
    build_release()?;
    let args: Vec<&str> = if args.is_empty() {
        DEMO.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    run("target/release/tcpeek", &args)
}

fn test() -> anyhow::Result<()> {
    setup()?;
    let cargo = cargo();
    run(&cargo, &["fmt", "--all", "--check"])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The kernel side, compiled for the host to be linted (there is no
    // clippy for the bpf toolchain).
    run(
        &cargo,
        &[
            "clippy",
            "--package",
            "tcpeek-ebpf",
            "--features",
            "host-lint",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Tests that cannot run here (no root, a kernel feature missing)
    // return early and record it (tcpeek-testkit's `skip`); cargo counts
    // them as passed, so take them out of that count.
    let skip_log = workspace_root()?.join("target").join("xtask-skipped.log");
    let _ = std::fs::remove_file(&skip_log);
    let (passed, failed, ignored) = run_tests(&cargo, &["test", "--workspace"], &skip_log)?;
    let skipped_lines = std::fs::read_to_string(&skip_log).unwrap_or_default();
    let skipped = skipped_lines.lines().count() as u64;
    for line in skipped_lines.lines() {
        println!("xtask: {line}");
    }
    let passed = passed.saturating_sub(skipped);
    let skipped = skipped + ignored;
    // One closing line for the whole suite: cargo's own last line is that of
    // its last test binary (often doc tests with nothing in them).
    println!("xtask test: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        bail!("{failed} tests failed");
    }
    // The package: built, installed, run and removed (root only: dpkg).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let deb = dist::main()?;
        dist::check_package(&deb)?;
    } else {
        println!("xtask: not root: the Debian package was not built and tried");
    }
    Ok(())
}

/// Runs `cargo test ...`, passing its output through, and adds up its
/// `test result:` lines. Skipped tests are recorded in `skip_log`.
fn run_tests(cargo: &str, args: &[&str], skip_log: &Path) -> anyhow::Result<(u64, u64, u64)> {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("xtask: {cargo} {}", args.join(" "));
    let mut child = Command::new(cargo)
        .args(args)
        .env(tcpeek_testkit::SKIP_LOG_ENV, skip_log)
        .current_dir(workspace_root()?)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cargo}"))?;
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    let out = child.stdout.take().context("cargo test's stdout")?;
    let mut stdout = std::io::stdout().lock();
    for line in BufReader::new(out).lines() {
        let line = line?;
        writeln!(stdout, "{line}")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            // "ok. 155 passed; 0 failed; 1 ignored; 0 measured; ..."
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    let n: u64 = n.parse().unwrap_or(0);
                    match what {
                        "passed" => passed += n,
                        "failed" => failed += n,
                        "ignored" => ignored += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{cargo} {}` failed ({status})", args.join(" "));
    }
    Ok((passed, failed, ignored))
}
