//! `cargo xtask fixtures`: writes the small capture files in tests/fixtures/
//! that the tests and the README run tcpeek on, each built with
//! [`Trace`](crate::trace::Trace) (classic pcap) except `multilink.pcapng`,
//! which is pcapng (draft-ietf-opsawg-pcapng), written by the test kit's
//! [`PcapngWriter`].
//! Output is deterministic: running the task again produces the same bytes.
//!
//! Hosts: client 10.0.0.2 / fd00::2, server 10.0.0.1 / fd00::1; in
//! `mixed.pcap` 10.0.0.1 also connects out to 192.0.2.x and 2001:db8::x.
//! Every file starts at 2026-01-01T00:00:00Z.

use std::fs;
use std::path::Path;

use anyhow::Context;
use etherparse::{PacketBuilder, TcpHeader};
use tcpeek_testkit::pcap::{ByteOrder, Interface, PcapngWriter};

use crate::trace::{
    syn_options, Addr, Conn, Flags, Link, Trace, ACK, DLT_EN10MB, DLT_RAW, ETHERTYPE_ARP, MS,
    PSH_ACK, SEC, START, SYN, SYN_ACK,
};

/// LINKTYPE_IEEE802_11 (https://www.tcpdump.org/linktypes.html).
const DLT_IEEE802_11: u32 = 105;

const CLIENT: Addr = Addr::V4([10, 0, 0, 2]);
const SERVER: Addr = Addr::V4([10, 0, 0, 1]);
const CLIENT6: Addr = Addr::V6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
const SERVER6: Addr = Addr::V6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const GATEWAY: Addr = Addr::V4([10, 0, 0, 254]);
const DNS: Addr = Addr::V4([10, 0, 0, 53]);

