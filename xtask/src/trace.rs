//! A capture being built frame by frame, and its pcap file: the builder
//! behind `cargo xtask fixtures` (small files with one story each) and
//! `cargo xtask bench-load` (large generated streams).
//!
//! Frames are built with etherparse's `PacketBuilder` (so lengths and
//! checksums are right) and written as classic pcap (little-endian,
//! microsecond times) by the test kit's [`PcapWriter`]. Output is
//! deterministic: sequence numbers come from a fixed-seed generator and
//! times from a fixed start, so building a trace again produces the same
//! bytes.

use std::io::{self, Write};

use etherparse::{PacketBuilder, TcpHeader, TcpOptionElement};
use tcpeek_testkit::pcap::{PcapHeader, PcapWriter};

/// 2026-01-01T00:00:00Z in seconds since the epoch: every trace starts there.
pub(crate) const START: u64 = 1_767_225_600;
/// Nanoseconds per second and millisecond, for readable times.
pub(crate) const SEC: u64 = 1_000_000_000;
pub(crate) const MS: u64 = 1_000_000;

pub(crate) const DLT_EN10MB: u32 = 1;
const DLT_LINUX_SLL2: u32 = 276;
/// LINKTYPE_RAW (https://www.tcpdump.org/linktypes.html).
pub(crate) const DLT_RAW: u32 = 101;

const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    /// A locally administered MAC derived from the address, so each host
    /// keeps one MAC across frames.
    pub(crate) fn mac(self) -> [u8; 6] {
        match self {
            Addr::V4([a, b, c, d]) => [0x02, 0x00, a, b, c, d],
            Addr::V6(a) => [0x02, 0x00, a[12], a[13], a[14], a[15]],
        }
    }
}

/// Link layer of a trace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Ethernet,
    Vlan(u16),
    /// SLL2 as captured on `local`: frames from it are outgoing.
    Sll2 {
        local: Addr,
    },
    /// LINKTYPE_RAW: frames are IP packets (a tunnel such as WireGuard).
    Raw,
}

/// TCP segment flags as the builder takes them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Flags {
    pub(crate) syn: bool,
    pub(crate) ack: bool,
    pub(crate) rst: bool,
    pub(crate) fin: bool,
    pub(crate) psh: bool,
}

pub(crate) const SYN: Flags = Flags {
    syn: true,
    ack: false,
    rst: false,
    fin: false,
    psh: false,
};
pub(crate) const SYN_ACK: Flags = Flags { ack: true, ..SYN };
pub(crate) const ACK: Flags = Flags {
    syn: false,
    ack: true,
    rst: false,
    fin: false,
    psh: false,
};
pub(crate) const PSH_ACK: Flags = Flags { psh: true, ..ACK };
pub(crate) const FIN_ACK: Flags = Flags { fin: true, ..ACK };
pub(crate) const RST_ACK: Flags = Flags { rst: true, ..ACK };

/// A TCP connection's endpoints and initial sequence numbers.
#[derive(Clone, Copy)]
pub(crate) struct Conn {
    pub(crate) client: Addr,
    pub(crate) server: Addr,
    pub(crate) cport: u16,
    pub(crate) sport: u16,
    /// Client ISN.
    pub(crate) cisn: u32,
    /// Server ISN.
    pub(crate) sisn: u32,
}

/// A capture being built: frames with their times (ns since START).
pub(crate) struct Trace {
    pub(crate) link: Link,
    pub(crate) frames: Vec<(u64, Vec<u8>)>,
    pub(crate) rng: SplitMix,
    pub(crate) next_port: u16,
    /// Write frames in the order they were added, not in time order
    /// (records delivered out of order).
    pub(crate) as_written: bool,
    /// Frames (by index) whose record carries this absolute timestamp
    /// (ns since the epoch) instead of START + their time: damaged stamps.
    pub(crate) damaged: Vec<(usize, u64)>,
}

impl Trace {
    pub(crate) fn new(link: Link, seed: u64) -> Trace {
        Trace {
            link,
            frames: Vec::new(),
            rng: SplitMix(seed),
            next_port: 40_000 + (seed % 20_000) as u16,
            as_written: false,
            damaged: Vec::new(),
        }
    }

