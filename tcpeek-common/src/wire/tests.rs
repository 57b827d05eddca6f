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

// ---------------------------------------------------------------------------
// Byte-array builders for the tests below, one per layer.

extern crate std;
use std::{vec, vec::Vec};

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [192, 0, 2, 2];
const SRC6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// A TCP header of `doff` bytes (options zero) with `flags`, then `data`.
fn tcp(flags: u8, doff: usize, data: usize) -> Vec<u8> {
    let mut t = vec![0u8; doff + data];
    t[0..2].copy_from_slice(&1234u16.to_be_bytes());
    t[2..4].copy_from_slice(&443u16.to_be_bytes());
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    t[8..12].copy_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    t[12] = ((doff / 4) as u8) << 4;
    t[13] = flags;
    t
}

/// An IPv4 packet: a header of `hlen` bytes (options zero), then `payload`.
fn v4(proto: u8, hlen: usize, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; hlen];
    h[0] = 0x40 | (hlen / 4) as u8;
    h[2..4].copy_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&SRC4);
    h[16..20].copy_from_slice(&DST4);
    h.extend_from_slice(payload);
    h
}

/// An IPv6 packet with next header `next`, then `payload`.
fn v6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&SRC6);
    h[24..40].copy_from_slice(&DST6);
    h.extend_from_slice(payload);
    h
}

/// An 8-byte extension header (hop-by-hop, routing, destination options)
/// announcing `next`.
fn ext(next: u8) -> [u8; 8] {
    [next, 0, 0, 0, 0, 0, 0, 0]
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ICMP (`v6` false) or ICMPv6 error of `ty`/`code` quoting `quote`.
fn icmp(ty: u8, code: u8, quote: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(quote);
    m
}

fn walk_all(frame: &[u8], wire_len: usize) -> Result<Found<'_>, Stop> {
    ethernet(&Packet::new(frame), wire_len)
}

fn found(frame: &[u8]) -> Found<'_> {
    match walk_all(frame, frame.len()) {
        Ok(f) => f,
        Err(e) => panic!("{e:?} for {frame:02x?}"),
    }
}

fn stop(frame: &[u8]) -> Stop {
    match walk_all(frame, frame.len()) {
        Ok(_) => panic!("found a segment in {frame:02x?}"),
        Err(e) => e,
    }
}

fn tcp_of(frame: &[u8]) -> Tcp<'_> {
    match found(frame) {
        Found::Tcp(t) => t,
        Found::Unreachable(_) => panic!("an ICMP error, not TCP"),
    }
}

fn unreach_of(frame: &[u8]) -> Unreachable<'_> {
    match found(frame) {
        Found::Unreachable(u) => u,
        Found::Tcp(_) => panic!("TCP, not an ICMP error"),
    }
}

fn syn4() -> Vec<u8> {
    v4(IPPROTO_TCP, 20, &tcp(SYN, 20, 0))
}

fn syn6() -> Vec<u8> {
    v6(IPPROTO_TCP, &tcp(SYN, 20, 0))
}

mod link {
    use super::*;

    #[test]
    fn every_vlan_tpid_up_to_two_tags() {
        for tpids in [
            &[ETHERTYPE_8021Q][..],
            &[ETHERTYPE_8021AD],
            &[ETHERTYPE_QINQ],
            &[ETHERTYPE_8021AD, ETHERTYPE_8021Q],
            &[ETHERTYPE_QINQ, ETHERTYPE_8021Q],
        ] {
            let mut inner = Vec::new();
            for &t in &tpids[1..] {
                inner.extend_from_slice(&[0, 5]);
                inner.extend_from_slice(&t.to_be_bytes());
            }
            inner.extend_from_slice(&[0, 5]);
            inner.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            inner.extend_from_slice(&syn4());
            let f = eth(tpids[0], &inner);
            let t = tcp_of(&f);
            assert_eq!(t.ip.l3, 14 + 4 * tpids.len(), "{tpids:x?}");
        }
    }