/// One file: what it is called, and what `tests/fixtures/README.md` says.
struct Fixture {
    name: &'static str,
    about: &'static str,
    build: fn() -> Trace,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "success.pcap",
        about: "3 successful IPv4 handshakes to port 80 and 1 to port 443, each followed by data and FIN",
        build: success,
    },
    Fixture {
        name: "success6.pcap",
        about: "2 successful IPv6 handshakes [fd00::2] -> [fd00::1]:443",
        build: success6,
    },
    Fixture {
        name: "reject.pcap",
        about: "2 SYNs to port 81 answered by RST/ACK (ack = ISN+1)",
        build: reject,
    },
    Fixture {
        name: "bogus_rst.pcap",
        about: "SYN, an RST/ACK with a wrong ack (ISN+5), then a valid SYN/ACK and ACK: a success",
        build: bogus_rst,
    },
    Fixture {
        name: "timeout.pcap",
        about: "SYN at t=0 retransmitted at t=1, 3, 7 s, never answered; a UDP packet every 10 s until t=200 s",
        build: timeout,
    },
    Fixture {
        name: "dupsyn.pcap",
        about: "SYN, the same SYN again 1 s later, SYN/ACK, ACK: a success with dupsyn",
        build: dupsyn,
    },
    Fixture {
        name: "dupsynack.pcap",
        about: "SYN, SYN/ACK, the same SYN/ACK again 1 s later, ACK: a success with dupsynack",
        build: dupsynack,
    },
    Fixture {
        name: "unreach.pcap",
        about: "IPv4 SYN answered by ICMP port unreachable (3/3) quoting it; IPv6 SYN answered by ICMPv6 1/4 quoting it",
        build: unreach,
    },
    Fixture {
        name: "icmp_retry.pcap",
        about: "SYN, ICMP host unreachable (3/1) from the gateway quoting it, the same SYN 1 s later never answered; UDP until t=200 s",
        build: icmp_retry,
    },
    Fixture {
        name: "simultaneous.pcap",
        about: "simultaneous open: SYN(x) and SYN(y) cross, then SYN/ACK(x, y+1) and SYN/ACK(y, x+1)",
        build: simultaneous,
    },
    Fixture {
        name: "tfo.pcap",
        about: "TCP Fast Open: SYN with a cookie and 100 bytes of data, SYN/ACK acking ISN+101, ACK",
        build: tfo,
    },
    Fixture {
        name: "sll2.pcap",
        about: "one successful handshake on link type LINUX_SLL2, captured on the server (incoming = host, replies = outgoing)",
        build: sll2,
    },
    Fixture {
        name: "vlan.pcap",
        about: "one successful handshake in 802.1Q-tagged frames (VLAN 100)",
        build: vlan,
    },
    Fixture {
        name: "quiet.pcap",
        about: "a handshake, an hour of silence, then a handshake whose SYN is retransmitted once: two successes",
        build: quiet,
    },
    Fixture {
        name: "damaged_time.pcap",
        about: "lone damaged timestamps: the first frame (year 2099), a SYN/ACK (year 1970) and the last frame (year 2099); \
                two successes with their real durations and one handshake still open at the end",
        build: damaged_time,
    },
    Fixture {
        name: "reordered.pcap",
        about: "records out of order (times right): a SYN/ACK before its SYN, an ACK before its SYN/ACK, a SYN/ACK and SYN \
                with equal stamps; unanswered SYNs at 10 s and 20 s that time out after 60 s although a later record carries an older time (5 s)",
        build: reordered,
    },
    Fixture {
        name: "new_isn.pcap",
        about: "SYN, SYN/ACK, SYN again, SYN/ACK with a new ISN; one client acks the first SYN/ACK, one the second: two successes",
        build: new_isn,
    },
    Fixture {
        name: "tfo_data.pcap",
        about: "TCP Fast Open: the server sends 1000 bytes before the ACK, which acknowledges them; \
                and a client RST inside SYN data the server took, ignored before the ACK",
        build: tfo_data,
    },
    Fixture {
        name: "listener_icmp.pcap",
        about: "ICMP host unreachable quoting a SYN/ACK, then the client's retried SYN and a new SYN/ACK: a success; \
                port unreachable quoting a SYN/ACK, then the ACK: a success; host unreachable and nothing more: unreach",
        build: listener_icmp,
    },
    Fixture {
        name: "client_abort.pcap",
        about: "SYN, SYN/ACK, RST from the client (reset by the client); SYN, RST/ACK from the server (reset by the server)",
        build: client_abort,
    },
    Fixture {
        name: "port_reuse.pcap",
        about: "an unanswered SYN, then 3 s later a SYN with another ISN on the same ports that succeeds",
        build: port_reuse,
    },
    Fixture {
        name: "mixed.pcap",
        about: "the README demo, ~30 handshakes seen from 10.0.0.1 / fd00::1 (run with --local 10.0.0.1 --local fd00::1): \
                successes in and out on 80/443/22, rejects, a timeout, a dupsyn, a dupsynack, an unreachable, IPv6",
        build: mixed,
    },
];

/// A fixture that is not one classic pcap of a [`Trace`]: it writes its own
/// bytes.
struct FileFixture {
    name: &'static str,
    about: &'static str,
    write: fn() -> Vec<u8>,
}

const FILE_FIXTURES: &[FileFixture] = &[
    FileFixture {
        name: "snaplen.pcap",
        about: "snapshot length 68 (old tcpdump's default): 2 successful IPv4 handshakes to port 80 with data and FIN, \
                1 IPv4 SYN to port 81 answered by RST/ACK, 1 IPv6 handshake to port 443; every SYN and SYN/ACK carries \
                MSS, SACK-permitted, timestamps and window scale, so 68 bytes cut their options (IPv4) or their fixed \
                TCP header after the flags (IPv6: 14 of 20 bytes left): 3 successes and 1 reject",
        write: snaplen,
    },
    FileFixture {
        name: "multilink.pcapng",
        about: "pcapng, one section, three interfaces: 0 Ethernet, 1 raw IP (LINKTYPE_RAW, if_tsresol 9: nanoseconds), \
                2 IEEE 802.11 (undecodable, one frame); one successful handshake 10.0.0.2 -> 10.0.0.1:80 on interface 0 \
                and one 10.8.0.2 -> 10.0.0.1:443 on interface 1, interleaved",
        write: multilink,
    },
];

