//! The man pages and shell completions generated from the clap
//! definitions: man renders them, bash parses its completions, and each
//! carries the flags.

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
            .arg(dir.path(&format!("man/{name}.1")))
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