    #[test]
    fn a_third_tag_is_unsupported() {
        let mut inner = Vec::new();
        for t in [ETHERTYPE_8021Q, ETHERTYPE_8021Q, ETHERTYPE_IPV4] {
            inner.extend_from_slice(&[0, 5]);
            inner.extend_from_slice(&t.to_be_bytes());
        }
        inner.extend_from_slice(&syn4());
        let f = eth(ETHERTYPE_8021AD, &inner);
        assert_eq!(stop(&f), Stop::Unsupported(Unsupported::VlanTags));
    }

    #[test]
    fn a_cut_tag_is_short() {
        let f = eth(ETHERTYPE_8021Q, &[0, 5]);
        assert_eq!(
            stop(&f),
            Stop::Short {
                layer: Layer::Vlan,
                needed: 4,
                available: 2
            }
        );
    }

    #[test]
    fn other_ethertypes_are_ignored() {
        assert_eq!(stop(&eth(0x0806, &[0; 28])), Stop::Ignored);
    }

    #[test]
    fn cut_ethernet_header_is_short() {
        assert_eq!(
            stop(&[0; 13]),
            Stop::Short {
                layer: Layer::Ethernet,
                needed: 14,
                available: 13
            }
        );
    }

    #[test]
    fn raw_ip_by_version_nibble() {
        for (p, v6) in [(syn4(), false), (syn6(), true)] {
            let pkt = Packet::new(&p);
            let Ok(Found::Tcp(t)) = raw_ip(&pkt, p.len()) else {
                panic!("raw IP");
            };
            assert_eq!((t.ip.l3, t.ip.v6), (0, v6));
            let Ok(Found::Tcp(t)) = walk(&pkt, crate::framing::IP, p.len()) else {
                panic!("walk with IP framing");
            };
            assert_eq!(t.ip.v6, v6);
        }
        let mut p = syn4();
        p[0] = 0x55;
        assert_eq!(
            raw_ip(&Packet::new(&p), p.len()).err(),
            Some(Stop::Malformed {
                layer: Layer::Ip,
                why: Malformed::Version(5)
            })
        );
        // Fewer than 20 bytes are short on both sides, whatever the version.
        assert!(matches!(
            raw_ip(&Packet::new(&p[..19]), 19),
            Err(Stop::Short {
                layer: Layer::Ip,
                needed: 20,
                ..
            })
        ));
        let f = eth(ETHERTYPE_IPV4, &syn4());
        let pkt = Packet::new(&f);
        assert!(matches!(
            walk(&pkt, crate::framing::ETHERNET, f.len()),
            Ok(Found::Tcp(_))
        ));
    }

    #[test]
    fn after_a_cooked_header() {
        let mut f = vec![0u8; 16];
        f.extend_from_slice(&syn6());
        let pkt = Packet::new(&f);
        let Ok(Found::Tcp(t)) = from_ethertype(&pkt, ETHERTYPE_IPV6, 16, f.len()) else {
            panic!("IPv6 after 16 bytes");
        };
        assert_eq!(t.ip.l3, 16);
    }
}

mod ipv4 {
    use super::*;

    #[test]
    fn options_are_skipped() {
        let f = eth(ETHERTYPE_IPV4, &v4(IPPROTO_TCP, 28, &tcp(SYN, 20, 3)));
        let t = tcp_of(&f);
        assert_eq!((t.ip.header_len, t.ip.l4, t.ip.l4_len), (28, 14 + 28, 23));
        assert_eq!(t.payload_len(), 3);
        assert!(t.ip.complete && !t.ip.fragmented && !t.ip.v6);
    }

    #[test]
    fn options_past_the_bytes_are_short() {
        let f = eth(ETHERTYPE_IPV4, &v4(IPPROTO_TCP, 60, &tcp(SYN, 20, 0)));
        assert!(matches!(
            walk_all(&f[..14 + 40], f.len()),
            Err(Stop::Short {
                layer: Layer::Ipv4,
                needed: 60,
                ..
            })
        ));
    }

