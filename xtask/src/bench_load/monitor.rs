//! A tcpeek under test: started in the receiving namespace, asked for its
//! counters on its socket, measured through /proc, stopped with SIGINT.
//! A [`Monitor`] dropped before [`Monitor::stop`] kills its process.
//!
//! /proc fields (proc(5)): /proc/PID/stat `utime` and `stime` (fields 14
//! and 15, in clock ticks, summed over every thread the process ever had);
//! /proc/PID/status `VmHWM` (peak RSS); the context-switch counts and the
//! exact run time are per thread, in /proc/PID/task/TID/status and
//! schedstat, and are summed here.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use super::netns::Pair;

/// How the monitor is run: which binary, which backend.
#[derive(Clone, Debug)]
pub struct Mode {
    pub label: String,
    /// `None`: no monitor at all.
    pub binary: Option<PathBuf>,
    pub args: Vec<&'static str>,
}

impl Mode {
    /// The modes of one binary, labelled with `prefix`.
    pub fn of(binary: &Path, prefix: &str) -> Vec<Mode> {
        [
            ("pcap", vec!["--backend", "pcap"]),
            ("ebpf", vec!["--backend", "ebpf"]),
            ("ebpf-xdp", vec!["--backend", "ebpf", "--xdp"]),
        ]
        .into_iter()
        .map(|(name, args)| Mode {
            label: format!("{prefix}{name}"),
            binary: Some(binary.to_path_buf()),
            args,
        })
        .collect()
    }
}

/// The capture element and the RX filter of a GET array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub success: u64,
    pub reject: u64,
    pub timeout: u64,
    pub unreach: u64,
    /// Any outcome in the TX filter (must stay 0: only servers are local).
    pub tx: u64,
    pub recv: u64,
    pub drop: u64,
    pub ifdrop: u64,
    pub malformed: u64,
    pub pending: u64,
    pub overflow: u64,
    pub late: u64,
}

impl Counts {
    pub fn parse(v: &Value) -> Option<Counts> {
        let a = v.as_array()?;
        let find = |k: &str| a.iter().find_map(|e| e.get(k));
        let rx = find("RX")?;
        let tx = find("TX")?;
        let st = find("pcap")?.get("stats")?;
        let n = |v: &Value, a: &str, b: &str| v[a][b].as_u64().unwrap_or(0);
        let s = |k: &str| st[k].as_u64().unwrap_or(0);
        Some(Counts {
            success: n(rx, "success", "total"),
            reject: n(rx, "failure", "reject"),
            timeout: n(rx, "failure", "timeout"),
            unreach: n(rx, "failure", "unreach"),
            tx: n(tx, "success", "total") + n(tx, "failure", "total"),
            recv: s("recv"),
            drop: s("drop"),
            ifdrop: s("ifdrop"),
            malformed: s("malformed"),
            pending: s("pending"),
            overflow: s("overflow"),
            late: s("late"),
        })
    }
}

/// What /proc says about the monitor at one moment.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// utime + stime, in ns (tick resolution, 10 ms).
    pub cpu_ns: u64,
    /// Time on a CPU of the threads alive now, in ns
    /// (/proc/PID/task/TID/schedstat, first field): exact, for short
    /// windows such as the idle probe.
    pub exec_ns: u64,
    /// Peak RSS in KiB.
    pub hwm_kb: u64,
    /// Per thread: tid, name, voluntary, nonvoluntary context switches.
    pub threads: Vec<(u32, String, u64, u64)>,
}

impl Sample {
    /// Voluntary and nonvoluntary context switches since `before`, per
    /// thread (by name; a thread born since counts from 0).
    pub fn ctxt_since(&self, before: &Sample) -> Vec<(String, u64, u64)> {
        self.threads
            .iter()
            .map(|(tid, name, v, i)| {
                let (v0, i0) = before
                    .threads
                    .iter()
                    .find(|t| t.0 == *tid)
                    .map_or((0, 0), |t| (t.2, t.3));
                (name.clone(), v.saturating_sub(v0), i.saturating_sub(i0))
            })
            .collect()
    }
}

/// Total voluntary and nonvoluntary switches of a per-thread list.
pub fn ctxt_total(threads: &[(String, u64, u64)]) -> (u64, u64) {
    threads.iter().fold((0, 0), |(v, i), t| (v + t.1, i + t.2))
}

/// How the counters came to rest after a replay.
pub struct Settled {
    /// Nothing pending and two equal replies (else `limit` passed).
    pub settled: bool,
    /// When the capture's backlog was counted (only timeouts left).
    pub drained: Sample,
    pub drained_after: Duration,
    /// At rest.
    pub end: Sample,
    pub end_after: Duration,
}

