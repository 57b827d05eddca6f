//! `perf stat` attached to a running monitor, for the wakeup question:
//! does the eBPF backend's ring buffer wake userspace once per event?
//! Software events (context-switches, cpu-migrations) only: they need no
//! hardware counters, which a VM often lacks.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

const EVENTS: &str = "context-switches,cpu-migrations";

/// Whether `perf stat -e context-switches,cpu-migrations true` works, and
/// whether hardware counters do (`-e instructions`), for the report.
pub fn available() -> (bool, bool) {
    let works = |ev: &str| {
        Command::new("perf")
            .args(["stat", "-x", ",", "-e", ev, "true"])
            .stdout(Stdio::null())
            .output()
            .map(|o| {
                let err = String::from_utf8_lossy(&o.stderr);
                o.status.success() && !err.contains("<not supported>")
            })
            .unwrap_or(false)
    };
    (works(EVENTS), works("instructions"))
}

pub struct Stat(Child);

impl Stat {
    /// `perf stat -x, -e context-switches,cpu-migrations -p PID`, every
    /// thread of the process.
    pub fn start(pid: u32) -> anyhow::Result<Stat> {
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", EVENTS, "-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting perf stat")?;
        // perf prints nothing once attached; give it time to open its
        // counters before the replay starts.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Stat(child))
    }

    /// SIGINT, then (context-switches, cpu-migrations).
    pub fn finish(self) -> anyhow::Result<(u64, u64)> {
        let child = self.0;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().context("waiting for perf")?;
        let text = String::from_utf8_lossy(&out.stderr);
        // CSV: value,unit,event,run time,percentage,...
        let value = |ev: &str| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.get(2) == Some(&ev)).then(|| f[0].parse::<u64>().ok())?
            })
        };
        match (value("context-switches"), value("cpu-migrations")) {
            (Some(cs), Some(m)) => Ok((cs, m)),
            _ => bail!("perf stat printed no counts:\n{text}"),
        }
    }
}