    #[test]
    fn bad_version_or_header_length_is_malformed() {
        let mut p = syn4();
        p[0] = 0x65;
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &p)),
            Stop::Malformed {
                layer: Layer::Ipv4,
                why: Malformed::Version(6)
            }
        );
        p[0] = 0x44;
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &p)),
            Stop::Malformed {
                layer: Layer::Ipv4,
                why: Malformed::HeaderLength(16)
            }
        );
    }

    #[test]
    fn total_length_below_the_header_is_malformed() {
        let mut p = syn4();
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &p)),
            Stop::Malformed {
                layer: Layer::Ipv4,
                why: Malformed::TotalLength {
                    total: 19,
                    header: 20
                }
            }
        );
        // Exactly the header: no room for TCP.
        p[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert!(matches!(
            stop(&eth(ETHERTYPE_IPV4, &p)),
            Stop::Truncated {
                layer: Layer::Tcp,
                ..
            } | Stop::Short {
                layer: Layer::Tcp,
                ..
            }
        ));
    }

    #[test]
    fn a_packet_shorter_than_its_total_length_is_truncated() {
        let f = eth(ETHERTYPE_IPV4, &syn4());
        assert_eq!(
            walk_all(&f[..50], 50).err(),
            Some(Stop::Truncated {
                layer: Layer::Ipv4Packet,
                needed: 40,
                available: 36
            })
        );
        // The same bytes, captured from a longer packet: fine.
        assert!(walk_all(&f[..50], 54).is_ok());
        // Exactly as long as the total length.
        assert!(walk_all(&f, 54).is_ok());
    }

    #[test]
    fn zero_total_length_takes_the_wire_length() {
        let mut p = v4(IPPROTO_TCP, 20, &tcp(ACK, 20, 100));
        p[2..4].copy_from_slice(&[0, 0]);
        let f = eth(ETHERTYPE_IPV4, &p);
        assert_eq!(tcp_of(&f).payload_len(), 100);
        let t = match walk_all(&f[..80], f.len() + 1000) {
            Ok(Found::Tcp(t)) => t,
            _ => panic!("TSO super-packet"),
        };
        assert_eq!((t.payload_len(), t.ip.complete), (1100, false));
    }

    #[test]
    fn fragments() {
        let mut p = syn4();
        p[6] = 0x20; // more fragments, offset 0
        let f = eth(ETHERTYPE_IPV4, &p);
        assert!(tcp_of(&f).ip.fragmented);
        p[6] = 0x40; // don't fragment
        assert!(!tcp_of(&eth(ETHERTYPE_IPV4, &p)).ip.fragmented);
        for (hi, lo) in [(0x00, 0x01), (0x10, 0x00), (0x20, 0x80)] {
            p[6] = hi;
            p[7] = lo;
            assert_eq!(
                stop(&eth(ETHERTYPE_IPV4, &p)),
                Stop::Ignored,
                "{hi:x} {lo:x}"
            );
        }
    }

    #[test]
    fn authentication_header_is_followed() {
        // AH: next header, length 4 (24 bytes), reserved, SPI, sequence, ICV.
        let mut ah = vec![IPPROTO_TCP, 4, 0, 0];
        ah.extend_from_slice(&[0; 20]);
        ah.extend_from_slice(&tcp(SYN, 20, 2));
        let f = eth(ETHERTYPE_IPV4, &v4(IPPROTO_AH, 20, &ah));
        let t = tcp_of(&f);
        assert_eq!(
            (t.ip.l4, t.ip.l4_len, t.payload_len()),
            (14 + 20 + 24, 22, 2)
        );
        // Length 0 is shorter than AH itself.
        let mut bad = ah.clone();
        bad[1] = 0;
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_AH, 20, &bad))),
            Stop::Malformed {
                layer: Layer::Ah,
                why: Malformed::AhLength
            }
        );
        // Longer than the packet.
        let mut long = ah.clone();
        long[1] = 20;
        assert!(matches!(
            stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_AH, 20, &long))),
            Stop::Truncated {
                layer: Layer::Ah,
                needed: 88,
                ..
            }
        ));
        // Cut by the capture.
        assert!(matches!(
            walk_all(&f[..14 + 20 + 20], f.len()),
            Err(Stop::Short {
                layer: Layer::Ah,
                needed: 24,
                ..
            })
        ));
    }

    #[test]
    fn other_protocols_are_ignored() {
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &v4(17, 20, &[0; 8]))),
            Stop::Ignored
        );
        // ICMPv6 inside IPv4 is not an error this walk reads.
        let q = icmp(ICMPV6_DEST_UNREACH, 4, &syn6());
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_ICMPV6, 20, &q))),
            Stop::Ignored
        );
    }
}

