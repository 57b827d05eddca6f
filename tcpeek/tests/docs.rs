//! What `cargo xtask dist` ships: the man pages and shell completions
//! generated from the clap definitions (man renders them, bash parses its
//! completions, each carries the flags), and the systemd unit
//! (`systemd-analyze verify` is silent about it, `systemd-analyze
//! security` rates it OK or better).

use std::process::Command;

use tcpeek_testkit::TempDir;

#[test]
fn man_renders_both_pages_with_every_flag() {
    let dir = TempDir::new("docs-man");
    tcpeek::cli::docs::write_all(&dir.0).unwrap();
    for (name, flags) in [
        (
            "tcpeek",
            &["--metrics", "--otlp", "--max-sessions", "--icmp"][..],
        ),
        ("tcpeekstat", &["--latency", "--watch", "--gmetric"][..]),
    ] {
        let out = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(dir.path(&format!("man/man1/{name}.1")))
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(page.contains("NAME") && page.contains(name), "{page}");
        for f in flags {
            // man renders hyphens as such or as U+2010.
            let plain = page.replace('\u{2010}', "-");
            assert!(plain.contains(f), "{name}: {f} missing:\n{page}");
        }
    }
}

#[test]
fn completions_parse_and_know_the_flags() {
    let dir = TempDir::new("docs-completions");
    let files = tcpeek::cli::docs::write_all(&dir.0).unwrap();
    assert_eq!(
        files.len(),
        8,
        "2 man pages, 3 shells x 2 commands: {files:?}"
    );
    for name in ["tcpeek", "tcpeekstat"] {
        let bash = dir.path(&format!("completions/{name}"));
        let out = Command::new("bash").arg("-n").arg(&bash).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for file in [name.to_string(), format!("_{name}"), format!("{name}.fish")] {
            let text = std::fs::read_to_string(dir.path(&format!("completions/{file}"))).unwrap();
            assert!(text.contains("socket"), "{file}: no --socket");
        }
    }
    let bash = std::fs::read_to_string(dir.path("completions/tcpeek")).unwrap();
    assert!(bash.contains("--metrics-buckets") && bash.contains("--otlp-interval"));
}

#[test]
fn the_systemd_unit_verifies_and_rates_ok() {
    let dir = TempDir::new("docs-unit");
    tcpeek::cli::docs::write_all(&dir.0).unwrap();
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/tcpeek@.service"),
    )
    .unwrap();
    // Where the binary under test is, instead of where it is installed.
    assert!(unit.contains("ExecStart=/usr/local/bin/tcpeek "));
    let unit = unit.replace("/usr/local/bin/tcpeek", env!("CARGO_BIN_EXE_tcpeek"));
    let path = dir.path("tcpeek@.service");
    std::fs::write(&path, unit).unwrap();
    let instance = dir.path("tcpeek@lo.service");
    // verify also checks that Documentation=man:tcpeek(1) opens.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .env("MANPATH", dir.path("man"))
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&instance)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let overall = said
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no rating:\n{said}"));
    let level: f64 = overall
        .split(": ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{overall}"));
    assert!(level < 5.0, "exposure {level} is worse than OK: {overall}");
    assert!(
        overall.contains("OK") || overall.contains("SAFE") || overall.contains("PERFECT"),
        "{overall}"
    );
}
