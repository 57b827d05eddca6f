//! Hostile conditions against a real kernel: frames injected with a packet
//! socket from the client namespace onto the veth pair, seen by one
//! daemon per backend watching the server's interface. The server's
//! kernel drops every injected TCP segment before its stack (nftables at
//! prerouting, after the capture hooks), so only the injected frames are
//! on the wire.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use serde_json::Value;
use tcpeek_common::tcp_flags::{ACK, SYN};

/// An Ethernet + IPv4 + TCP frame (checksums right, no options).
#[allow(
    clippy::too_many_arguments,
    reason = "one frame's fields, named at every call"
)]
fn frame(
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = |words: &mut dyn Iterator<Item = u16>, init: u32| -> u16 {
        let mut s = init;
        for w in words {
            s += u32::from(w);
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    let words = |b: &[u8]| -> Vec<u16> {
        b.chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect()
    };
    let c = sum(&mut words(&ip).into_iter(), 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let pseudo: u32 = words(&src.octets())
        .into_iter()
        .chain(words(&dst.octets()))
        .map(u32::from)
        .sum::<u32>()
        + 6
        + 20;
    let c = sum(&mut words(&tcp).into_iter(), pseudo);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f
}

/// Sends `frames` out of `ifname` in `ns` through a packet socket.
fn inject(ns: &Netns, ifname: &str, frames: &[Vec<u8>]) {
    let sent =
        ns.enter(|| tcpeek_testkit::inject::inject(ifname, frames.iter().map(Vec::as_slice)));
    assert_eq!(sent.expect("inject"), frames.len() as u64);
}

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!(),
    }
}

fn stats(counters: &Value) -> &Value {
    &counters.as_array().unwrap().last().unwrap()["pcap"]["stats"]
}

#[test]
fn a_synack_flood_beyond_the_kernel_table_loses_no_verdict_silently() {
    require_root!();
    let pair = Pair::new();
    // Nothing injected reaches the server's stack.
    pair.server.nft(&format!(
        "table inet t {{ chain pre {{ type filter hook prerouting priority -300; iifname \"{}\" meta l4proto tcp drop; }} }}",
        pair.server_if
    ));
    let mac: Vec<u8> = pair
        .server
        .exec(&["cat", &format!("/sys/class/net/{}/address", pair.server_if)])
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let mac: [u8; 6] = mac.try_into().unwrap();
    let (c, s) = (v4(pair.client4), v4(pair.server4));
    let dir = TempDir::new("flood");
    let server = s.to_string();
    // Big enough buffers that neither backend drops any of the flood.
    let args = [
        "-i",
        pair.server_if.as_str(),
        "--local",
        server.as_str(),
        "-t",
        "2",
        "-B",
        "128",
        "-q",
    ];
    let daemons: Vec<Daemon> = backends()
        .into_iter()
        .map(|b| Daemon::start(&pair.server, b, &dir.path(&format!("{b}.sock")), &args))
        .collect();

    // 50 genuine handshakes to port 80, answered, their ACKs still to come.
    const GENUINE: u16 = 50;
    let mut opening = Vec::new();
    for p in 0..GENUINE {
        opening.push(frame(mac, c, s, 30_000 + p, 80, 1000, 0, SYN));
        opening.push(frame(mac, s, c, 80, 30_000 + p, 5000, 1001, SYN | ACK));
    }
    inject(&pair.client, &pair.client_if, &opening);
    // Then twice as many unanswered SYN/ACKs as the kernel's IPv4 table
    // holds (65,536), from the server to addresses nobody opened.
    let flood: Vec<Vec<u8>> = (0..131_072u32)
        .map(|i| {
            let to = Ipv4Addr::new(10, 250, (i >> 8) as u8, i as u8);
            frame(mac, s, to, 443, 1024 + (i % 60_000) as u16, i, i, SYN | ACK)
        })
        .collect();
    inject(&pair.client, &pair.client_if, &flood);
    // The genuine handshakes complete.
    let acks: Vec<Vec<u8>> = (0..GENUINE)
        .map(|p| frame(mac, c, s, 30_000 + p, 80, 1001, 5001, ACK))
        .collect();
    inject(&pair.client, &pair.client_if, &acks);

    for d in daemons {
        let b = d.backend.clone();
        // Every genuine handshake judged or counted as evicted (-t 2).
        wait_for(&format!("{b}: the genuine handshakes to end"), || {
            let v: Value = serde_json::from_str(&request(&d.socket, "GET\r\n")).ok()?;
            let rx = filter(&v, "RX");
            let done = rx["success"]["total"].as_u64()? + rx["failure"]["total"].as_u64()?;
            let evicted = stats(&v)["evicted"].as_u64()?;
            (done + evicted >= u64::from(GENUINE)).then_some(())
        });
        let e = d.stop();
        assert!(e.status.success(), "{b}: {}", e.stderr);
        let st = stats(&e.counters);
        assert_eq!(
            st["drop"], 0,
            "{b}: the capture lost some of the flood: {st}"
        );
        let rx = filter(&e.counters, "RX");
        let (ok, failed) = (
            rx["success"]["total"].as_u64().unwrap(),
            rx["failure"]["total"].as_u64().unwrap(),
        );
        let evicted = st["evicted"].as_u64().unwrap();
        eprintln!("{b}: {ok} established, {failed} failed, {evicted} evicted");
        assert_eq!(
            failed, 0,
            "{b}: no genuine handshake may be called a failure"
        );
        assert_eq!(ok + evicted, u64::from(GENUINE), "{b}");
        if b == "ebpf" {
            assert!(
                evicted > 0,
                "the flood evicted nothing: the test proves nothing"
            );
            assert!(
                e.stderr.contains(&format!("evicted  : {evicted}")),
                "{}",
                e.stderr
            );
        } else {
            assert_eq!(evicted, 0, "libpcap has no kernel table");
        }
    }
}