mod ipv6 {
    use super::*;

    #[test]
    fn plain_segment() {
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_TCP, &tcp(SYN, 20, 5)));
        let t = tcp_of(&f);
        assert_eq!(
            (t.ip.l3, t.ip.header_len, t.ip.l4, t.ip.l4_len),
            (14, 40, 54, 25)
        );
        assert!(t.ip.v6 && t.ip.complete && !t.ip.fragmented && !t.ip.routed);
        let ev = t.event(&Packet::new(&f), 2).unwrap();
        assert_eq!((ev.saddr, ev.daddr, ev.family), (SRC6, DST6, FAMILY_V6));
        assert_eq!((ev.payload_len, ev.direction), (5, 2));
    }

    #[test]
    fn bad_version_is_malformed() {
        let mut p = syn6();
        p[0] = 0x40;
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &p)),
            Stop::Malformed {
                layer: Layer::Ipv6,
                why: Malformed::Version(4)
            }
        );
    }

    #[test]
    fn a_packet_shorter_than_its_payload_length_is_truncated() {
        let f = eth(ETHERTYPE_IPV6, &syn6());
        assert_eq!(
            walk_all(&f[..70], 70).err(),
            Some(Stop::Truncated {
                layer: Layer::Ipv6Packet,
                needed: 60,
                available: 56
            })
        );
        assert!(walk_all(&f, f.len()).is_ok());
    }

    #[test]
    fn zero_payload_length_takes_the_wire_length() {
        let mut p = v6(IPPROTO_TCP, &tcp(ACK, 20, 30));
        p[4..6].copy_from_slice(&[0, 0]);
        let f = eth(ETHERTYPE_IPV6, &p);
        assert_eq!(tcp_of(&f).payload_len(), 30);
    }

    #[test]
    fn every_extension_header_is_followed() {
        let mut frag = vec![IPPROTO_DSTOPTS, 0, 0, 1, 0, 0, 0, 7]; // M set
        frag.extend_from_slice(&ext(IPPROTO_TCP));
        let mut rt = ext(IPPROTO_FRAGMENT).to_vec();
        rt[0] = IPPROTO_FRAGMENT;
        let mut chain = ext(IPPROTO_ROUTING).to_vec();
        chain.extend_from_slice(&rt);
        chain.extend_from_slice(&frag);
        // AH, 16 bytes (length 2), before the hop-by-hop... in a second run.
        chain.extend_from_slice(&tcp(SYN, 20, 1));
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_HOPOPTS, &chain));
        let t = tcp_of(&f);
        assert_eq!(t.ip.l4, 14 + 40 + 32);
        assert_eq!(t.ip.l4_len, 21);
        assert!(t.ip.fragmented && t.ip.routed);

        let mut ah = vec![IPPROTO_TCP, 2, 0, 0];
        ah.extend_from_slice(&[0; 12]);
        ah.extend_from_slice(&tcp(SYN, 20, 0));
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_AH, &ah));
        let t = tcp_of(&f);
        assert_eq!(t.ip.l4, 14 + 40 + 16);
        assert!(!t.ip.fragmented && !t.ip.routed);
    }

    #[test]
    fn longer_extension_headers_count_their_length() {
        let mut e = vec![IPPROTO_TCP, 2, 0, 0];
        e.extend_from_slice(&[0; 20]); // 24 bytes
        e.extend_from_slice(&tcp(SYN, 20, 0));
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_DSTOPTS, &e));
        let t = tcp_of(&f);
        assert_eq!(t.ip.l4, 14 + 40 + 24);
    }

    #[test]
    fn a_non_first_fragment_is_ignored() {
        let mut e = vec![IPPROTO_TCP, 0, 0, 0x08, 0, 0, 0, 1]; // offset 1
        e.extend_from_slice(&tcp(SYN, 20, 0));
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_FRAGMENT, &e))),
            Stop::Ignored
        );
        // Reserved bits alone do not make it non-first.
        e[3] = 0x06;
        assert!(
            !tcp_of(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_FRAGMENT, &e)))
                .ip
                .fragmented
        );
    }

    fn chain_of(n: usize) -> Vec<u8> {
        let mut c = Vec::new();
        for i in 0..n {
            c.extend_from_slice(&ext(if i + 1 == n {
                IPPROTO_TCP
            } else {
                IPPROTO_DSTOPTS
            }));
        }
        c.extend_from_slice(&tcp(SYN, 20, 0));
        v6(if n == 0 { IPPROTO_TCP } else { IPPROTO_DSTOPTS }, &c)
    }

    #[test]
    fn six_extension_headers_and_no_more() {
        let f = eth(ETHERTYPE_IPV6, &chain_of(MAX_IPV6_EXT));
        let t = tcp_of(&f);
        assert_eq!(t.ip.l4, 14 + 40 + 8 * MAX_IPV6_EXT);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &chain_of(MAX_IPV6_EXT + 1))),
            Stop::Unsupported(Unsupported::Ipv6Chain)
        );
        // Six headers ending in something else than TCP: ignored.
        let mut c = chain_of(MAX_IPV6_EXT);
        c[40 + 8 * (MAX_IPV6_EXT - 1)] = 17;
        assert_eq!(stop(&eth(ETHERTYPE_IPV6, &c)), Stop::Ignored);
        for last in [
            IPPROTO_HOPOPTS,
            IPPROTO_ROUTING,
            IPPROTO_FRAGMENT,
            IPPROTO_AH,
        ] {
            c[40 + 8 * (MAX_IPV6_EXT - 1)] = last;
            assert_eq!(
                stop(&eth(ETHERTYPE_IPV6, &c)),
                Stop::Unsupported(Unsupported::Ipv6Chain),
                "{last}"
            );
        }
    }

    #[test]
    fn extension_header_past_the_payload_or_the_bytes() {
        let mut e = vec![IPPROTO_TCP, 1, 0, 0, 0, 0, 0, 0]; // claims 16 bytes
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_DSTOPTS, &e));
        assert_eq!(
            stop(&f),
            Stop::Truncated {
                layer: Layer::Ipv6Ext,
                needed: 16,
                available: 8
            }
        );
        e.extend_from_slice(&[0; 8]);
        e.extend_from_slice(&tcp(SYN, 20, 0));
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_DSTOPTS, &e));
        assert!(matches!(
            walk_all(&f[..14 + 40 + 10], f.len()),
            Err(Stop::Short {
                layer: Layer::Ipv6Ext,
                needed: 16,
                ..
            })
        ));
        // The first two bytes themselves.
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_DSTOPTS, &[]));
        assert!(matches!(
            stop(&f),
            Stop::Truncated {
                layer: Layer::Ipv6Ext,
                needed: 2,
                ..
            }
        ));
    }
}