    /// The last frame's record is stamped `abs_ns` (ns since the epoch).
    pub(crate) fn damage_last(&mut self, abs_ns: u64) {
        self.damaged.push((self.frames.len() - 1, abs_ns));
    }

    /// A new connection with an ephemeral client port and random ISNs.
    pub(crate) fn conn(&mut self, client: Addr, server: Addr, sport: u16) -> Conn {
        self.next_port = self
            .next_port
            .wrapping_add(1 + (self.rng.next() % 50) as u16);
        if self.next_port < 32_768 {
            self.next_port += 32_768;
        }
        Conn {
            client,
            server,
            cport: self.next_port,
            sport,
            cisn: self.rng.next() as u32,
            sisn: self.rng.next() as u32,
        }
    }

    /// Adds a TCP segment.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call per segment reads like a trace"
    )]
    pub(crate) fn tcp(
        &mut self,
        t: u64,
        src: Addr,
        dst: Addr,
        ports: (u16, u16),
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: &[u8],
        options: &[TcpOptionElement],
    ) {
        let mut h = TcpHeader::new(ports.0, ports.1, seq, if flags.syn { 64_240 } else { 502 });
        h.syn = flags.syn;
        h.ack = flags.ack;
        h.rst = flags.rst;
        h.fin = flags.fin;
        h.psh = flags.psh;
        if flags.ack {
            h.acknowledgment_number = ack;
        }
        h.set_options(options).expect("fixture TCP options fit");
        let mut ip = Vec::new();
        match (src, dst) {
            (Addr::V4(s), Addr::V4(d)) => PacketBuilder::ipv4(s, d, 64)
                .tcp_header(h)
                .write(&mut ip, payload),
            (Addr::V6(s), Addr::V6(d)) => PacketBuilder::ipv6(s, d, 64)
                .tcp_header(h)
                .write(&mut ip, payload),
            _ => panic!("fixture mixes address families"),
        }
        .expect("fixture packet builds");
        self.push(t, src, dst, &ip);
    }

    /// Adds an ICMP/ICMPv6 error from `from` to `to` quoting `quoted` (an IP
    /// packet).
    pub(crate) fn icmp_error(
        &mut self,
        t: u64,
        from: Addr,
        to: Addr,
        ty: u8,
        code: u8,
        quoted: &[u8],
    ) {
        let mut ip = Vec::new();
        match (from, to) {
            (Addr::V4(s), Addr::V4(d)) => PacketBuilder::ipv4(s, d, 64)
                .icmpv4_raw(ty, code, [0; 4])
                .write(&mut ip, quoted),
            (Addr::V6(s), Addr::V6(d)) => PacketBuilder::ipv6(s, d, 64)
                .icmpv6_raw(ty, code, [0; 4])
                .write(&mut ip, quoted),
            _ => panic!("fixture mixes address families"),
        }
        .expect("fixture ICMP builds");
        self.push(t, from, to, &ip);
    }

    /// Adds a UDP datagram (irrelevant to tcpeek).
    pub(crate) fn udp(&mut self, t: u64, src: Addr, dst: Addr, ports: (u16, u16), payload: &[u8]) {
        let mut ip = Vec::new();
        match (src, dst) {
            (Addr::V4(s), Addr::V4(d)) => PacketBuilder::ipv4(s, d, 64)
                .udp(ports.0, ports.1)
                .write(&mut ip, payload),
            (Addr::V6(s), Addr::V6(d)) => PacketBuilder::ipv6(s, d, 64)
                .udp(ports.0, ports.1)
                .write(&mut ip, payload),
            _ => panic!("fixture mixes address families"),
        }
        .expect("fixture UDP builds");
        self.push(t, src, dst, &ip);
    }

    pub(crate) fn push(&mut self, t: u64, src: Addr, dst: Addr, ip: &[u8]) {
        let ethertype = match src {
            Addr::V4(_) => ETHERTYPE_IPV4,
            Addr::V6(_) => ETHERTYPE_IPV6,
        };
        let outgoing = matches!(self.link, Link::Sll2 { local } if local == src);
        let frame = self.frame(src.mac(), dst.mac(), ethertype, outgoing, ip);
        self.frames.push((t, frame));
    }

    pub(crate) fn frame(
        &self,
        src: [u8; 6],
        dst: [u8; 6],
        ethertype: u16,
        outgoing: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::with_capacity(payload.len() + 20);
        match self.link {
            Link::Ethernet => {
                f.extend_from_slice(&dst);
                f.extend_from_slice(&src);
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Vlan(vid) => {
                f.extend_from_slice(&dst);
                f.extend_from_slice(&src);
                f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Sll2 { .. } => {
                // LINKTYPE_LINUX_SLL2: protocol, reserved, ifindex, ARPHRD,
                // packet type, address length, address (8 bytes, padded).
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&2u32.to_be_bytes());
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.push(if outgoing { 4 } else { 0 }); // PACKET_OUTGOING / HOST
                f.push(6);
                f.extend_from_slice(&src);
                f.extend_from_slice(&[0, 0]);
            }
            Link::Raw => {}
        }
        f.extend_from_slice(payload);
        f
    }

    /// The IP packet of a segment, for quoting in ICMP errors.
    pub(crate) fn ip_of_last_frame(&self) -> Vec<u8> {
        let (_, frame) = self.frames.last().expect("a frame to quote");
        let link_len = match self.link {
            Link::Ethernet => 14,
            Link::Vlan(_) => 18,
            Link::Sll2 { .. } => 20,
            Link::Raw => 0,
        };
        frame[link_len..].to_vec()
    }

    // --- conversation helpers -------------------------------------------

    pub(crate) fn syn(&mut self, t: u64, c: &Conn) {
        self.syn_with(t, c, &[]);
    }

    pub(crate) fn syn_with(&mut self, t: u64, c: &Conn, data: &[u8]) {
        let opts = syn_options(t);
        self.tcp(
            t,
            c.client,
            c.server,
            (c.cport, c.sport),
            c.cisn,
            0,
            SYN,
            data,
            &opts,
        );
    }

    pub(crate) fn syn_ack(&mut self, t: u64, c: &Conn) {
        self.syn_ack_acking(t, c, c.cisn.wrapping_add(1));
    }

    pub(crate) fn syn_ack_acking(&mut self, t: u64, c: &Conn, ack: u32) {
        let opts = syn_options(t);
        self.tcp(
            t,
            c.server,
            c.client,
            (c.sport, c.cport),
            c.sisn,
            ack,
            SYN_ACK,
            &[],
            &opts,
        );
    }

    /// The client's ACK completing the handshake.
    pub(crate) fn ack(&mut self, t: u64, c: &Conn) {
        self.tcp(
            t,
            c.client,
            c.server,
            (c.cport, c.sport),
            c.cisn.wrapping_add(1),
            c.sisn.wrapping_add(1),
            ACK,
            &[],
            &[],
        );
    }

    pub(crate) fn rst_ack(&mut self, t: u64, c: &Conn, ack: u32) {
        self.tcp(
            t,
            c.server,
            c.client,
            (c.sport, c.cport),
            0,
            ack,
            RST_ACK,
            &[],
            &[],
        );
    }

    /// SYN, SYN/ACK after `rtt`, ACK right after.
    pub(crate) fn handshake(&mut self, t: u64, c: &Conn, rtt: u64) {
        self.syn(t, c);
        self.syn_ack(t + rtt, c);
        self.ack(t + rtt + 40_000, c);
    }

    /// The first data after a handshake: a `req`-byte request from the
    /// client at `t`, and the server's `resp`-byte response `rtt` later.
    pub(crate) fn request_and_response(
        &mut self,
        t: u64,
        c: &Conn,
        rtt: u64,
        req: usize,
        resp: usize,
    ) {
        let cseq = c.cisn.wrapping_add(1);
        let sseq = c.sisn.wrapping_add(1);
        let (cp, sp) = (c.cport, c.sport);
        self.tcp(
            t,
            c.client,
            c.server,
            (cp, sp),
            cseq,
            sseq,
            PSH_ACK,
            &vec![b'q'; req],
            &[],
        );
        self.tcp(
            t + rtt,
            c.server,
            c.client,
            (sp, cp),
            sseq,
            cseq.wrapping_add(req as u32),
            PSH_ACK,
            &vec![b'r'; resp],
            &[],
        );
    }

    /// A request, a response and a FIN exchange after a handshake at `t`.
    pub(crate) fn exchange_and_close(&mut self, t: u64, c: &Conn, rtt: u64) {
        let (req, resp) = (120usize, 1_200usize);
        let t = t + rtt + 100_000;
        self.request_and_response(t, c, rtt, req, resp);
        let cseq = c.cisn.wrapping_add(1 + req as u32);
        let sseq = c.sisn.wrapping_add(1 + resp as u32);
        let (cp, sp) = (c.cport, c.sport);
        let t = t + rtt + 200_000;
        self.tcp(
            t,
            c.client,
            c.server,
            (cp, sp),
            cseq,
            sseq,
            FIN_ACK,
            &[],
            &[],
        );
        let t = t + rtt;
        let cseq = cseq.wrapping_add(1);
        self.tcp(
            t,
            c.server,
            c.client,
            (sp, cp),
            sseq,
            cseq,
            FIN_ACK,
            &[],
            &[],
        );
        let t = t + 50_000;
        self.tcp(
            t,
            c.client,
            c.server,
            (cp, sp),
            cseq,
            sseq.wrapping_add(1),
            ACK,
            &[],
            &[],
        );
    }
}

