//! The walk on byte arrays. (The libpcap decoder's tests in
//! `tcpeek/src/capture/decode/tests.rs` cover it through every link type;
//! these pin what the kernel side relies on.)

use super::*;
use crate::tcp_flags::{ACK, SYN};

/// Ethernet + IPv4 (20) + TCP (20) SYN/ACK with `data` bytes.
fn eth_v4_tcp(flags: u8, data: usize) -> [u8; 128] {
    let mut f = [0u8; 128];
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 20 + data) as u16).to_be_bytes());
    ip[9] = IPPROTO_TCP;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let th = &mut ip[20..];
    th[0..2].copy_from_slice(&40000u16.to_be_bytes());
    th[2..4].copy_from_slice(&80u16.to_be_bytes());
    th[4..8].copy_from_slice(&7u32.to_be_bytes());
    th[8..12].copy_from_slice(&9u32.to_be_bytes());
    th[12] = 5 << 4;
    th[13] = flags;
    f
}

fn walk_eth(f: &[u8], wire_len: usize) -> Result<Event, Stop> {
    let pkt = Packet::new(f);
    ethernet(&pkt, wire_len)?.event(&pkt, crate::DIR_INGRESS)
}

#[test]
fn ipv4_tcp_event_has_every_field() {
    let f = eth_v4_tcp(SYN | ACK, 5);
    let ev = walk_eth(&f[..59], 59).unwrap();
    assert_eq!(&ev.saddr[..4], &[10, 0, 0, 1]);
    assert_eq!(&ev.daddr[..4], &[10, 0, 0, 2]);
    assert_eq!(ev.saddr[4..], [0; 12]);
    assert_eq!((ev.sport, ev.dport, ev.seq, ev.ack), (40000, 80, 7, 9));
    assert_eq!((ev.tcp_flags, ev.payload_len), (SYN | ACK, 5));
    assert_eq!(
        (ev.kind, ev.family, ev.direction),
        (KIND_TCP, FAMILY_V4, crate::DIR_INGRESS)
    );
}

#[test]
fn padding_after_the_ip_length_is_not_payload() {
    let f = eth_v4_tcp(SYN, 0);
    let ev = walk_eth(&f[..60], 60).unwrap();
    assert_eq!(ev.payload_len, 0);
}

#[test]
fn a_packet_shorter_than_its_ip_length_is_truncated_not_short() {
    let f = eth_v4_tcp(SYN, 10);
    assert_eq!(
        walk_eth(&f[..54], 54),
        Err(Stop::Truncated {
            layer: Layer::Ipv4Packet,
            needed: 50,
            available: 40
        })
    );
    // Captured up to 54 of 64 bytes: short, only if the header is cut.
    assert!(walk_eth(&f[..54], 64).is_ok());
    assert!(matches!(
        walk_eth(&f[..40], 64),
        Err(Stop::Short {
            layer: Layer::Tcp,
            ..
        })
    ));
}

#[test]
fn a_header_longer_than_the_segment_is_truncated() {
    let mut f = eth_v4_tcp(SYN, 0);
    f[14 + 20 + 12] = 10 << 4;
    assert_eq!(
        walk_eth(&f[..54], 54),
        Err(Stop::Truncated {
            layer: Layer::Tcp,
            needed: 40,
            available: 20
        })
    );
}
