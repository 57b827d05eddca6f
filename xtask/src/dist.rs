//! `cargo xtask dist`: the release binaries, their man pages and shell
//! completions (generated from the clap definitions), the systemd unit,
//! and a Debian package of all of them (cargo-deb, configured in
//! tcpeek/Cargo.toml), in target/dist/.
//!
//! [`check_package`] is what `cargo xtask test` does with the package as
//! root: install it with dpkg, run what it installed, remove it, and check
//! that nothing is left.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};

use crate::{cargo, run, workspace_root};

/// The cargo-deb release the package metadata was written against.
const CARGO_DEB: &str = "3.8.0";

/// Builds everything; returns the package's path.
pub(crate) fn main() -> anyhow::Result<PathBuf> {
    let cargo = cargo();
    let root = workspace_root()?;
    crate::build_release()?;
    let dist = root.join("target").join("dist");
    let bin = dist.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    for name in ["tcpeek", "tcpeekstat"] {
        let from = root.join("target/release").join(name);
        std::fs::copy(&from, bin.join(name))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    let dir = dist.to_str().context("target/dist is not UTF-8")?;
    run(
        &cargo,
        &[
            "run",
            "--quiet",
            "--release",
            "--package",
            "tcpeek",
            "--example",
            "dist_docs",
            "--",
            dir,
        ],
    )?;
    // The unit as packaged: the binary is in /usr/bin there.
    let unit = std::fs::read_to_string(root.join("deploy/systemd/tcpeek@.service"))?;
    let systemd = dist.join("systemd");
    std::fs::create_dir_all(&systemd)?;
    std::fs::write(
        systemd.join("tcpeek@.service"),
        unit.replace("/usr/local/bin/tcpeek", "/usr/bin/tcpeek"),
    )?;

    let have = Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        run(
            &cargo,
            &["install", "--locked", "cargo-deb", "--version", CARGO_DEB],
        )?;
    }
    let out = Command::new(&cargo)
        .args([
            "deb",
            "--package",
            "tcpeek",
            "--no-build",
            "--strip",
            "--output",
        ])
        .arg(&dist)
        .current_dir(&root)
        .output()
        .context("running cargo deb")?;
    ensure!(
        out.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // cargo deb prints the package's path.
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let deb = PathBuf::from(deb.lines().last().unwrap_or_default());
    ensure!(
        deb.exists(),
        "cargo deb made no package ({})",
        deb.display()
    );
    eprintln!("xtask: {}", deb.display());
    Ok(deb)
}

fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}):\n{text}",
            args.join(" "),
            out.status
        );
    }
    Ok(text)
}

fn installed() -> bool {
    sh("dpkg-query", &["-W", "-f=${Status}", "tcpeek"])
        .is_ok_and(|s| s.contains("install ok installed"))
}

/// As root: installs `deb`, runs what it installed, removes it, and
/// checks that its files are gone. A tcpeek package installed before is
/// left alone (the check refuses to run).
pub(crate) fn check_package(deb: &Path) -> anyhow::Result<()> {
    ensure!(
        !installed(),
        "a tcpeek package is installed already: not replacing it to test this one"
    );
    let deb = deb.to_str().context("the package path is not UTF-8")?;
    sh("dpkg", &["-i", deb])?;
    // Whatever happens next, the package goes again.
    let tried = (|| -> anyhow::Result<()> {
        let v = sh("/usr/bin/tcpeek", &["--version"])?;
        ensure!(v.starts_with("tcpeek "), "tcpeek --version: {v}");
        let fixture = workspace_root()?.join("tests/fixtures/success.pcap");
        let run = sh(
            "/usr/bin/tcpeek",
            &["-q", "-r", fixture.to_str().context("path")?],
        )?;
        ensure!(run.contains("Success: 4 session"), "tcpeek -r: {run}");
        // The unit's command line, with the shipped config file, checks.
        let fixture = fixture.to_str().context("path")?;
        let check = sh(
            "/usr/bin/tcpeek",
            &[
                "--check",
                "--config",
                "/etc/tcpeek/tcpeek.toml",
                "-r",
                fixture,
            ],
        )?;
        ensure!(
            check.contains("configuration OK"),
            "tcpeek --check: {check}"
        );
        let conffiles = sh("dpkg-query", &["-W", "-f=${Conffiles}", "tcpeek"])?;
        ensure!(
            conffiles.contains("/etc/tcpeek/tcpeek.toml"),
            "/etc/tcpeek/tcpeek.toml is not a conffile: {conffiles}"
        );
        sh("/usr/bin/tcpeekstat", &["--help"])?;
        let page = sh("man", &["-P", "cat", "tcpeek"])?;
        ensure!(
            page.contains("--metrics") || page.contains("\u{2010}\u{2010}metrics"),
            "man tcpeek:\n{page}"
        );
        sh("man", &["-P", "cat", "tcpeekstat"])?;
        let verify = sh(
            "systemd-analyze",
            &["verify", "/lib/systemd/system/tcpeek@lo.service"],
        )?;
        ensure!(verify.trim().is_empty(), "systemd-analyze verify: {verify}");
        for f in [
            "/usr/share/bash-completion/completions/tcpeek",
            "/usr/share/zsh/vendor-completions/_tcpeek",
            "/usr/share/fish/vendor_completions.d/tcpeek.fish",
        ] {
            ensure!(Path::new(f).exists(), "{f} not installed");
        }
        Ok(())
    })();
    let removed = sh("dpkg", &["--purge", "tcpeek"]);
    tried?;
    removed?;
    ensure!(!installed(), "tcpeek is still installed after dpkg --purge");
    for f in [
        "/usr/bin/tcpeek",
        "/usr/bin/tcpeekstat",
        "/lib/systemd/system/tcpeek@.service",
        "/etc/tcpeek/tcpeek.toml",
    ] {
        ensure!(!Path::new(f).exists(), "{f} is left after dpkg --purge");
    }
    eprintln!("xtask: the package installs, runs, renders its man pages, verifies its unit and removes cleanly");
    Ok(())
}