impl Trace {
    /// The pcap file: global header, then records in time order.
    pub(crate) fn to_pcap(&self) -> Vec<u8> {
        self.to_pcap_cut(65_535)
    }

    /// The pcap file with snapshot length `snaplen`: longer frames are cut
    /// to it, keeping their original length, as a capture would.
    pub(crate) fn to_pcap_cut(&self, snaplen: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_pcap_cut(&mut out, snaplen)
            .expect("writing to memory");
        out
    }

    /// [`Trace::to_pcap`] written to `w`: a large trace need not be copied
    /// into memory first.
    pub(crate) fn write_pcap(&self, w: &mut impl Write) -> io::Result<()> {
        self.write_pcap_cut(w, 65_535)
    }

    fn write_pcap_cut(&self, w: &mut impl Write, snaplen: u32) -> io::Result<()> {
        // (time, stamp written, frame): a damaged stamp keeps its frame's
        // place.
        let mut frames: Vec<(u64, u64, &[u8])> = self
            .frames
            .iter()
            .enumerate()
            .map(|(i, (t, f))| {
                let abs = self
                    .damaged
                    .iter()
                    .find(|d| d.0 == i)
                    .map_or(START * SEC + t, |d| d.1);
                (*t, abs, f.as_slice())
            })
            .collect();
        if !self.as_written {
            frames.sort_by_key(|f| f.0); // stable: same-time frames keep order
        }
        let header = PcapHeader {
            snaplen,
            ..PcapHeader::new(self.dlt())
        };
        let mut pcap = PcapWriter::new(w, header)?;
        for (_, abs, frame) in frames {
            pcap.record(abs, frame)?;
        }
        Ok(())
    }

    /// The trace's link type number.
    pub(crate) fn dlt(&self) -> u32 {
        match self.link {
            Link::Ethernet | Link::Vlan(_) => DLT_EN10MB,
            Link::Sll2 { .. } => DLT_LINUX_SLL2,
            Link::Raw => DLT_RAW,
        }
    }
}

/// Linux-like SYN options: MSS, SACK permitted, timestamps, window scale.
pub(crate) fn syn_options(t: u64) -> [TcpOptionElement; 5] {
    [
        TcpOptionElement::MaximumSegmentSize(1460),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp((t / MS) as u32 + 1_000_000, 0),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(7),
    ]
}

/// SplitMix64 (Steele, Lea, Flood 2014): deterministic "random" ISNs and
/// ports from a fixed seed.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