/// Writes every fixture and the README into `dir`.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut readme = String::from(
        "# Capture fixtures\n\n\
         Generated by `cargo xtask fixtures` (xtask/src/fixtures.rs); do not edit by hand.\n\
         Classic pcap, Ethernet unless noted, times from 2026-01-01T00:00:00Z.\n\
         Client 10.0.0.2 / fd00::2, server 10.0.0.1 / fd00::1. Every file also holds\n\
         irrelevant packets (ARP, DNS over UDP, data segments of connections opened before\n\
         the capture).\n\n",
    );
    for fixture in FIXTURES {
        let trace = (fixture.build)();
        let path = dir.join(fixture.name);
        fs::write(&path, trace.to_pcap()).with_context(|| format!("writing {}", path.display()))?;
        readme.push_str(&format!("- `{}`: {}.\n", fixture.name, fixture.about));
        println!("wrote {} ({} frames)", path.display(), trace.frames.len());
    }
    for fixture in FILE_FIXTURES {
        let path = dir.join(fixture.name);
        let bytes = (fixture.write)();
        fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        readme.push_str(&format!("- `{}`: {}.\n", fixture.name, fixture.about));
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    let path = dir.join("README.md");
    fs::write(&path, readme).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

impl Trace {
    /// Adds an ARP request for 10.0.0.1 from 10.0.0.2 (RFC 826).
    fn arp(&mut self, t: u64) {
        let mut arp = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
        arp.extend_from_slice(&CLIENT.mac());
        arp.extend_from_slice(&[10, 0, 0, 2]);
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[10, 0, 0, 1]);
        let frame = self.frame(CLIENT.mac(), [0xff; 6], ETHERTYPE_ARP, false, &arp);
        self.frames.push((t, frame));
    }

    /// Irrelevant traffic: an ARP request, a DNS query and answer, and data
    /// segments of an SSH connection opened before the capture started.
    fn background(&mut self, t: u64) {
        let (client, server) = (CLIENT, SERVER);
        if !matches!(self.link, Link::Sll2 { .. }) {
            self.arp(t);
        }
        self.udp(t + MS, client, DNS, (53_211, 53), &dns_query());
        self.udp(t + 3 * MS, DNS, client, (53, 53_211), &dns_query());
        let seq = self.rng.next() as u32;
        let ack = self.rng.next() as u32;
        self.tcp(
            t + 5 * MS,
            client,
            server,
            (50_022, 22),
            seq,
            ack,
            PSH_ACK,
            &[0x17; 64],
            &[],
        );
        self.tcp(
            t + 6 * MS,
            server,
            client,
            (22, 50_022),
            ack,
            seq.wrapping_add(64),
            ACK,
            &[],
            &[],
        );
    }

    /// One UDP datagram every `every` ns from `from` to `until`, so packet
    /// time moves on (timeouts are measured in packet time).
    fn filler(&mut self, from: u64, until: u64, every: u64) {
        let mut t = from;
        while t <= until {
            self.udp(t, CLIENT, DNS, (53_211, 53), &dns_query());
            t += every;
        }
    }
}

/// A DNS query for example.com, type A (RFC 1035 section 4.1).
fn dns_query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07example\x03com\x00");
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

const RTT: u64 = 800_000; // 0.8 ms on the LAN

// --- scenarios ------------------------------------------------------------

fn success() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 1);
    tr.background(0);
    for (i, port) in [80, 80, 80, 443].into_iter().enumerate() {
        let t = 100 * MS + i as u64 * 250 * MS;
        let c = tr.conn(CLIENT, SERVER, port);
        tr.handshake(t, &c, RTT);
        tr.exchange_and_close(t, &c, RTT);
    }
    tr.background(1_200 * MS);
    tr
}

fn success6() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 2);
    tr.background(0);
    for i in 0..2 {
        let t = 100 * MS + i * 300 * MS;
        let c = tr.conn(CLIENT6, SERVER6, 443);
        tr.handshake(t, &c, RTT);
        tr.exchange_and_close(t, &c, RTT);
    }
    tr.udp(900 * MS, CLIENT6, SERVER6, (5353, 5353), &dns_query());
    tr
}