mod transport {
    use super::*;

    #[test]
    fn tcp_fields_and_event() {
        let f = eth(ETHERTYPE_IPV4, &v4(IPPROTO_TCP, 20, &tcp(SYN | ACK, 24, 7)));
        let t = tcp_of(&f);
        assert_eq!(
            (t.doff, t.flags(), t.payload_len(), t.cut),
            (24, SYN | ACK, 7, false)
        );
        let ev = Found::Tcp(t).event(&Packet::new(&f), 1).unwrap();
        assert_eq!((ev.sport, ev.dport), (1234, 443));
        assert_eq!((ev.seq, ev.ack), (0x0102_0304, 0x0a0b_0c0d));
        assert_eq!(
            (ev.kind, ev.family, ev.payload_len),
            (KIND_TCP, FAMILY_V4, 7)
        );
        assert_eq!((&ev.saddr[..4], &ev.daddr[..4]), (&SRC4[..], &DST4[..]));
    }

    #[test]
    fn payload_length_saturates_in_the_event() {
        let mut p = v4(IPPROTO_TCP, 20, &tcp(ACK, 20, 0));
        p[2..4].copy_from_slice(&[0, 0]);
        let f = eth(ETHERTYPE_IPV4, &p);
        let pkt = Packet::new(&f);
        let Ok(Found::Tcp(t)) = ethernet(&pkt, 14 + 20 + 20 + 70_000) else {
            panic!("a TSO packet");
        };
        assert_eq!(t.payload_len(), 70_000);
        assert_eq!(t.event(&pkt, 0).unwrap().payload_len, u16::MAX);
        let Ok(Found::Tcp(t)) = ethernet(&pkt, 14 + 20 + 20 + 65_535) else {
            panic!("a TSO packet");
        };
        assert_eq!(t.event(&pkt, 0).unwrap().payload_len, u16::MAX);
        let Ok(Found::Tcp(t)) = ethernet(&pkt, 14 + 20 + 20 + 65_534) else {
            panic!("a TSO packet");
        };
        assert_eq!(t.event(&pkt, 0).unwrap().payload_len, 65_534);
    }

