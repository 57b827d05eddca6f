//! Live capture on a tun device: an interface whose packets start at the IP
//! header (as on WireGuard, PPP and IP tunnels), where the eBPF backend must
//! see what libpcap sees.
//!
//! The test creates a namespace, opens `/dev/net/tun` inside it and plays
//! the remote peer itself: a thread reads the IP packets the kernel routes
//! to the tun and answers SYNs with hand-built segments (etherparse, with
//! real checksums: the kernel verifies them). Nothing leaves the namespace.
//! Run as root; without root, or without /dev/net/tun, it says why it
//! skipped.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

/// SYNs to this port get a SYN/ACK: the connect succeeds.
const PORT_ACCEPT: u16 = 7801;
/// SYNs to this port get an RST/ACK: refused.
const PORT_REJECT: u16 = 7802;
/// SYNs to this port get nothing: timeout.
const PORT_SILENT: u16 = 7803;
/// The peer's initial sequence number.
const PEER_ISN: u32 = 0x1234_5678;

/// linux/if_tun.h
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETLINK: libc::c_ulong = 0x4004_54cd;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// linux/if_arp.h: a link type the eBPF backend refuses (libpcap reads it
/// as raw IP).
const ARPHRD_SLIP: libc::c_int = 256;

fn skip(_test: &str, why: &str) {
    tcpeek_testkit::skip(why);
}

/// A tun device `name` created inside `ns` (IFF_TUN | IFF_NO_PI: the fd
/// reads and writes bare IP packets), optionally with another link type.
fn open_tun(ns: &Netns, name: &str, link_type: Option<libc::c_int>) -> File {
    let name = name.to_owned();
    ns.enter(move || {
        let tun = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .expect("open /dev/net/tun");
        // SAFETY: ifreq is plain data; all-zero is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
        // SAFETY: a tun fd and a valid ifreq.
        let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut ifr) };
        assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        if let Some(ty) = link_type {
            // SAFETY: a tun fd; the argument is the new type.
            let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETLINK, ty as libc::c_ulong) };
            assert_eq!(rc, 0, "TUNSETLINK: {}", std::io::Error::last_os_error());
        }
        tun
    })
}

/// The peer's answer to one packet from the tun, if any.
fn answer(pkt: &[u8]) -> Option<Vec<u8>> {
    let p = SlicedPacket::from_ip(pkt).ok()?;
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return None;
    };
    if !tcp.syn() || tcp.ack() {
        return None;
    }
    let b = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            PacketBuilder::ipv4(ip.header().destination(), ip.header().source(), 64)
        }
        Some(NetSlice::Ipv6(ip)) => {
            PacketBuilder::ipv6(ip.header().destination(), ip.header().source(), 64)
        }
        _ => return None,
    };
    let ack = tcp.sequence_number().wrapping_add(1);
    let (sport, dport) = (tcp.destination_port(), tcp.source_port());
    let b = match sport {
        PORT_ACCEPT => b.tcp(sport, dport, PEER_ISN, 65535).syn().ack(ack),
        PORT_REJECT => b.tcp(sport, dport, 0, 0).rst().ack(ack),
        _ => return None,
    };
    let mut out = Vec::new();
    b.write(&mut out, &[]).ok()?;
    Some(out)
}

/// Plays the remote end of the tun until `stop`.
fn run_peer(tun: File, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd: tun.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let Ok(n) = (&tun).read(&mut buf) else {
                continue;
            };
            if let Some(reply) = answer(&buf[..n]) {
                (&tun).write_all(&reply).expect("write to the tun");
            }
        }
    })
}

/// Stops the peer thread on drop (also when the test fails).
struct Peer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tun_available(test: &str) -> bool {
    if !is_root() {
        skip(test, "needs root (network namespaces, /dev/net/tun, eBPF)");
        return false;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        skip(test, "no /dev/net/tun (CONFIG_TUN)");
        return false;
    }
    true
}

fn ns_name(tag: &str) -> String {
    format!("tpk{}{tag}", std::process::id() % 100_000)
}