fn reject() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 3);
    tr.background(0);
    for i in 0..2 {
        let t = 100 * MS + i * 400 * MS;
        let c = tr.conn(CLIENT, SERVER, 81);
        tr.syn(t, &c);
        tr.rst_ack(t + RTT, &c, c.cisn.wrapping_add(1));
    }
    tr.background(1_000 * MS);
    tr
}

fn bogus_rst() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 4);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 100 * MS;
    tr.syn(t, &c);
    // RFC 5961 section 3: an RST whose ack does not match is not acceptable.
    tr.rst_ack(t + 300_000, &c, c.cisn.wrapping_add(5));
    tr.syn_ack(t + RTT, &c);
    tr.ack(t + RTT + 40_000, &c);
    tr.exchange_and_close(t, &c, RTT);
    tr
}

fn timeout() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 5);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    // Linux retransmits a SYN after 1, 3, 7 s (RFC 6298 initial RTO 1 s,
    // doubling).
    for at in [0, 1, 3, 7] {
        tr.syn(at * SEC + 100 * MS, &c);
    }
    tr.filler(10 * SEC, 200 * SEC, 10 * SEC);
    tr
}

fn dupsyn() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 6);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 100 * MS;
    tr.syn(t, &c);
    tr.syn(t + SEC, &c);
    tr.syn_ack(t + SEC + RTT, &c);
    tr.ack(t + SEC + RTT + 40_000, &c);
    tr.exchange_and_close(t + SEC, &c, RTT);
    tr
}

fn dupsynack() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 7);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 100 * MS;
    tr.syn(t, &c);
    tr.syn_ack(t + RTT, &c);
    tr.syn_ack(t + RTT + SEC, &c);
    tr.ack(t + RTT + SEC + 40_000, &c);
    tr.exchange_and_close(t + SEC, &c, RTT);
    tr
}

fn unreach() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 8);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 8080);
    tr.syn(100 * MS, &c);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(100 * MS + RTT, SERVER, CLIENT, 3, 3, &quoted);
    let c6 = tr.conn(CLIENT6, SERVER6, 8080);
    tr.syn(300 * MS, &c6);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(300 * MS + RTT, SERVER6, CLIENT6, 1, 4, &quoted);
    tr
}

fn icmp_retry() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 9);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.syn(100 * MS, &c);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(100 * MS + RTT, GATEWAY, CLIENT, 3, 1, &quoted);
    tr.syn(1_100 * MS, &c);
    tr.filler(10 * SEC, 200 * SEC, 10 * SEC);
    tr
}

fn simultaneous() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 10);
    tr.background(0);
    let (a, b) = (CLIENT, SERVER);
    let (pa, pb) = (5_000, 6_000);
    let x = tr.rng.next() as u32;
    let y = tr.rng.next() as u32;
    let t = 100 * MS;
    let o = syn_options(t);
    // RFC 9293 section 3.5, figure 8.
    tr.tcp(t, a, b, (pa, pb), x, 0, SYN, &[], &o);
    tr.tcp(t + 100_000, b, a, (pb, pa), y, 0, SYN, &[], &o);
    tr.tcp(
        t + RTT,
        a,
        b,
        (pa, pb),
        x,
        y.wrapping_add(1),
        SYN_ACK,
        &[],
        &o,
    );
    tr.tcp(
        t + RTT + 100_000,
        b,
        a,
        (pb, pa),
        y,
        x.wrapping_add(1),
        SYN_ACK,
        &[],
        &o,
    );
    tr
}

