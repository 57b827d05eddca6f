//! What `cargo xtask dist` ships: the man pages and shell completions
//! generated from the clap definitions (man renders them, bash parses its
//! completions, each carries the flags), and the systemd unit
//! (`systemd-analyze verify` is silent about it, `systemd-analyze
//! security` rates it OK or better), and the default config file (every
//! option documented in it, each example value accepted).

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

/// The default config file, as installed in /etc/tcpeek.
fn shipped_config() -> (std::path::PathBuf, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tcpeek.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn check(config: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/success.pcap");
    Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .arg("--check")
        .arg("--config")
        .arg(config)
        .arg("-r")
        .arg(fixture)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_default_config_documents_every_option_and_checks() {
    use clap::CommandFactory;
    let (path, text) = shipped_config();
    let out = check(&path, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every option a file may set, as a commented example.
    let cmd = tcpeek::cli::Args::command();
    let keys: Vec<&str> = cmd
        .get_arguments()
        .filter_map(clap::Arg::get_long)
        .filter(|k| !["config", "check", "help", "version"].contains(k))
        .chain(["filters"])
        .collect();
    for key in &keys {
        assert!(
            text.contains(&format!("# {key} = ")),
            "deploy/tcpeek.toml does not show {key}"
        );
    }
    // Each example, uncommented alone, is accepted (those naming what
    // this machine may not have, or that -r excludes, aside).
    let dir = TempDir::new("docs-config");
    let one = dir.path("one.toml");
    let mut tried = 0;
    for line in text.lines() {
        let Some(example) = line.strip_prefix("# ") else {
            continue;
        };
        let Some((key, _)) = example.split_once(" = ") else {
            continue;
        };
        if !keys.contains(&key) || ["interface", "read", "user", "xdp"].contains(&key) {
            continue;
        }
        let value = example.split(" # ").next().unwrap();
        std::fs::write(&one, format!("{value}\n")).unwrap();
        // Options only libpcap has need its backend.
        let out = check(&one, &["--backend", "pcap"]);
        assert!(
            out.status.success(),
            "{value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tried += 1;
    }
    assert!(tried >= keys.len() - 4, "only {tried} examples tried");
}

#[test]
fn the_kubernetes_daemonset_checks_and_holds_the_documented_capabilities() {
    use yaml_rust2::{Yaml, YamlLoader};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text =
        std::fs::read_to_string(root.join("deploy/kubernetes/tcpeek-daemonset.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let ds = &docs[0];
    assert_eq!(ds["kind"].as_str(), Some("DaemonSet"));
    let pod = &ds["spec"]["template"];
    assert_eq!(pod["spec"]["hostNetwork"].as_bool(), Some(true));
    let c = &pod["spec"]["containers"][0];
    let strs = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .unwrap_or_else(|| panic!("not a list: {y:?}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let mut args = strs(&c["args"]);

    // The capabilities: every other one dropped, and exactly the systemd
    // unit's set, which the README documents.
    let sc = &c["securityContext"];
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    let mut added: Vec<String> = strs(&sc["capabilities"]["add"])
        .into_iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    added.sort();
    let unit = std::fs::read_to_string(root.join("deploy/systemd/tcpeek@.service")).unwrap();
    let mut bounding: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    bounding.sort();
    assert_eq!(added, bounding);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for cap in &added {
        assert!(
            readme.contains(&format!("`{cap}`")),
            "README does not document {cap}"
        );
    }

    // Scraped where it serves.
    let at = args
        .iter()
        .position(|a| a == "--metrics")
        .expect("--metrics");
    let port = args[at + 1].rsplit(':').next().unwrap().to_string();
    let ann = &pod["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(ann["prometheus.io/port"].as_str(), Some(port.as_str()));
    assert_eq!(
        c["ports"][0]["containerPort"]
            .as_i64()
            .map(|p| p.to_string()),
        Some(port)
    );

    // Its command line checks, on this machine's loopback (the node's
    // interface is the operator's to set) and a free port.
    let i = args.iter().position(|a| a == "-i").expect("-i");
    args[i + 1] = "lo".into();
    args[at + 1] = "127.0.0.1:0".into();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpeek"))
        .arg("--check")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("configuration OK"),
        "tcpeek --check {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
