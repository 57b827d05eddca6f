//! The captures `bench-load` replays, generated with the fixtures'
//! [`Trace`] builder, and what each one must count.
//!
//! Every stream is deterministic (fixed seeds, fixed times). Addresses stay
//! inside the benchmark's own namespaces: servers are 10.200.255.1–64 and
//! fd00:200:ffff::1–64 (the monitor's `--local`, so every handshake is RX),
//! clients 10.200.0.0–10.200.254.255 and fd00:200::/96. Each connection has
//! a client address and port of its own, so no two share a 4-tuple. Frames
//! are addressed to MACs derived from the IP addresses (02:00:…), never the
//! receiving veth's, so its stack drops them after the capture hooks.
//! Times matter only for their order: tcpreplay sends at top speed.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use etherparse::TcpOptionElement;

use crate::trace::{Addr, Conn, Link, Trace, PSH_ACK};

/// The monitor's `--local` prefixes: the servers of every stream (and the
/// receiving namespace's own address, for the storm).
pub const LOCAL: [&str; 2] = ["10.200.255.0/24", "fd00:200:ffff::/48"];

/// What the monitor must report after a stream, from what was put in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub success: u64,
    pub reject: u64,
    pub timeout: u64,
    pub unreach: u64,
    pub overflow: u64,
}

/// A generated capture.
pub struct Stream {
    pub name: &'static str,
    pub about: String,
    pub path: PathBuf,
    pub packets: u64,
    /// Handshake packets: SYN, SYN/ACK, RST, completing ACK, ICMP error.
    pub events: u64,
    pub expect: Expected,
    /// Monitor arguments of this stream only (`--max-sessions`).
    pub monitor_args: Vec<String>,
    /// Run only in these modes (by label); `None`: in every mode.
    pub only_modes: Option<&'static [&'static str]>,
}

/// How big the streams are.
#[derive(Clone, Copy)]
pub struct Sizes {
    pub handshakes: u64,
    pub flood: u64,
    pub flood_cap: u64,
    pub data: u64,
    pub segments: u64,
    pub mixed: u64,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        handshakes: 300_000,
        flood: 1_000_000,
        flood_cap: 100_000,
        data: 20_000,
        segments: 20,
        mixed: 100_000,
    };
    pub const QUICK: Sizes = Sizes {
        handshakes: 3_000,
        flood: 10_000,
        flood_cap: 1_000,
        data: 200,
        segments: 20,
        mixed: 1_000,
    };
}

/// Generates into `dir` every stream `want` names (the capped flood needs
/// the flood's file).
pub fn generate(
    dir: &Path,
    sizes: Sizes,
    want: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<Stream>> {
    let mut out = Vec::new();
    if want("handshake") {
        out.push(handshakes(dir, sizes.handshakes)?);
    }
    if want("flood") || want("flood-cap") {
        let f = flood(dir, sizes.flood)?;
        let capped = flood_capped(&f, sizes.flood_cap);
        out.push(f);
        out.push(capped);
    }
    if want("data") {
        out.push(data_heavy(dir, sizes.data, sizes.segments)?);
    }
    if want("mixed") {
        out.push(mixed(dir, sizes.mixed)?);
    }
    Ok(out)
}

const RTT: u64 = 200_000; // 0.2 ms
const ACK_AFTER: u64 = 20_000;
const PORTS: [u16; 8] = [80, 443, 8080, 22, 25, 5432, 6379, 8443];
/// IPv4 client addresses available: 10.200.0.0 – 10.200.254.255.
const V4_CLIENTS: u64 = 255 * 256;

/// Server number `n % 64` (1–64), IPv4 or IPv6.
fn server(n: u64, v6: bool) -> Addr {
    let host = (n % 64) as u8 + 1;
    if v6 {
        let mut a = [0u8; 16];
        a[..6].copy_from_slice(&[0xfd, 0x00, 0x02, 0x00, 0xff, 0xff]);
        a[15] = host;
        Addr::V6(a)
    } else {
        Addr::V4([10, 200, 255, host])
    }
}

/// Client endpoint number `k`: distinct `k` give distinct (address, port).
fn client(k: u64, v6: bool) -> (Addr, u16) {
    if v6 {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0xfd, 0x00, 0x02, 0x00]);
        a[12..].copy_from_slice(&(k as u32).to_be_bytes());
        (Addr::V6(a), 1024 + (k * 31 % 64_000) as u16)
    } else {
        let host = k % V4_CLIENTS;
        let round = k / V4_CLIENTS;
        // 9973 is prime and does not divide 64000: rounds get distinct
        // ports for the same address.
        let port = 1024 + ((round * 9973 + host * 31) % 64_000) as u16;
        (
            Addr::V4([10, 200, (host / 256) as u8, (host % 256) as u8]),
            port,
        )
    }
}

