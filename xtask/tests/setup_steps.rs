//! scripts/lib.sh's `step`: one line per step on the terminal, the
//! command's own output in the set-up log, and the log's end when a step
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run_steps(script: &str, log: &Path) -> (bool, String) {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". '{}'; LOG_TAG=t; {script}", lib.display()))
        .env("TCPEEK_SETUP_LOG", log)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn temp_log(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("tcpeek-setup-{}-{name}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn a_step_prints_one_line_and_logs_the_noise() {
    let log = temp_log("ok");
    let (ok, text) = run_steps("step 'installing x' sh -c 'seq 1 500'", &log);
    assert!(ok, "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("t: installing x ... done ("), "{text}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("installing x") && logged.contains("\n500\n"),
        "{logged}"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_failing_step_shows_the_end_of_the_log_and_its_status() {
    let log = temp_log("fail");
    let (ok, text) = run_steps(
        "step 'building y' sh -c 'seq 1 100; echo the reason; exit 3'",
        &log,
    );
    assert!(!ok);
    assert!(
        text.starts_with("t: building y ... failed (exit 3); the end of "),
        "{text}"
    );
    assert!(
        text.contains("the reason") && !text.contains("\n50\n"),
        "{text}"
    );
    let _ = std::fs::remove_file(&log);
}