    #[test]
    fn data_offset_rules() {
        let mut p = syn4();
        p[20 + 12] = 4 << 4;
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &p)),
            Stop::Malformed {
                layer: Layer::Tcp,
                why: Malformed::DataOffset(16)
            }
        );
        p[20 + 12] = 6 << 4;
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &p)),
            Stop::Truncated {
                layer: Layer::Tcp,
                needed: 24,
                available: 20
            }
        );
    }

    #[test]
    fn a_header_cut_after_its_flags_is_a_cut_segment() {
        let f = eth(ETHERTYPE_IPV4, &v4(IPPROTO_TCP, 20, &tcp(SYN, 40, 0)));
        for (keep, cut) in [(14, true), (39, true), (40, false)] {
            let n = 14 + 20 + keep;
            let Ok(Found::Tcp(t)) = walk_all(&f[..n], f.len()) else {
                panic!("{keep} bytes of TCP");
            };
            assert_eq!(t.cut, cut, "{keep} bytes of TCP");
            assert_eq!(t.ip.complete, !cut);
        }
        assert_eq!(
            walk_all(&f[..14 + 20 + 13], f.len()).err(),
            Some(Stop::Short {
                layer: Layer::Tcp,
                needed: 20,
                available: 13
            })
        );
    }

    #[test]
    fn icmp_unreachable_quoting_a_syn() {
        let f = eth(ETHERTYPE_IPV4, &v4(IPPROTO_ICMP, 20, &icmp(3, 1, &syn4())));
        let u = unreach_of(&f);
        assert_eq!((u.icmp_type, u.icmp_code, u.flags), (3, 1, SYN));
        assert_eq!((u.quoted.l3, u.quoted.l4), (14 + 20 + 8, 14 + 20 + 8 + 20));
        let ev = Found::Unreachable(u).event(&Packet::new(&f), 1).unwrap();
        assert_eq!(
            (ev.kind, ev.icmp_type, ev.icmp_code),
            (KIND_ICMP_UNREACH, 3, 1)
        );
        assert_eq!(
            (ev.sport, ev.dport, ev.seq, ev.ack),
            (1234, 443, 0x0102_0304, 0)
        );
        assert_eq!(
            (ev.tcp_flags, ev.payload_len, ev.family),
            (SYN, 0, FAMILY_V4)
        );
        assert_eq!(&ev.saddr[..4], &SRC4[..]);
    }

    #[test]
    fn icmp_quote_lengths() {
        let syn = syn4();
        // RFC 792's 8 bytes: no flags.
        let f = eth(
            ETHERTYPE_IPV4,
            &v4(IPPROTO_ICMP, 20, &icmp(3, 3, &syn[..28])),
        );
        assert_eq!(unreach_of(&f).flags, 0);
        let f = eth(
            ETHERTYPE_IPV4,
            &v4(IPPROTO_ICMP, 20, &icmp(3, 3, &syn[..34])),
        );
        assert_eq!(unreach_of(&f).flags, SYN);
        assert_eq!(
            stop(&eth(
                ETHERTYPE_IPV4,
                &v4(IPPROTO_ICMP, 20, &icmp(3, 3, &syn[..27]))
            )),
            Stop::Truncated {
                layer: Layer::QuotedTcp,
                needed: 8,
                available: 7
            }
        );
        assert!(matches!(
            stop(&eth(
                ETHERTYPE_IPV4,
                &v4(IPPROTO_ICMP, 20, &icmp(3, 3, &syn[..12]))
            )),
            Stop::Truncated {
                layer: Layer::QuotedIpv4,
                ..
            }
        ));
        assert!(matches!(
            stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_ICMP, 20, &[3, 3, 0, 0]))),
            Stop::Truncated {
                layer: Layer::Icmp,
                needed: 8,
                available: 4
            }
        ));
        // The message ends at the IP length, whatever follows (padding).
        let mut f = eth(
            ETHERTYPE_IPV4,
            &v4(IPPROTO_ICMP, 20, &icmp(3, 3, &syn[..30])),
        );
        f.extend_from_slice(&[SYN; 8]);
        assert_eq!(unreach_of(&f).flags, 0);
    }

    #[test]
    fn icmp_that_is_not_about_tcp_is_ignored() {
        let syn = syn4();
        for m in [
            icmp(11, 0, &syn),
            icmp(3, 3, &v4(17, 20, &[0; 8])),
            icmp(
                3,
                3,
                &v4(IPPROTO_AH, 20, &[IPPROTO_TCP, 4, 0, 0, 0, 0, 0, 0]),
            ),
        ] {
            assert_eq!(
                stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_ICMP, 20, &m))),
                Stop::Ignored
            );
        }
        let mut frag = syn.clone();
        frag[7] = 1;
        let m = icmp(3, 3, &frag);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_ICMP, 20, &m))),
            Stop::Ignored
        );
        // A bad quoted header.
        let mut bad = syn.clone();
        bad[0] = 0x43;
        let m = icmp(3, 3, &bad);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV4, &v4(IPPROTO_ICMP, 20, &m))),
            Stop::Malformed {
                layer: Layer::QuotedIpv4,
                why: Malformed::HeaderLength(12)
            }
        );
    }

    #[test]
    fn icmpv6_unreachable_quoting_through_extension_headers() {
        let mut q = v6(IPPROTO_DSTOPTS, &[]);
        q.extend_from_slice(&ext(IPPROTO_TCP));
        q.extend_from_slice(&tcp(SYN, 20, 0)[..8]);
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMPV6, &icmp(1, 4, &q)));
        let u = unreach_of(&f);
        assert_eq!((u.icmp_type, u.icmp_code, u.flags), (1, 4, 0));
        assert_eq!(u.quoted.l4, 14 + 40 + 8 + 40 + 8);
        let ev = Found::Unreachable(u).event(&Packet::new(&f), 0).unwrap();
        assert_eq!(
            (ev.saddr, ev.family, ev.seq),
            (SRC6, FAMILY_V6, 0x0102_0304)
        );
        // Type 3 is not unreachable in ICMPv6; ICMP inside IPv6 is ignored.
        let m = icmp(3, 4, &q);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMPV6, &m))),
            Stop::Ignored
        );
        let m = icmp(3, 3, &syn4());
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMP, &m))),
            Stop::Ignored
        );
        let mut bad = syn6();
        bad[0] = 0x50;
        let m = icmp(1, 4, &bad);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMPV6, &m))),
            Stop::Malformed {
                layer: Layer::QuotedIpv6,
                why: Malformed::Version(5)
            }
        );
        let m = icmp(1, 4, &syn6()[..30]);
        assert!(matches!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMPV6, &m))),
            Stop::Truncated {
                layer: Layer::QuotedIpv6,
                needed: 40,
                ..
            }
        ));
        let mut frag = v6(IPPROTO_FRAGMENT, &[]);
        frag.extend_from_slice(&[IPPROTO_TCP, 0, 0, 0x10, 0, 0, 0, 0]);
        frag.extend_from_slice(&tcp(SYN, 20, 0)[..8]);
        let m = icmp(1, 4, &frag);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMPV6, &m))),
            Stop::Ignored
        );
        let mut udp = syn6();
        udp[6] = 17;
        let m = icmp(1, 4, &udp);
        assert_eq!(
            stop(&eth(ETHERTYPE_IPV6, &v6(IPPROTO_ICMPV6, &m))),
            Stop::Ignored
        );
    }
}