fn tfo() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 11);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 443);
    let t = 100 * MS;
    // RFC 7413: the SYN carries the Fast Open cookie option (kind 34) and
    // data; the server acknowledges the data in its SYN/ACK.
    let mut h = TcpHeader::new(c.cport, c.sport, c.cisn, 64_240);
    h.syn = true;
    h.set_options_raw(&[
        2, 4, 0x05, 0xb4, 1, 1, 34, 10, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04,
    ])
    .expect("TFO options fit");
    let (Addr::V4(s), Addr::V4(d)) = (c.client, c.server) else {
        unreachable!()
    };
    let mut ip = Vec::new();
    PacketBuilder::ipv4(s, d, 64)
        .tcp_header(h)
        .write(&mut ip, &[b'G'; 100])
        .expect("TFO SYN builds");
    tr.push(t, c.client, c.server, &ip);
    tr.syn_ack_acking(t + RTT, &c, c.cisn.wrapping_add(101));
    let mut done = c;
    done.cisn = c.cisn.wrapping_add(100);
    tr.ack(t + RTT + 40_000, &done);
    tr
}

fn quiet() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 15);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.handshake(100 * MS, &c, RTT);
    let t = 3_600 * SEC;
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.syn(t, &c);
    tr.syn(t + SEC, &c);
    tr.syn_ack(t + SEC + RTT, &c);
    tr.ack(t + SEC + RTT + 40_000, &c);
    tr
}

fn damaged_time() -> Trace {
    const Y2099: u64 = 4_070_908_800 * SEC;
    let mut tr = Trace::new(Link::Ethernet, 16);
    tr.background(0);
    tr.damaged.push((0, Y2099));
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.handshake(100 * MS, &c, RTT);
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.syn(SEC, &c);
    tr.syn_ack(SEC + RTT, &c);
    tr.damage_last(5 * SEC); // 1970-01-01T00:00:05Z
    tr.ack(SEC + RTT + 40_000, &c);
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.syn(2 * SEC, &c);
    tr.udp(3 * SEC, CLIENT, DNS, (53_211, 53), &dns_query());
    tr.damage_last(Y2099);
    tr
}

fn reordered() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 17);
    tr.as_written = true;
    tr.background(0);
    let us = 1_000;
    // A SYN/ACK recorded before its SYN (a merged multi-queue capture).
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 100 * MS;
    tr.syn_ack(t + 50 * us, &c);
    tr.syn(t, &c);
    tr.ack(t + 90 * us, &c);
    // An ACK recorded before its SYN/ACK.
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 200 * MS;
    tr.syn(t, &c);
    tr.ack(t + 90 * us, &c);
    tr.syn_ack(t + 50 * us, &c);
    // A SYN/ACK and its SYN with the same (microsecond) stamp.
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 300 * MS;
    tr.syn_ack(t, &c);
    tr.syn(t, &c);
    tr.ack(t + 40 * us, &c);
    // An unanswered SYN at 10 s, another at 20 s, then one stamped 5 s:
    // later than the reordering window, handled at the engine's clock
    // (10 s). Packets run on to 100 s.
    let c = tr.conn(CLIENT, SERVER, 81);
    tr.syn(10 * SEC, &c);
    let c = tr.conn(CLIENT, SERVER, 83);
    tr.syn(20 * SEC, &c);
    let late = tr.conn(CLIENT, SERVER, 82);
    tr.syn(5 * SEC, &late);
    for s in 3..=10 {
        tr.udp(s * 10 * SEC, CLIENT, DNS, (53_211, 53), &dns_query());
    }
    tr
}

fn new_isn() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 18);
    tr.background(0);
    for (i, answer_second) in [false, true].into_iter().enumerate() {
        let c = tr.conn(CLIENT, SERVER, 80);
        let t = 100 * MS + i as u64 * 5 * SEC;
        tr.syn(t, &c);
        tr.syn_ack(t + RTT, &c);
        tr.syn(t + SEC, &c);
        // A SYN cookie from the next time slot: another ISN.
        let second = Conn {
            sisn: c.sisn.wrapping_add(0x0100_0000),
            ..c
        };
        tr.syn_ack(t + SEC + RTT, &second);
        tr.ack(
            t + SEC + RTT + 40_000,
            if answer_second { &second } else { &c },
        );
    }
    tr
}

