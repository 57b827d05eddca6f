//! Part 2, a connection storm through the real kernel: client threads in
//! the sender namespace connect as fast as they can to a server thread in
//! the receiving namespace, which accepts and closes; one connect in 20
//! goes to a port nobody listens on (refused by RST/ACK).
//!
//! The rate counts the connects that ended within `--storm-secs`, and the
//! machine's CPU is taken over exactly that time; the monitor's until it
//! counted every connect.
//!
//! All threads run at the same priority as the monitor: when the acceptor
//! falls behind, the kernel drops SYNs (ListenOverflows) and a client waits
//! a second for its retransmission; each run line says how often
//! (raising the acceptor's priority instead starves the monitor, which then
//! drops events).
//!
//! Clients close with SO_LINGER 0 (an RST after the handshake), so no
//! TIME_WAIT state runs them out of ports; that RST is not a handshake
//! packet and decides nothing.
//!
//! Counting rule: the storm starts only once the monitor said "listening
//! on", every client stops starting connects at the deadline and finishes
//! the one in flight before it is joined, and the counters are read only
//! after the monitor settled (nothing pending, two equal replies). So every
//! handshake the monitor can see began after it was ready and ended before
//! it was read: its `success` must equal the clients' successful connects
//! and its `reject` their refused ones, exactly. A connect that failed
//! otherwise (`other`: a lost SYN whose retries ran out) is a handshake the
//! monitor counts as a timeout, and is printed.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::monitor::{ctxt_total, Counts, Mode, Monitor};
use super::netns::{spawn_in, Pair, RECEIVER_ADDR};
use super::run::machine_busy_ns;

const PORT: u16 = 5001;
const CLOSED_PORT: u16 = 5002;
const CLIENTS: usize = 2;

#[derive(Clone, Debug)]
pub struct StormRun {
    pub mode: String,
    /// The storm's length (`--storm-secs`), over which the rate is taken.
    pub secs: f64,
    /// Connects that ended within it.
    pub in_window: u64,
    pub success: u64,
    pub refused: u64,
    pub other: u64,
    pub first_error: Option<String>,
    pub machine_ns: u64,
    /// Monitor CPU ns, VmHWM KiB, counts, context switches (v, i).
    pub monitor: Option<(u64, u64, Counts, (u64, u64))>,
    pub kernel: KernelCounts,
}

impl StormRun {
    pub fn conns(&self) -> u64 {
        self.success + self.refused + self.other
    }
    /// Connects ended within the storm's length, per second (the one in
    /// flight at the deadline, which may wait for a SYN retransmission,
    /// does not stretch it).
    pub fn rate(&self) -> f64 {
        self.in_window as f64 / self.secs.max(1e-9)
    }
}

#[derive(Default)]
struct Tally {
    success: u64,
    refused: u64,
    other: u64,
    /// Connects that ended by the deadline (the rate's numerator).
    in_window: u64,
    first_error: Option<String>,
}

/// One storm of `secs` seconds under `mode`.
pub fn run(pair: &Pair, mode: &Mode, socket: &Path, secs: f64) -> anyhow::Result<StormRun> {
    let monitor = match &mode.binary {
        Some(bin) => Some(Monitor::start(pair, bin, &mode.args, &[], socket)?),
        None => None,
    };
    let [a, b, c, d] = RECEIVER_ADDR;
    let server_ip = Ipv4Addr::new(a, b, c, d);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in(
        &pair.receiver,
        "storm-server",
        move || -> anyhow::Result<u64> {
            let l = TcpListener::bind(SocketAddrV4::new(server_ip, PORT))
                .context("storm server bind")?;
            // std listens with a backlog of 128; with that, clients closing by
            // RST at this rate see their SYNs dropped and wait a second each.
            // A second listen(2) only changes the backlog.
            // SAFETY: listen on a valid, bound socket.
            unsafe { libc::listen(l.as_raw_fd(), 4096) };
            let _ = ready_tx.send(l.as_raw_fd());
            serve(&l)
        },
    )?;
    let listen_fd = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| anyhow!("storm server did not start"))?;
    let net0 = (netstat(&pair.sender), netstat(&pair.receiver));
    let s0 = monitor.as_ref().map(Monitor::sample);
    let busy0 = machine_busy_ns();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(secs);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            spawn_in(&pair.sender, &format!("storm-client{i}"), move || {
                client(server_ip, deadline)
            })
        })
        .collect::<anyhow::Result<_>>()?;
    // The machine's CPU over the storm's length exactly.
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    let busy1 = machine_busy_ns();
    let mut tally = Tally::default();
    for c in clients {
        let t = c.join().map_err(|_| anyhow!("storm client panicked"))??;
        tally.success += t.success;
        tally.refused += t.refused;
        tally.other += t.other;
        tally.in_window += t.in_window;
        tally.first_error = tally.first_error.or(t.first_error);
    }
    // shutdown(2) on a listening socket wakes a blocked accept(2) with
    // EINVAL (Linux): the server stops without a connection of its own.
    // SAFETY: the listener is alive until the server thread is joined.
    unsafe { libc::shutdown(listen_fd, libc::SHUT_RDWR) };
    server
        .join()
        .map_err(|_| anyhow!("storm server panicked"))???;
    let net1 = (netstat(&pair.sender), netstat(&pair.receiver));
    let kernel = KernelCounts {
        syn_retrans: net1.0.syn_retrans.saturating_sub(net0.0.syn_retrans),
        listen_overflows: net1
            .1
            .listen_overflows
            .saturating_sub(net0.1.listen_overflows),
        listen_drops: net1.1.listen_drops.saturating_sub(net0.1.listen_drops),
    };
    let watched = match monitor {
        None => None,
        Some(m) => {
            let s2 = m.settle(Duration::from_secs(30))?.end;
            if super::interrupted() {
                anyhow::bail!("interrupted");
            }
            let s0 = s0.unwrap_or_default();
            let ctxt = ctxt_total(&s2.ctxt_since(&s0));
            let (counters, _) = m.stop()?;
            let counts = Counts::parse(&counters).context("the monitor's final counters")?;
            Some((s2.cpu_ns.saturating_sub(s0.cpu_ns), s2.hwm_kb, counts, ctxt))
        }
    };
    Ok(StormRun {
        mode: mode.label.clone(),
        secs,
        in_window: tally.in_window,
        success: tally.success,
        refused: tally.refused,
        other: tally.other,
        first_error: tally.first_error,
        machine_ns: busy1.saturating_sub(busy0),
        monitor: watched,
        kernel,
    })
}