/// Connection `k` of a stream: client `k`, a server and port spread over
/// the 64 servers and [`PORTS`], random ISNs.
fn conn(tr: &mut Trace, k: u64, v6: bool) -> Conn {
    let (client, cport) = client(k, v6);
    Conn {
        client,
        server: server(k.wrapping_mul(13), v6),
        cport,
        sport: PORTS[(k / 64 % PORTS.len() as u64) as usize],
        cisn: tr.rng.next() as u32,
        sisn: tr.rng.next() as u32,
    }
}

fn write(dir: &Path, name: &str, tr: &Trace) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join(format!("{name}.pcap"));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    tr.write_pcap(&mut w)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// (1) Handshakes only: one in ten refused by RST/ACK, one in four IPv6.
fn handshakes(dir: &Path, n: u64) -> anyhow::Result<Stream> {
    let mut tr = Trace::new(Link::Ethernet, 101);
    let mut e = Expected::default();
    let mut events = 0;
    for k in 0..n {
        let c = conn(&mut tr, k, k % 4 == 3);
        let t = k * 1_000; // 1 µs apart: ~200 handshakes open at once
        if k % 10 == 9 {
            tr.syn(t, &c);
            tr.rst_ack(t + RTT, &c, c.cisn.wrapping_add(1));
            e.reject += 1;
            events += 2;
        } else {
            tr.handshake(t, &c, RTT);
            e.success += 1;
            events += 3;
        }
    }
    Ok(Stream {
        name: "handshake",
        about: format!(
            "{n} handshakes (SYN, SYN/ACK, ACK), 1 in 10 refused (SYN, RST/ACK), 1 in 4 IPv6"
        ),
        path: write(dir, "handshake", &tr)?,
        packets: tr.frames.len() as u64,
        events,
        expect: e,
        monitor_args: Vec::new(),
        only_modes: None,
    })
}

/// (2) A SYN flood from `n` distinct spoofed sources (1 in 16 IPv4, the
/// rest IPv6: 10.200.0.0/16 has too few), never answered: every SYN times
/// out.
fn flood(dir: &Path, n: u64) -> anyhow::Result<Stream> {
    let mut tr = Trace::new(Link::Ethernet, 102);
    let (mut v4, mut v6) = (0, 0);
    for i in 0..n {
        let c = if i % 16 == 0 && v4 < V4_CLIENTS {
            v4 += 1;
            conn(&mut tr, v4 - 1, false)
        } else {
            v6 += 1;
            conn(&mut tr, v6 - 1, true)
        };
        tr.syn(i * 1_000, &c);
    }
    Ok(Stream {
        name: "flood",
        about: format!("{n} SYNs from {n} distinct sources ({v4} IPv4), never answered"),
        path: write(dir, "flood", &tr)?,
        packets: n,
        events: n,
        expect: Expected {
            timeout: n,
            ..Expected::default()
        },
        monitor_args: Vec::new(),
        only_modes: None,
    })
}

/// (2b) The same flood with `--max-sessions cap`: the first `cap` SYNs are
/// tracked (and time out), the rest overflow — as long as the replay takes
/// less than the 5 s timeout, after which expired sessions free their
/// slots. Shows the overflow counted and the RSS bounded; run with the new
/// binary's eBPF (TC) mode only.
fn flood_capped(flood: &Stream, cap: u64) -> Stream {
    let n = flood.packets;
    let tracked = cap.min(n);
    Stream {
        name: "flood-cap",
        about: format!("the same flood, monitor run with --max-sessions {cap}"),
        path: flood.path.clone(),
        packets: n,
        events: n,
        expect: Expected {
            timeout: tracked,
            overflow: n - tracked,
            ..Expected::default()
        },
        monitor_args: vec!["--max-sessions".to_string(), cap.to_string()],
        // Overflow is the engine's: one backend shows it, and the full run
        // stays within its time.
        only_modes: Some(&["ebpf"]),
    }
}

/// (3) Data-heavy: `n` IPv4 handshakes, each followed by `segments` data
/// segments of 1448 bytes from the server (with the timestamp option: 1500
/// bytes of IP, the veth's MTU; IPv6 would not fit, so IPv4 only).
fn data_heavy(dir: &Path, n: u64, segments: u64) -> anyhow::Result<Stream> {
    let mut tr = Trace::new(Link::Ethernet, 103);
    let payload = vec![0xd5u8; 1448];
    let opts = |t: u64| {
        [
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp((t / 1_000) as u32, 1),
        ]
    };
    for k in 0..n {
        let c = conn(&mut tr, k, false);
        let t = k * 20_000; // 20 µs apart: segments of ~10 flows interleave
        tr.handshake(t, &c, RTT);
        let start = t + RTT + ACK_AFTER + 10_000;
        for j in 0..segments {
            let at = start + j * 2_000;
            tr.tcp(
                at,
                c.server,
                c.client,
                (c.sport, c.cport),
                c.sisn.wrapping_add(1).wrapping_add((j * 1448) as u32),
                c.cisn.wrapping_add(1),
                PSH_ACK,
                &payload,
                &opts(at),
            );
        }
    }
    Ok(Stream {
        name: "data",
        about: format!(
            "{n} IPv4 handshakes, each followed by {segments} data segments of 1448 bytes"
        ),
        path: write(dir, "data", &tr)?,
        packets: tr.frames.len() as u64,
        events: 3 * n,
        expect: Expected {
            success: n,
            ..Expected::default()
        },
        monitor_args: Vec::new(),
        only_modes: None,
    })
}

