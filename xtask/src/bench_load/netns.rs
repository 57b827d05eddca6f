//! The benchmark's two network namespaces and the veth pair between them,
//! removed by [`Pair`]'s `Drop` (on any return, on a panic, and after
//! Ctrl-C, which the run loops turn into an early return; see
//! `super::interrupted`).
//!
//! The sender namespace holds tcpreplay and the storm's clients, the
//! receiver namespace the monitor and the storm's server. Addresses
//! (10.200.254.250 and 10.200.255.250 in 10.200.0.0/16) exist only in
//! these namespaces, so no packet can leave the pair. IPv6 is disabled on
//! both ends: no router or neighbour solicitations mix into the figures
//! (the generated IPv6 frames are captured before the stack drops them).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// The receiving veth's MAC: no generated frame is addressed to it.
const RECEIVER_MAC: &str = "02:ee:00:00:00:01";
const SENDER_MAC: &str = "02:ee:00:00:00:02";
pub const SENDER_ADDR: [u8; 4] = [10, 200, 254, 250];
pub const RECEIVER_ADDR: [u8; 4] = [10, 200, 255, 250];

/// Two namespaces joined by a veth pair; deleted on drop.
pub struct Pair {
    pub sender: String,
    pub receiver: String,
    /// The veth end in each namespace (named like its namespace).
    pub sender_if: String,
    pub receiver_if: String,
    created: Vec<String>,
}

/// Runs `ip ARGS`, failing with its output.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Pair {
    pub fn new() -> anyhow::Result<Pair> {
        let id = std::process::id() % 100_000;
        let (s, r) = (format!("tpkb{id}s"), format!("tpkb{id}r"));
        let mut pair = Pair {
            sender: s.clone(),
            receiver: r.clone(),
            sender_if: s.clone(),
            receiver_if: r.clone(),
            created: Vec::new(),
        };
        for ns in [&s, &r] {
            // Left over by a run of the same pid that was killed.
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", ns])?;
            pair.created.push(ns.clone());
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            for key in ["all", "default"] {
                ip(&[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ])?;
            }
        }
        // Created inside the sender namespace: nothing appears in the host's.
        ip(&[
            "-n",
            &s,
            "link",
            "add",
            &s,
            "address",
            SENDER_MAC,
            "type",
            "veth",
            "peer",
            "name",
            &r,
            "address",
            RECEIVER_MAC,
            "netns",
            &r,
        ])?;
        for (ns, addr) in [(&s, SENDER_ADDR), (&r, RECEIVER_ADDR)] {
            let [a, b, c, d] = addr;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{a}.{b}.{c}.{d}/16"),
                "dev",
                ns,
            ])?;
            ip(&["-n", ns, "link", "set", ns, "up"])?;
        }
        // The storm's client reuses ports fast and connects at full speed.
        pair.exec_quiet(
            &s,
            &[
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_local_port_range=1024 65535",
            ],
        )?;
        // A lost SYN gives up after ~7 s rather than ~2 min.
        pair.exec_quiet(&s, &["sysctl", "-q", "-w", "net.ipv4.tcp_syn_retries=2"])?;
        pair.exec_quiet(&r, &["sysctl", "-q", "-w", "net.core.somaxconn=4096"])?;
        Ok(pair)
    }

    fn exec_quiet(&self, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut a = vec!["netns", "exec", ns];
        a.extend_from_slice(args);
        ip(&a).map(drop)
    }

    /// `ip netns exec NS program`, to be spawned.
    pub fn command(ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// The interface's TX/RX drop counters (`ip -s link`): packets lost
    /// between tcpreplay and the capture hooks.
    pub fn drops(&self) -> (u64, u64) {
        let read = |ns: &str, dir: &str| -> u64 {
            ip(&[
                "netns",
                "exec",
                ns,
                "cat",
                &format!("/sys/class/net/{ns}/statistics/{dir}_dropped"),
            ])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
        };
        (read(&self.sender, "tx"), read(&self.receiver, "rx"))
    }
}

/// Runs `f` on a new thread that has entered namespace `ns` (setns(2) on
/// /run/netns/NS); sockets it opens belong to that namespace.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<T>>> {
    let file =
        File::open(format!("/run/netns/{ns}")).with_context(|| format!("opening netns {ns}"))?;
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            // SAFETY: setns on a namespace fd we hold open; it changes only
            // this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                bail!("setns: {}", std::io::Error::last_os_error());
            }
            Ok(f())
        })
        .context("spawning a namespace thread")
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Deleting the sender end removes its peer too.
        let _ = Command::new("ip")
            .args(["-n", &self.sender, "link", "del", &self.sender_if])
            .stderr(Stdio::null())
            .status();
        for ns in self.created.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}
