//! Helpers shared by tcpeek's tests, benchmarks and xtask: how a test says
//! it was skipped, network namespaces for the privileged tier, the
//! capture file writers and a classic pcap reader ([`pcap`]), where the
//! generated fixtures are ([`fixtures`]), and a seeded generator for
//! randomized tests ([`rng`]) with the frame mutations they use
//! ([`mutate`]), and frames put on a link as another host would
//! ([`inject`]).
//!
//! A test that cannot run here (no root, a kernel feature missing) returns
//! early after [`skip`], which prints one line, `SKIPPED <test>: <why>`,
//! and, when `cargo xtask test` runs the suite, appends it to the file
//! named by [`SKIP_LOG_ENV`]. cargo counts such a test as passed; xtask
//! counts the lines and reports them as skipped in its closing line.

use std::io::Write as _;

/// Environment variable naming the file skipped tests are recorded in.
pub const SKIP_LOG_ENV: &str = "TCPEEK_SKIP_LOG";

/// Records that the calling test is skipped, and why. The test's name is
/// its thread's (libtest names each test's thread after it).
pub fn skip(why: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("<unnamed test>");
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            // One write per line: lines from parallel tests do not mix.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Whether the tests run as root (network namespaces, capture, BPF).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub mod fixtures;
pub mod inject;
pub mod mutate;
mod netns;
pub mod pcap;
pub mod rng;

pub use netns::{run, wait_for, Netns, TempDir, PATIENCE};