pub struct Monitor {
    child: Option<Child>,
    pub pid: u32,
    socket: PathBuf,
    stdout_last: Arc<Mutex<(u64, String)>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Monitor {
    /// Starts `BINARY -q --json -U SOCKET -i IF -t 5 --icmp --local ...`
    /// plus the mode's and `extra` arguments in the receiving namespace,
    /// and waits for "listening on" on its stderr.
    pub fn start(
        pair: &Pair,
        binary: &Path,
        args: &[&str],
        extra: &[String],
        socket: &Path,
    ) -> anyhow::Result<Monitor> {
        let _ = std::fs::remove_file(socket);
        let mut cmd = Pair::command(&pair.receiver, binary);
        cmd.args(["-q", "--json", "-U"]).arg(socket).args([
            "-i",
            &pair.receiver_if,
            "-t",
            "5",
            "--icmp",
        ]);
        for l in super::streams::LOCAL {
            cmd.args(["--local", l]);
        }
        let mut child = cmd
            .args(args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let (out, err) = (
            child.stdout.take().context("monitor stdout")?,
            child.stderr.take().context("monitor stderr")?,
        );
        let stdout_last = Arc::new(Mutex::new((0, String::new())));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (o, e) = (stdout_last.clone(), stderr.clone());
        let readers = vec![
            thread::spawn(move || {
                // Only the last line matters (the counters at exit); -q
                // should leave no others.
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let mut g = o.lock().expect("stdout lock");
                    g.0 += 1;
                    g.1 = line;
                }
            }),
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = e.lock().expect("stderr lock");
                    s.push_str(&line);
                    s.push('\n');
                }
            }),
        ];
        let mut m = Monitor {
            pid: child.id(),
            child: Some(child),
            socket: socket.to_path_buf(),
            stdout_last,
            stderr,
            readers,
        };
        let start = Instant::now();
        loop {
            if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("monitor exited early ({status}):\n{}", m.stderr());
            }
            if m.stderr().contains("listening on") && socket.exists() {
                return Ok(m);
            }
            if start.elapsed() > Duration::from_secs(30) || super::interrupted() {
                bail!("monitor not listening after 30 s:\n{}", m.stderr());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The socket's reply to `GET`.
    pub fn get(&self) -> anyhow::Result<Value> {
        let mut s = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        serde_json::from_str(&reply).with_context(|| format!("GET reply {reply:?}"))
    }

    /// Polls `GET` every 200 ms until nothing is pending and the reply did
    /// not change since the previous poll, or `limit` passed. The first
    /// time two replies are equal (pending or not), everything captured
    /// has been counted and only timeouts remain: /proc is sampled then as
    /// `drained`.
    pub fn settle(&self, limit: Duration) -> anyhow::Result<Settled> {
        let start = Instant::now();
        let mut last = self.get()?;
        let mut drained = None;
        loop {
            thread::sleep(Duration::from_millis(200));
            let now = self.get()?;
            if now == last && drained.is_none() {
                drained = Some((self.sample(), start.elapsed()));
            }
            let pending = Counts::parse(&now).map_or(1, |c| c.pending);
            let done = now == last && pending == 0;
            if done || start.elapsed() > limit || super::interrupted() {
                let end = self.sample();
                let (drained, drained_after) =
                    drained.unwrap_or_else(|| (end.clone(), start.elapsed()));
                return Ok(Settled {
                    settled: done,
                    drained,
                    drained_after,
                    end,
                    end_after: start.elapsed(),
                });
            }
            last = now;
        }
    }

    pub fn sample(&self) -> Sample {
        sample(self.pid)
    }

    /// SIGINT, then the exit and the final stdout line (the GET array).
    /// Returns that line's counters and how many stdout lines there were.
    pub fn stop(mut self) -> anyhow::Result<(Value, u64)> {
        let mut child = self.child.take().context("monitor already stopped")?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("monitor did not exit within 30 s of SIGINT");
            }
            thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        if !status.success() {
            bail!("monitor exited with {status}:\n{}", self.stderr());
        }
        let (lines, last) = self.stdout_last.lock().expect("stdout lock").clone();
        let v = serde_json::from_str(&last)
            .with_context(|| format!("the monitor's last stdout line {last:?}"))?;
        Ok((v, lines))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Clock ticks per second for /proc times (sysconf(_SC_CLK_TCK)).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime of `pid` in ns, VmHWM, and each thread's context switches.
pub fn sample(pid: u32) -> Sample {
    let tick_ns = 1_000_000_000 / clk_tck();
    let cpu_ns = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name may hold spaces: fields start after ')'.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest starts at field 3 (state): utime is field 14.
            let ut: u64 = f.get(11)?.parse().ok()?;
            let st: u64 = f.get(12)?.parse().ok()?;
            Some((ut + st) * tick_ns)
        })
        .unwrap_or(0);
    let status_field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let hwm_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| status_field(&s, "VmHWM:"))
        .unwrap_or(0);
    let mut threads = Vec::new();
    let mut exec_ns = 0;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            let p = t.path();
            let tid = t.file_name().to_string_lossy().parse().unwrap_or(0);
            let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let st = std::fs::read_to_string(p.join("status")).unwrap_or_default();
            exec_ns += std::fs::read_to_string(p.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            threads.push((
                tid,
                name.trim().to_string(),
                status_field(&st, "voluntary_ctxt_switches:"),
                status_field(&st, "nonvoluntary_ctxt_switches:"),
            ));
        }
    }
    threads.sort();
    Sample {
        cpu_ns,
        exec_ns,
        hwm_kb,
        threads,
    }
}