fn tfo_data() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 19);
    tr.background(0);
    for i in 0..2u64 {
        let c = tr.conn(CLIENT, SERVER, 443);
        let t = 100 * MS + i * SEC;
        tr.syn_with(t, &c, &[b'G'; 100]);
        let cnext = c.cisn.wrapping_add(101);
        tr.syn_ack_acking(t + RTT, &c, cnext);
        let mut done = Conn {
            cisn: c.cisn.wrapping_add(100),
            ..c
        };
        if i == 0 {
            // The server's response before the client's ACK (RFC 7413
            // section 4.2.2); the ACK acknowledges it.
            tr.tcp(
                t + RTT + 10_000,
                c.server,
                c.client,
                (c.sport, c.cport),
                c.sisn.wrapping_add(1),
                cnext,
                PSH_ACK,
                &[b'r'; 1000],
                &[],
            );
            done.sisn = c.sisn.wrapping_add(1000);
        } else {
            // An RST inside the SYN data the server took: below RCV.NXT.
            tr.tcp(
                t + RTT + 10_000,
                c.client,
                c.server,
                (c.cport, c.sport),
                c.cisn.wrapping_add(30),
                0,
                Flags {
                    rst: true,
                    ..Flags::default()
                },
                &[],
                &[],
            );
        }
        tr.ack(t + RTT + 40_000, &done);
    }
    tr
}

fn listener_icmp() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 20);
    tr.background(0);
    let router = Addr::V4([10, 0, 0, 254]);
    // Host unreachable for the SYN/ACK: the listener drops its request,
    // the client retries, a new SYN/ACK (new ISN) completes.
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 100 * MS;
    tr.syn(t, &c);
    tr.syn_ack(t + RTT, &c);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(t + 2 * RTT, router, SERVER, 3, 1, &quoted);
    tr.syn(t + SEC, &c);
    let again = Conn {
        sisn: c.sisn.wrapping_add(0x1000),
        ..c
    };
    tr.syn_ack(t + SEC + RTT, &again);
    tr.ack(t + SEC + RTT + 40_000, &again);
    // Port unreachable for the SYN/ACK: not fatal to a listener.
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 3 * SEC;
    tr.syn(t, &c);
    tr.syn_ack(t + RTT, &c);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(t + 2 * RTT, router, SERVER, 3, 3, &quoted);
    tr.ack(t + 3 * RTT, &c);
    // Host unreachable, and the client never comes back: unreachable.
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 5 * SEC;
    tr.syn(t, &c);
    tr.syn_ack(t + RTT, &c);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(t + 2 * RTT, router, SERVER, 3, 1, &quoted);
    tr.filler(10 * SEC, 100 * SEC, 10 * SEC);
    tr
}

fn client_abort() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 21);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    let t = 100 * MS;
    tr.syn(t, &c);
    tr.syn_ack(t + RTT, &c);
    tr.tcp(
        t + RTT + 40_000,
        c.client,
        c.server,
        (c.cport, c.sport),
        c.cisn.wrapping_add(1),
        0,
        Flags {
            rst: true,
            ..Flags::default()
        },
        &[],
        &[],
    );
    let c = tr.conn(CLIENT, SERVER, 81);
    tr.syn(SEC, &c);
    tr.rst_ack(SEC + RTT, &c, c.cisn.wrapping_add(1));
    tr
}

fn port_reuse() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 22);
    tr.background(0);
    let first = tr.conn(CLIENT, SERVER, 80);
    tr.syn(100 * MS, &first);
    let second = Conn {
        cisn: first.cisn.wrapping_add(0x4000_0000),
        sisn: first.sisn.wrapping_add(77),
        ..first
    };
    tr.handshake(3 * SEC + 100 * MS, &second, RTT);
    tr
}

fn sll2() -> Trace {
    let mut tr = Trace::new(Link::Sll2 { local: SERVER }, 12);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.handshake(100 * MS, &c, RTT);
    tr.exchange_and_close(100 * MS, &c, RTT);
    tr
}