/// TcpExt counters of a namespace (/proc/net/netstat, nstat's source):
/// why a connect took a second more (its SYN dropped and retransmitted).
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelCounts {
    /// Sender: SYNs retransmitted (TCPSynRetrans).
    pub syn_retrans: u64,
    /// Receiver: connections the full accept queue refused (ListenOverflows),
    /// and every SYN or ACK a listener dropped (ListenDrops).
    pub listen_overflows: u64,
    pub listen_drops: u64,
}

fn netstat(ns: &str) -> KernelCounts {
    let text =
        super::netns::ip(&["netns", "exec", ns, "cat", "/proc/net/netstat"]).unwrap_or_default();
    // Pairs of lines: "TcpExt: names..." then "TcpExt: values...".
    let lines: Vec<&str> = text.lines().collect();
    let mut c = KernelCounts::default();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        if !names.starts_with("TcpExt:") {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            let v = v.parse().unwrap_or(0);
            match n {
                "TCPSynRetrans" => c.syn_retrans = v,
                "ListenOverflows" => c.listen_overflows = v,
                "ListenDrops" => c.listen_drops = v,
                _ => {}
            }
        }
    }
    c
}

/// Accepts and closes until the listener is shut down; returns how many
/// it accepted.
fn serve(l: &TcpListener) -> anyhow::Result<u64> {
    let mut accepted = 0;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                accepted += 1;
                drop(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The client reset before we accepted: nothing to close.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
            // shutdown(2) by the storm's end.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(accepted),
            Err(e) => return Err(e).context("storm server accept"),
        }
    }
}

/// Connects until `deadline`: one in 20 to the closed port.
fn client(server: Ipv4Addr, deadline: Instant) -> Tally {
    let open = SocketAddr::V4(SocketAddrV4::new(server, PORT));
    let closed = SocketAddr::V4(SocketAddrV4::new(server, CLOSED_PORT));
    let mut t = Tally::default();
    let mut n: u64 = 0;
    while Instant::now() < deadline && !super::interrupted() {
        n += 1;
        let refuse = n.is_multiple_of(20);
        match TcpStream::connect(if refuse { closed } else { open }) {
            Ok(s) if !refuse => {
                linger0(&s);
                t.success += 1;
            }
            Err(e) if refuse && e.kind() == std::io::ErrorKind::ConnectionRefused => {
                t.refused += 1;
            }
            other => {
                t.other += 1;
                if t.first_error.is_none() {
                    t.first_error = Some(match other {
                        Ok(_) => "the closed port accepted".to_string(),
                        Err(e) => e.to_string(),
                    });
                }
            }
        }
        if Instant::now() <= deadline {
            t.in_window += 1;
        }
    }
    t
}

/// SO_LINGER {on, 0}: close sends an RST and leaves no TIME_WAIT.
fn linger0(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// One line of figures for a storm run.
pub fn line(rep: u32, r: &StormRun) -> String {
    let n = r.conns().max(1) as f64;
    let mut s = format!(
        "rep {rep} storm      {:<16} {:>8.0} conn/s ({} ok, {} refused, {} other)  machine {:>6.2} CPU-s {:>6.0} ns/conn",
        r.mode,
        r.rate(),
        r.success,
        r.refused,
        r.other,
        r.machine_ns as f64 / 1e9,
        r.machine_ns as f64 / r.in_window.max(1) as f64
    );
    if let Some((cpu, hwm, c, (v, i))) = &r.monitor {
        s.push_str(&format!(
            "  monitor {:>5.2} CPU-s {:>5.0} ns/conn  hwm {:>5.1} MB  drop {} ifdrop {}  ctxt {v}v/{i}i",
            *cpu as f64 / 1e9,
            *cpu as f64 / n,
            *hwm as f64 / 1024.0,
            c.drop,
            c.ifdrop
        ));
    }
    let k = r.kernel;
    if k.syn_retrans + k.listen_overflows + k.listen_drops > 0 {
        s.push_str(&format!(
            "  SYN retransmitted {}, listen overflows {} drops {}",
            k.syn_retrans, k.listen_overflows, k.listen_drops
        ));
    }
    if let Some(e) = &r.first_error {
        s.push_str(&format!("  first error: {e}"));
    }
    s
}

/// `MISMATCH` lines against what the clients counted.
pub fn check(rep: u32, r: &StormRun) -> Vec<String> {
    let Some((_, _, c, _)) = &r.monitor else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (what, got, want) in [
        ("success", c.success, r.success),
        ("reject", c.reject, r.refused),
        ("timeout", c.timeout, r.other),
        ("TX outcomes", c.tx, 0),
        ("pending", c.pending, 0),
    ] {
        if got != want {
            out.push(format!(
                "MISMATCH rep {rep} storm {}: {what} {got}, clients counted {want} (drop {} ifdrop {})",
                r.mode, c.drop, c.ifdrop
            ));
        }
    }
    out
}
