//! `cargo xtask mutants`: cargo-mutants on the code that decides verdicts
//! (the set and the test sets are in `.cargo/mutants.toml`).
//!
//! Every mutant of the shared crate rebuilds `tcpeek`, whose build script
//! would rebuild the eBPF object each time: it is built once here and
//! handed to the build script as a prebuilt object (`TCPEEK_EBPF_OBJECT`);
//! the unprivileged test sets never load it.

use std::process::Command;

use anyhow::{bail, Context};

use crate::{cargo, workspace_root};

/// The cargo-mutants release the exclusions were written against.
const CARGO_MUTANTS: &str = "27.1.0";

pub(crate) fn main(args: &[String]) -> anyhow::Result<()> {
    let cargo = cargo();
    let root = workspace_root()?;
    let have = Command::new(&cargo)
        .args(["mutants", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        crate::run(
            &cargo,
            &[
                "install",
                "--locked",
                "cargo-mutants",
                "--version",
                CARGO_MUTANTS,
            ],
        )?;
    }
    let object = ebpf_object(&cargo)?;
    // `cargo xtask mutants tcpeek-common ...`: one crate's run only.
    let (only, args) = match args.first() {
        Some(p) if RUNS.iter().any(|r| r.package == p) => (Some(p.as_str()), &args[1..]),
        _ => (None, args),
    };
    let mut failed = Vec::new();
    for run in RUNS.iter().filter(|r| only.is_none_or(|p| p == r.package)) {
        let output = format!("mutants.out.{}", run.package);
        let mut cmd = Command::new(&cargo);
        // One build at a time: rustc already spreads a build over both
        // cores, and two jobs measured no faster. The `mutants` profile
        // (Cargo.toml) builds without debug info.
        cmd.args(["mutants", "--jobs", "1", "--profile", "mutants"])
            .args(["--output", &output])
            .args(["--package", run.package, "--test-package", run.package])
            .args(["--re", run.mutants])
            .args(run.targets.iter().flat_map(|a| ["--cargo-arg", a]))
            .args(run.test_args.iter().flat_map(|a| ["--cargo-test-arg", a]))
            .args(args)
            .env("TCPEEK_EBPF_OBJECT", &object)
            .current_dir(&root);
        eprintln!("xtask: mutants of {}, tested by {}", run.package, run.tests);
        let status = cmd.status().context("running cargo mutants")?;
        // cargo-mutants prints its summary line either way, and exits 2
        // when mutants were missed, 3 when some timed out (even if others
        // were missed), 4 when the unmutated tree fails its tests. A
        // mutant that makes the tests hang (an expiry loop that no longer
        // removes what it walks) is caught: the suite never passes with
        // it. What decides is the list of missed mutants.
        let dir = root.join(&output).join("mutants.out");
        let missed = std::fs::read_to_string(dir.join("missed.txt")).unwrap_or_default();
        let missed = missed.lines().filter(|l| !l.is_empty()).count();
        match status.code() {
            Some(0 | 2 | 3) if missed == 0 => {}
            Some(2 | 3) => failed.push(format!(
                "{}: {missed} missed, see {output}/mutants.out/missed.txt",
                run.package
            )),
            _ => failed.push(format!("{}: cargo mutants {status}", run.package)),
        }
    }
    if !failed.is_empty() {
        bail!("cargo mutants: {}", failed.join("; "));
    }
    Ok(())
}

/// One cargo-mutants run: the mutants of one crate against its tests.
struct Run {
    package: &'static str,
    /// Regular expression on mutant names (which start with the file).
    mutants: &'static str,
    /// Which test targets are built and run (cargo-mutants passes these
    /// to both `cargo test --no-run` and `cargo test`; without them the
    /// build phase would build every integration test of the crate).
    targets: &'static [&'static str],
    /// Arguments for the test binaries.
    test_args: &'static [&'static str],
    tests: &'static str,
}

const RUNS: [Run; 2] = [
    Run {
        package: "tcpeek-common",
        mutants: "^tcpeek-common/",
        targets: &["--lib"],
        test_args: &[],
        tests: "its unit tests",
    },
    Run {
        package: "tcpeek",
        mutants: "^tcpeek/",
        // The unit tests only: the fixtures' file mode would rebuild the
        // library and both binaries for every mutant. The capture file
        // reader is not examined, and its randomized test is the slowest.
        targets: &["--lib"],
        test_args: &["--", "--skip", "capture::file::"],
        tests: "its unit tests",
    },
];

/// Builds tcpeek (and with it the eBPF object) and copies the object out
/// of the build script's output directory.
fn ebpf_object(cargo: &str) -> anyhow::Result<std::path::PathBuf> {
    let root = workspace_root()?;
    let out = Command::new(cargo)
        .args([
            "build",
            "--package",
            "tcpeek",
            "--lib",
            "--message-format=json",
        ])
        .current_dir(&root)
        .output()
        .context("building tcpeek")?;
    if !out.status.success() {
        bail!(
            "building tcpeek failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out_dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "build-script-executed")
        .filter(|m| {
            m["package_id"]
                .as_str()
                .is_some_and(|id| id.contains("/tcpeek#") || id.contains("tcpeek@"))
        })
        .filter_map(|m| m["out_dir"].as_str().map(str::to_string))
        .next_back()
        .context("cargo reported no build script output for tcpeek")?;
    let built = std::path::Path::new(&out_dir).join("tcpeek-ebpf");
    // Not target/mutants: that is the `mutants` profile's output.
    let dir = root.join("target").join("mutants-ebpf");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join("tcpeek-ebpf.o");
    std::fs::copy(&built, &copy)
        .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}