fn vlan() -> Trace {
    let mut tr = Trace::new(Link::Vlan(100), 13);
    tr.background(0);
    let c = tr.conn(CLIENT, SERVER, 80);
    tr.handshake(100 * MS, &c, RTT);
    tr.exchange_and_close(100 * MS, &c, RTT);
    tr
}

/// The README demo, seen from 10.0.0.1 / fd00::1: run it with
/// `tcpeek -r tests/fixtures/mixed.pcap --local 10.0.0.1 --local fd00::1`.
fn mixed() -> Trace {
    let mut tr = Trace::new(Link::Ethernet, 14);
    let me = SERVER;
    let me6 = SERVER6;
    let lan = |n: u8| Addr::V4([10, 0, 0, n]);
    let net = |n: u8| Addr::V4([192, 0, 2, n]); // RFC 5737 TEST-NET-1
    let net6 = |n: u8| {
        Addr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]) // RFC 3849
    };
    let lan6 = |n: u8| Addr::V6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]);
    let wan_rtt = 23 * MS;

    let mut t = 0;
    let mut step = |tr: &mut Trace| {
        tr.background(t);
        t += 1_700 * MS;
        t
    };
    // Successes, incoming (RX) on 80, 443, 22.
    for (i, port) in [80, 80, 443, 443, 22, 80, 443, 22, 80, 443]
        .into_iter()
        .enumerate()
    {
        let at = step(&mut tr);
        let c = tr.conn(lan(2 + i as u8 % 6), me, port);
        tr.handshake(at, &c, RTT + i as u64 * 90_000);
        tr.exchange_and_close(at, &c, RTT);
    }
    // Successes, outgoing (TX) to 192.0.2.x.
    for (n, port) in [
        (10, 443),
        (20, 80),
        (30, 22),
        (10, 443),
        (40, 80),
        (20, 443),
    ] {
        let at = step(&mut tr);
        let c = tr.conn(me, net(n), port);
        tr.handshake(at, &c, wan_rtt + u64::from(n) * 100_000);
        tr.exchange_and_close(at, &c, wan_rtt);
    }
    // IPv6, in and out.
    for i in 0..3 {
        let at = step(&mut tr);
        let c = tr.conn(lan6(2 + i), me6, 443);
        tr.handshake(at, &c, RTT);
        tr.exchange_and_close(at, &c, RTT);
    }
    for n in [0x10, 0x20] {
        let at = step(&mut tr);
        let c = tr.conn(me6, net6(n), 443);
        tr.handshake(at, &c, wan_rtt);
        tr.exchange_and_close(at, &c, wan_rtt);
    }
    // Rejects: a closed port here, and one out there.
    for _ in 0..2 {
        let at = step(&mut tr);
        let c = tr.conn(lan(5), me, 81);
        tr.syn(at, &c);
        tr.rst_ack(at + RTT, &c, c.cisn.wrapping_add(1));
    }
    let at = step(&mut tr);
    let c = tr.conn(me, net(50), 8080);
    tr.syn(at, &c);
    tr.rst_ack(at + wan_rtt, &c, c.cisn.wrapping_add(1));
    // A SYN retransmitted once (dupsyn) and a SYN/ACK retransmitted once
    // (dupsynack).
    let at = step(&mut tr);
    let c = tr.conn(lan(7), me, 80);
    tr.syn(at, &c);
    tr.syn(at + SEC, &c);
    tr.handshake_tail(at + SEC, &c, RTT);
    let at = step(&mut tr);
    let c = tr.conn(me, net(60), 443);
    tr.syn(at, &c);
    tr.syn_ack(at + wan_rtt, &c);
    tr.syn_ack(at + wan_rtt + SEC, &c);
    tr.ack(at + wan_rtt + SEC + 40_000, &c);
    // Unreachable: a port nobody listens on, answered by ICMP.
    let at = step(&mut tr);
    let c = tr.conn(me, net(70), 25);
    tr.syn(at, &c);
    let quoted = tr.ip_of_last_frame();
    tr.icmp_error(at + wan_rtt, net(70), me, 3, 3, &quoted);
    // A timeout: SYN and its retransmissions, never answered.
    let at = step(&mut tr);
    let c = tr.conn(me, net(80), 443);
    for rto in [0, 1, 3, 7] {
        tr.syn(at + rto * SEC, &c);
    }
    // Keep packet time moving past any timeout up to 120 s.
    tr.filler(at + 10 * SEC, at + 130 * SEC, 5 * SEC);
    tr
}

