//! Project tasks, run as `cargo xtask <task>` (alias in .cargo/config.toml).
//!
//! Each task is a subcommand with its own module; `main` only dispatches.

mod fixtures;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  fixtures   regenerate the capture files in tests/fixtures/";

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
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task '{other}'\n\n{USAGE}"),
    }
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