#[test]
fn tun_device_both_backends_count_the_same() {
    let test = "tun_device_both_backends_count_the_same";
    if !tun_available(test) {
        return;
    }
    if !ebpf_available() {
        skip(test, "the eBPF backend does not load on this kernel");
        return;
    }
    let ns = Netns::new(ns_name("tun"));
    let tun = open_tun(&ns, "tpktun0", None);
    let (local4, peer4) = ("10.214.0.1", "10.214.0.2");
    let (local6, peer6) = ("fd00:214::1", "fd00:214::2");
    // Up first: IPv6 installs the peer's route only on an interface that is up.
    ns.ip(&["link", "set", "tpktun0", "up"]);
    ns.ip(&["addr", "add", local4, "peer", peer4, "dev", "tpktun0"]);
    ns.ip(&[
        "addr", "add", local6, "peer", peer6, "dev", "tpktun0", "nodad",
    ]);
    ns.sysctl("net.ipv4.tcp_syn_retries", "1");
    let stop = Arc::new(AtomicBool::new(false));
    let _peer = Peer {
        thread: Some(run_peer(tun, stop.clone())),
        stop,
    };

    let dir = TempDir::new("tun");
    let args = [
        "-i", "tpktun0", "-t", "2", "--local", local4, "--local", local6,
    ];
    let daemons = ["pcap", "ebpf", "auto"].map(|b| {
        (
            b,
            Daemon::start(&ns, b, &dir.path(&format!("{b}.sock")), &args),
        )
    });
    for (label, d) in &daemons[1..] {
        let err = d.stderr();
        assert!(
            err.contains("listening on tpktun0, eBPF TC"),
            "{label}: {err}"
        );
    }
    // Tried here: XDP on a tun device never runs (the daemon started, and
    // saw no SYN/ACK). It is refused rather than silently blind.
    let out = ns
        .command(&tcpeek_bin())
        .args(["--backend", "ebpf", "--xdp", "-q", "-U"])
        .arg(dir.path("xdp.sock"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tcpeek");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--xdp on a tun started: {err}");
    assert!(err.contains("--xdp on \"tpktun0\" (ARPHRD_NONE"), "{err}");

    let mut streams: Vec<TcpStream> = Vec::new();
    for peer in [peer4, peer6] {
        let ip: IpAddr = peer.parse().unwrap();
        let s = ns
            .connect(SocketAddr::new(ip, PORT_ACCEPT), Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("connect to {ip} port {PORT_ACCEPT}: {e}"));
        streams.push(s); // Kept open: no FIN for the peer to ignore.
        let e = ns
            .connect(SocketAddr::new(ip, PORT_REJECT), Duration::from_secs(20))
            .expect_err("the peer resets");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        ns.connect(
            SocketAddr::new(ip, PORT_SILENT),
            Duration::from_millis(1500),
        )
        .expect_err("the peer stays silent");
    }
    for (_, d) in &daemons {
        d.wait_sessions(6);
    }
    let exited: Vec<(&str, Exited)> = daemons.into_iter().map(|(l, d)| (l, d.stop())).collect();
    for (label, e) in &exited {
        assert!(e.status.success(), "{label}: {}\n{}", e.status, e.stderr);
        assert_eq!(
            counts(&e.counters, "TX"),
            [2, 0, 0, 4, 2, 2, 0],
            "{label}: TX (success, dupsyn, dupsynack, failure, timeout, reject, unreach)\n\
             sessions: {:?}\nstderr: {}",
            e.sessions,
            e.stderr
        );
        assert_eq!(counts(&e.counters, "RX"), [0; 7], "{label}");
        assert_eq!(
            filter_counters(&e.counters),
            filter_counters(&exited[0].1.counters),
            "{label} and pcap disagree"
        );
    }
    drop(streams);
}

#[test]
fn refused_device_type_fails_ebpf_and_auto_falls_back_to_libpcap() {
    let test = "refused_device_type_fails_ebpf_and_auto_falls_back_to_libpcap";
    if !tun_available(test) {
        return;
    }
    let ns = Netns::new(ns_name("slip"));
    // A tun relabelled ARPHRD_SLIP (TUNSETLINK): a type outside the eBPF
    // backend's list, which libpcap reads as raw IP.
    let _tun = open_tun(&ns, "tpkslip0", Some(ARPHRD_SLIP));
    ns.ip(&["link", "set", "tpkslip0", "up"]);
    let dir = TempDir::new("slip");

    let out = ns
        .command(&tcpeek_bin())
        .args(["--backend", "ebpf", "-i", "tpkslip0", "-q", "-U"])
        .arg(dir.path("ebpf.sock"))
        .stdin(Stdio::null())
        .output()
        .expect("run tcpeek");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--backend ebpf started: {err}");
    assert!(
        err.contains(
            "eBPF capture cannot watch \"tpkslip0\": its device type is ARPHRD 256 \
             (ARPHRD_SLIP)"
        ) && err.contains("use --backend pcap"),
        "{err}"
    );

    let d = Daemon::start(&ns, "auto", &dir.path("auto.sock"), &["-i", "tpkslip0"]);
    let err = d.stderr();
    assert!(
        err.contains("eBPF backend unavailable") && err.contains("ARPHRD_SLIP"),
        "{err}"
    );
    assert!(err.contains("using libpcap"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains("eBPF")).count(),
        1,
        "one line says why: {err}"
    );
    let e = d.stop();
    assert!(e.status.success(), "{}\n{}", e.status, e.stderr);
}