impl Trace {
    /// SYN/ACK and ACK after a SYN at `t` (for retransmitted SYNs).
    fn handshake_tail(&mut self, t: u64, c: &Conn, rtt: u64) {
        self.syn_ack(t + rtt, c);
        self.ack(t + rtt + 40_000, c);
        self.exchange_and_close(t, c, rtt);
    }
}

// --- snapshot length and pcapng -------------------------------------------

/// Old tcpdump's default snapshot length: Ethernet + IPv4 + TCP + 14 bytes.
/// (With IPv6 support its default was 96: 68 bytes leave an IPv6 SYN only
/// 14 bytes of TCP header.)
const OLD_TCPDUMP_SNAPLEN: u32 = 68;

fn snaplen() -> Vec<u8> {
    let mut tr = Trace::new(Link::Ethernet, 15);
    tr.background(0);
    for i in 0..2 {
        let t = 100 * MS + i * 250 * MS;
        let c = tr.conn(CLIENT, SERVER, 80);
        tr.handshake(t, &c, RTT);
        tr.exchange_and_close(t, &c, RTT);
    }
    let c = tr.conn(CLIENT, SERVER, 81);
    tr.syn(700 * MS, &c);
    tr.rst_ack(700 * MS + RTT, &c, c.cisn.wrapping_add(1));
    let c = tr.conn(CLIENT6, SERVER6, 443);
    tr.handshake(900 * MS, &c, RTT);
    tr.background(1_200 * MS);
    tr.to_pcap_cut(OLD_TCPDUMP_SNAPLEN)
}

fn multilink() -> Vec<u8> {
    let mut eth = Trace::new(Link::Ethernet, 16);
    eth.background(0);
    let c = eth.conn(CLIENT, SERVER, 80);
    eth.handshake(100 * MS, &c, RTT);
    eth.exchange_and_close(100 * MS, &c, RTT);
    // The tunnel: its own client address, frames starting at the IP header.
    let mut tun = Trace::new(Link::Raw, 17);
    let c = tun.conn(Addr::V4([10, 8, 0, 2]), SERVER, 443);
    // Interleaved with the Ethernet handshake, a nanosecond off the
    // microsecond grid to show the interface's resolution.
    tun.handshake(100 * MS + RTT / 2 + 1, &c, RTT);
    // An 802.11 data frame header (IEEE 802.11-2020 9.3.2.1): frame control,
    // duration, three addresses, sequence control; tcpeek does not decode
    // this link type.
    let mut wifi = vec![0x08, 0x01, 0, 0];
    wifi.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
    wifi.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x11]);
    wifi.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x12]);
    wifi.extend_from_slice(&[0, 0]);
    wifi.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]); // LLC/SNAP, IPv4
    let idb = |dlt: u32| {
        let dlt = u16::try_from(dlt).expect("IDB link types are 16 bits");
        Interface::new(dlt).with_snaplen(262_144)
    };
    let mut ng = PcapngWriter::new(ByteOrder::Little);
    ng.interface(idb(DLT_EN10MB));
    ng.interface(idb(DLT_RAW).with_tsresol(9));
    ng.interface(idb(DLT_IEEE802_11));
    let mut frames: Vec<(u64, u32, &[u8])> = Vec::new();
    frames.extend(eth.frames.iter().map(|(t, f)| (*t, 0, &f[..])));
    frames.extend(tun.frames.iter().map(|(t, f)| (*t, 1, &f[..])));
    frames.push((50 * MS, 2, &wifi[..]));
    frames.sort_by_key(|&(t, iface, _)| (t, iface));
    for (t, iface, frame) in frames {
        ng.enhanced_packet_ns(iface, START * SEC + t, frame);
    }
    ng.into_bytes()
}