/// (4) Mixed: of every 20 connections, 15 succeed (each with a request and
/// a response), 1 is refused, 2 time out (an unanswered SYN), 2 get ICMP
/// port unreachable quoting the SYN (ICMPv6 1/4 for IPv6); one in four
/// IPv6; a DNS query and answer every 10 connections.
fn mixed(dir: &Path, n: u64) -> anyhow::Result<Stream> {
    let mut tr = Trace::new(Link::Ethernet, 104);
    let mut e = Expected::default();
    let mut events = 0;
    let dns = |v6: bool| {
        if v6 {
            let mut a = [0u8; 16];
            a[..6].copy_from_slice(&[0xfd, 0x00, 0x02, 0x00, 0xff, 0xff]);
            a[14] = 0x53;
            Addr::V6(a)
        } else {
            Addr::V4([10, 200, 255, 53])
        }
    };
    for k in 0..n {
        let v6 = k % 4 == 1;
        let c = conn(&mut tr, k, v6);
        let t = k * 2_000;
        match k % 20 {
            15 => {
                tr.syn(t, &c);
                tr.rst_ack(t + RTT, &c, c.cisn.wrapping_add(1));
                e.reject += 1;
                events += 2;
            }
            16 | 17 => {
                tr.syn(t, &c);
                e.timeout += 1;
                events += 1;
            }
            18 | 19 => {
                tr.syn(t, &c);
                let quoted = tr.ip_of_last_frame();
                let (ty, code) = if v6 { (1, 4) } else { (3, 3) };
                tr.icmp_error(t + RTT, c.server, c.client, ty, code, &quoted);
                e.unreach += 1;
                events += 2;
            }
            _ => {
                tr.handshake(t, &c, RTT);
                // A 300-byte request and its 1200-byte response.
                tr.request_and_response(t + RTT + ACK_AFTER + 5_000, &c, RTT, 300, 1_200);
                e.success += 1;
                events += 3;
            }
        }
        if k % 10 == 0 {
            let (cl, _) = client(k, v6);
            tr.udp(t + 500, cl, dns(v6), (5353, 53), &[0x12; 40]);
            tr.udp(t + RTT, dns(v6), cl, (53, 5353), &[0x34; 80]);
        }
    }
    Ok(Stream {
        name: "mixed",
        about: format!(
            "{n} connections: 75% succeed with data, 5% refused, 10% time out, 10% ICMP port unreachable; 1 in 4 IPv6; DNS"
        ),
        path: write(dir, "mixed", &tr)?,
        packets: tr.frames.len() as u64,
        events,
        expect: e,
        monitor_args: Vec::new(),
        only_modes: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcpeek_testkit::pcap::read_classic;

    #[test]
    fn client_endpoints_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for k in 0..Sizes::FULL.handshakes {
            for v6 in [false, true] {
                let (a, port) = client(k, v6);
                let key = match a {
                    Addr::V4(b) => (b.to_vec(), port),
                    Addr::V6(b) => (b.to_vec(), port),
                };
                assert!(seen.insert(key), "client {k} (v6 {v6}) repeats");
            }
        }
    }

    #[test]
    fn quick_streams_hold_what_they_promise() {
        let dir = std::env::temp_dir().join(format!("tcpeek-streams-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let q = Sizes::QUICK;
        let streams = generate(&dir, q, |_| true).unwrap();
        let by = |n: &str| streams.iter().find(|s| s.name == n).unwrap();
        let hs = by("handshake");
        assert_eq!(hs.expect.success + hs.expect.reject, q.handshakes);
        assert_eq!(hs.packets, hs.events);
        assert_eq!(hs.events, 3 * hs.expect.success + 2 * hs.expect.reject);
        let fl = by("flood-cap");
        assert_eq!(fl.expect.timeout + fl.expect.overflow, q.flood);
        assert_eq!(fl.path, by("flood").path);
        let d = by("data");
        assert_eq!(d.packets, q.data * (3 + q.segments));
        // Data segments fill the veth's 1500-byte MTU exactly.
        let file = read_classic(&d.path).unwrap();
        let mut full = 0;
        for record in &file.records {
            let len = record.data.len();
            assert!(len <= 1514, "frame of {len} bytes");
            full += usize::from(len == 1514);
        }
        assert_eq!(full as u64, q.data * q.segments);
        let m = by("mixed");
        let e = m.expect;
        assert_eq!(e.success + e.reject + e.timeout + e.unreach, q.mixed);
        assert_eq!(
            m.events,
            3 * e.success + 2 * e.reject + e.timeout + 2 * e.unreach
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