#[test]
fn names_and_messages_are_distinct() {
    let layers = [
        Layer::Ethernet,
        Layer::Vlan,
        Layer::Ip,
        Layer::Ipv4,
        Layer::Ipv4Packet,
        Layer::Ipv6,
        Layer::Ipv6Packet,
        Layer::Ipv6Ext,
        Layer::Ah,
        Layer::Tcp,
        Layer::Icmp,
        Layer::Icmpv6,
        Layer::QuotedIpv4,
        Layer::QuotedIpv6,
        Layer::QuotedIpv6Ext,
        Layer::QuotedTcp,
    ];
    let names: Vec<&str> = layers.iter().map(|l| l.name()).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(
            n.ends_with("header") || n.ends_with("packet") || n.ends_with("tag"),
            "{n}"
        );
        assert!(!names[..i].contains(n), "{n} twice");
    }
    assert_eq!(Layer::Ipv4.name(), "IPv4 header");
    assert_eq!(Layer::QuotedTcp.name(), "quoted TCP header");
    assert_eq!(
        Unsupported::VlanTags.what(),
        "frame with more than two VLAN tags"
    );
    assert_eq!(
        Unsupported::Ipv6Chain.what(),
        "chain of more than 6 IPv6 extension headers"
    );
    let msg = |m: Malformed| std::format!("{m}");
    assert_eq!(msg(Malformed::Version(5)), "IP version 5");
    assert_eq!(
        msg(Malformed::HeaderLength(16)),
        "header length 16 is shorter than 20 bytes"
    );
    assert_eq!(
        msg(Malformed::TotalLength {
            total: 10,
            header: 20
        }),
        "total length 10 is shorter than the 20-byte header"
    );
    assert_eq!(
        msg(Malformed::DataOffset(8)),
        "data offset 8 is shorter than the 20-byte header"
    );
    assert_eq!(
        msg(Malformed::AhLength),
        "payload length 0, shorter than its fixed fields"
    );
}

mod edges {
    use super::*;

    #[test]
    fn only_a_routing_header_marks_the_packet_routed() {
        for first in [IPPROTO_HOPOPTS, IPPROTO_DSTOPTS] {
            let mut c = ext(IPPROTO_TCP).to_vec();
            c.extend_from_slice(&tcp(SYN, 20, 0));
            let f = eth(ETHERTYPE_IPV6, &v6(first, &c));
            assert!(!tcp_of(&f).ip.routed, "{first}");
        }
        let mut c = ext(IPPROTO_TCP).to_vec();
        c.extend_from_slice(&tcp(SYN, 20, 0));
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_ROUTING, &c));
        assert!(tcp_of(&f).ip.routed);
    }

    #[test]
    fn an_atomic_fragment_is_not_fragmented() {
        // RFC 8200 section 4.5: offset 0 and M clear, a whole packet.
        let mut e = vec![IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 1];
        e.extend_from_slice(&tcp(SYN, 20, 0));
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_FRAGMENT, &e));
        assert!(!tcp_of(&f).ip.fragmented);
        e[3] = 1;
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_FRAGMENT, &e));
        assert!(tcp_of(&f).ip.fragmented);
    }

    #[test]
    fn an_extension_header_may_end_exactly_at_the_payload_end() {
        // "No next header" (59) after it: nothing to report, no error.
        let f = eth(ETHERTYPE_IPV6, &v6(IPPROTO_DSTOPTS, &ext(59)));
        assert_eq!(stop(&f), Stop::Ignored);
        // IPv4 options ending where the packet does.
        let f = eth(ETHERTYPE_IPV4, &v4(17, 24, &[]));
        assert_eq!(stop(&f), Stop::Ignored);
    }

    #[test]
    fn raw_fields_stay_in_network_order() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let h = Packet::new(&b).header::<8>(0).unwrap();
        assert_eq!(h.n32::<0>(), u32::from_ne_bytes([1, 2, 3, 4]));
        assert_eq!(h.n32::<4>(), u32::from_ne_bytes([5, 6, 7, 8]));
        assert_eq!(h.n64::<0>(), u64::from_ne_bytes(b));
        assert_eq!(
            (h.be32::<0>(), h.be16::<6>(), h.u8::<7>()),
            (0x0102_0304, 0x0708, 8)
        );
        assert_eq!(h.bytes4::<4>(), [5, 6, 7, 8]);
        assert!(Packet::new(&b).header::<9>(0).is_err());
        assert!(Packet::new(&b).header::<1>(8).is_err());
        assert!(Packet::new(&b).header::<1>(usize::MAX).is_err());
        assert!(Packet::new(&b).header::<8>(0).is_ok());
    }
}
