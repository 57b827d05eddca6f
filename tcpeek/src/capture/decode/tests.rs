//! Decoder tests: byte-array fixtures, grouped by layer.

use super::link::{
    PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OUTGOING, SLL2_LEN, SLL_LEN,
};
use super::*;
use etherparse::{
    checksum::Sum16BitWords, ip_number, IpFragOffset, IpHeaders, Ipv4Header, Ipv6Extensions,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, PacketBuilder, TcpOptionElement,
};
use tcpeek_common::tcp_flags::{ACK, RST, SYN};
use tcpeek_common::{
    wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPV6_HLEN as IPV6_HEADER_LEN, TCP_VERDICT_LEN},
    DIR_EGRESS, DIR_INGRESS, FAMILY_V4, FAMILY_V6, KIND_ICMP_UNREACH, KIND_TCP,
};

const MAC_C: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MAC_S: [u8; 6] = [2, 0, 0, 0, 0, 1];
const C4: [u8; 4] = [10, 0, 0, 2];
const S4: [u8; 4] = [10, 0, 0, 1];
const C6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const S6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const ISN: u32 = 0x1f2e_3d4c;
const TS: u64 = 1_767_225_600_000_000_000;
const SYN_OPTIONS: [TcpOptionElement; 4] = [
    TcpOptionElement::MaximumSegmentSize(1460),
    TcpOptionElement::SelectiveAcknowledgementPermitted,
    TcpOptionElement::Timestamp(1, 0),
    TcpOptionElement::WindowScale(7),
];

/// An IPv4 address in the event's 16-byte address field.
fn v4_addr(a: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&a);
    out
}

fn decode(link: LinkType, frame: &[u8]) -> Result<Option<Event>, DecodeError> {
    Decoder::new(link, ChecksumMode::None).decode(TS, frame, frame.len())
}

fn event(link: LinkType, frame: &[u8]) -> Event {
    match decode(link, frame) {
        Ok(Some(ev)) => ev,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// IPv4 SYN from the client, starting at the IP header.
fn ip4_syn() -> Vec<u8> {
    let b = PacketBuilder::ipv4(C4, S4, 64)
        .tcp(40000, 80, ISN, 64240)
        .syn()
        .options(&SYN_OPTIONS)
        .unwrap();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

fn ip6_syn() -> Vec<u8> {
    let b = PacketBuilder::ipv6(C6, S6, 64)
        .tcp(40000, 443, ISN, 64800)
        .syn()
        .options(&SYN_OPTIONS)
        .unwrap();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&MAC_S);
    v.extend_from_slice(&MAC_C);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn eth_syn4() -> Vec<u8> {
    eth(ETHERTYPE_IPV4, &ip4_syn())
}

fn sll(pkttype: u16, arphrd: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&pkttype.to_be_bytes());
    v.extend_from_slice(&arphrd.to_be_bytes());
    v.extend_from_slice(&6u16.to_be_bytes());
    v.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0, 0]);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn sll2(pkttype: u8, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(&[0, 0]); // reserved
    v.extend_from_slice(&2u32.to_be_bytes()); // ifindex
    v.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    v.push(pkttype);
    v.push(6);
    v.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0, 0]);
    v.extend_from_slice(payload);
    v
}

fn assert_syn4(ev: &Event) {
    assert_eq!(ev.ts_ns, TS);
    assert_eq!(ev.kind, KIND_TCP);
    assert_eq!(ev.family, FAMILY_V4);
    assert_eq!(ev.saddr, v4_addr(C4));
    assert_eq!(ev.daddr, v4_addr(S4));
    assert_eq!((ev.sport, ev.dport), (40000, 80));
    assert_eq!((ev.seq, ev.ack), (ISN, 0));
    assert_eq!(ev.tcp_flags, SYN);
    assert_eq!(ev.payload_len, 0);
    assert_eq!((ev.icmp_type, ev.icmp_code), (0, 0));
    assert_eq!((ev.iface, ev._pad), (0, [0; 3]));
}

/// Recomputes an IPv4 header checksum after a test patched the header.
fn fix_ip4_checksum(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0xf) * 4;
    ip[10] = 0;
    ip[11] = 0;
    let sum = Sum16BitWords::new().add_slice(&ip[..ihl]).ones_complement();
    // etherparse sums native-endian words: the result is in native
    // byte order.
    ip[10..12].copy_from_slice(&sum.to_ne_bytes());
}

mod link {
    use super::*;

    #[test]
    fn ethernet_syn_decodes_every_field() {
        let ev = event(LinkType::Ethernet, &eth_syn4());
        assert_syn4(&ev);
        assert_eq!(ev.direction, DIR_UNKNOWN);
    }

    #[test]
    fn ethernet_non_ip_is_ignored() {
        // ARP, and an 802.3 length field instead of an EtherType.
        assert_eq!(decode(LinkType::Ethernet, &eth(0x0806, &[0; 28])), Ok(None));
        assert_eq!(decode(LinkType::Ethernet, &eth(0x0040, &[0; 64])), Ok(None));
    }

    #[test]
    fn sll_direction_follows_packet_type() {
        let ip = ip4_syn();
        for (pkttype, dir) in [
            (PACKET_HOST, DIR_INGRESS),
            (PACKET_BROADCAST, DIR_INGRESS),
            (PACKET_MULTICAST, DIR_INGRESS),
            (3, DIR_UNKNOWN), // PACKET_OTHERHOST
            (PACKET_OUTGOING, DIR_EGRESS),
        ] {
            let ev = event(LinkType::LinuxSll, &sll(pkttype, 1, ETHERTYPE_IPV4, &ip));
            assert_syn4(&ev);
            assert_eq!(ev.direction, dir, "packet type {pkttype}");
        }
    }

    #[test]
    fn sll_accepts_loopback_and_tun_hardware_types() {
        // ARPHRD_LOOPBACK (772) and ARPHRD_NONE (0xfffe): the "any"
        // device sees them, etherparse's SLL parser refuses them.
        for arphrd in [772, 0xfffe] {
            let ev = event(
                LinkType::LinuxSll,
                &sll(PACKET_HOST, arphrd, ETHERTYPE_IPV4, &ip4_syn()),
            );
            assert_syn4(&ev);
        }
    }

    #[test]
    fn sll2_direction_and_ipv6() {
        let ev = event(LinkType::LinuxSll2, &sll2(4, ETHERTYPE_IPV6, &ip6_syn()));
        assert_eq!(ev.direction, DIR_EGRESS);
        assert_eq!(ev.family, FAMILY_V6);
        assert_eq!((ev.saddr, ev.daddr), (C6, S6));
        assert_eq!((ev.sport, ev.dport, ev.seq), (40000, 443, ISN));
        let ev = event(LinkType::LinuxSll2, &sll2(0, ETHERTYPE_IPV4, &ip4_syn()));
        assert_eq!(ev.direction, DIR_INGRESS);
        assert_syn4(&ev);
    }

    #[test]
    fn raw_ip_picks_version_from_first_nibble() {
        assert_syn4(&event(LinkType::RawIp, &ip4_syn()));
        assert_eq!(event(LinkType::RawIp, &ip6_syn()).family, FAMILY_V6);
        assert!(matches!(
            decode(LinkType::RawIp, &[0x50; 40]),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(LinkType::RawIp, &[]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn link_types_from_dlt_with_tcpdump_names() {
        assert_eq!(LinkType::from_dlt(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_dlt(113), Some(LinkType::LinuxSll));
        assert_eq!(LinkType::from_dlt(276), Some(LinkType::LinuxSll2));
        for dlt in [12, 14, 101] {
            assert_eq!(LinkType::from_dlt(dlt), Some(LinkType::RawIp));
        }
        assert_eq!(LinkType::from_dlt(105), None); // 802.11
        assert_eq!(LinkType::Ethernet.name(), "EN10MB (Ethernet)");
        assert_eq!(LinkType::LinuxSll.name(), "LINUX_SLL (Linux cooked v1)");
        assert_eq!(LinkType::LinuxSll2.name(), "LINUX_SLL2 (Linux cooked v2)");
        assert_eq!(LinkType::RawIp.name(), "RAW (Raw IP)");
    }

    #[test]
    fn checksum_mode_from_level() {
        assert_eq!(ChecksumMode::from_level(0), Some(ChecksumMode::None));
        assert_eq!(ChecksumMode::from_level(1), Some(ChecksumMode::Ip));
        assert_eq!(ChecksumMode::from_level(2), Some(ChecksumMode::IpTcp));
        assert_eq!(ChecksumMode::from_level(3), None);
        assert_eq!(ChecksumMode::default(), ChecksumMode::None);
    }
}

mod vlan {
    use super::*;

    fn tagged(tags: &[u16], payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&MAC_S);
        v.extend_from_slice(&MAC_C);
        for (i, tpid) in tags.iter().enumerate() {
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&(100 + i as u16).to_be_bytes()); // PCP 0, VID
        }
        v.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn dot1q_tag_is_skipped() {
        assert_syn4(&event(LinkType::Ethernet, &tagged(&[0x8100], &ip4_syn())));
    }

    #[test]
    fn qinq_double_tag_is_skipped() {
        assert_syn4(&event(
            LinkType::Ethernet,
            &tagged(&[0x88a8, 0x8100], &ip4_syn()),
        ));
        // The builder's double VLAN agrees with our byte layout.
        let b = PacketBuilder::ethernet2(MAC_C, MAC_S)
            .double_vlan(10.try_into().unwrap(), 20.try_into().unwrap())
            .ipv4(C4, S4, 64)
            .tcp(40000, 80, ISN, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        assert_eq!(event(LinkType::Ethernet, &v).seq, ISN);
    }

    #[test]
    fn third_tag_is_unsupported() {
        assert!(matches!(
            decode(
                LinkType::Ethernet,
                &tagged(&[0x88a8, 0x8100, 0x8100], &ip4_syn())
            ),
            Err(DecodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn vlan_behind_sll_is_skipped() {
        let mut inner = 7u16.to_be_bytes().to_vec();
        inner.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        inner.extend_from_slice(&ip4_syn());
        assert_syn4(&event(
            LinkType::LinuxSll,
            &sll(PACKET_HOST, 1, 0x8100, &inner),
        ));
    }

    #[test]
    fn truncated_tag_is_an_error() {
        let frame = tagged(&[0x8100], &[]);
        assert!(matches!(
            decode(LinkType::Ethernet, &frame[..16]),
            Err(DecodeError::Truncated {
                layer: "VLAN tag",
                ..
            })
        ));
    }
}

mod ipv4 {
    use super::*;

    #[test]
    fn options_are_skipped() {
        let mut ip = Ipv4Header::new(0, 64, ip_number::TCP, C4, S4).unwrap();
        // Two NOPs, then router alert (RFC 2113).
        ip.options = [1, 1, 148, 4, 0, 0, 0, 0].into();
        let b = PacketBuilder::ethernet2(MAC_C, MAC_S)
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .tcp(40000, 80, ISN, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        assert_eq!(v[14] & 0xf, 7, "IHL includes the options");
        let ev = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode(TS, &v, v.len())
            .unwrap()
            .unwrap();
        assert_eq!(
            (ev.sport, ev.dport, ev.seq, ev.tcp_flags),
            (40000, 80, ISN, SYN)
        );
    }

    #[test]
    fn payload_len_comes_from_ip_length_not_capture() {
        let b = PacketBuilder::ethernet2(MAC_C, MAC_S)
            .ipv4(C4, S4, 64)
            .tcp(40000, 80, ISN + 1, 64240)
            .ack(77)
            .psh();
        let mut v = Vec::new();
        b.write(&mut v, &[0xab; 1000]).unwrap();
        let full = v.len();
        // Snaplen cut the frame after 100 bytes.
        let ev = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode(TS, &v[..100], full)
            .unwrap()
            .unwrap();
        assert_eq!(ev.payload_len, 1000);
        assert_eq!(ev.ack, 77);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut v = eth_syn4();
        v.extend_from_slice(&[0; 12]);
        let ev = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode(TS, &v, v.len())
            .unwrap()
            .unwrap();
        assert_eq!(ev.payload_len, 0);
    }

    #[test]
    fn short_frame_not_cut_by_snaplen_is_truncated() {
        let v = eth_syn4();
        let mut ip = v[14..].to_vec();
        ip[2..4].copy_from_slice(&200u16.to_be_bytes());
        fix_ip4_checksum(&mut ip);
        let frame = eth(ETHERTYPE_IPV4, &ip);
        assert!(matches!(
            decode(LinkType::Ethernet, &frame),
            Err(DecodeError::Truncated {
                layer: "IPv4 packet",
                needed: 200,
                ..
            })
        ));
    }

    #[test]
    fn total_length_shorter_than_header_is_malformed() {
        let mut ip = ip4_syn();
        ip[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert!(matches!(
            decode(LinkType::RawIp, &ip),
            Err(DecodeError::Malformed {
                layer: "IPv4 header",
                ..
            })
        ));
    }

    #[test]
    fn ihl_below_five_is_malformed() {
        let mut ip = ip4_syn();
        ip[0] = 0x44;
        assert!(matches!(
            decode(LinkType::RawIp, &ip),
            Err(DecodeError::Malformed {
                layer: "IPv4 header",
                ..
            })
        ));
    }

    #[test]
    fn ihl_beyond_frame_is_truncated() {
        let mut ip = ip4_syn();
        ip[0] = 0x4f; // 60-byte header, but the frame holds 20 + 40
        ip.truncate(50);
        assert!(matches!(
            decode(LinkType::RawIp, &ip),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn zero_total_length_is_a_tso_super_packet() {
        let b = PacketBuilder::ipv4(C4, S4, 64)
            .tcp(40000, 80, ISN + 1, 64240)
            .ack(1);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 100]).unwrap();
        v[2] = 0;
        v[3] = 0;
        let d = Decoder::new(LinkType::RawIp, ChecksumMode::None);
        let ev = d.decode(TS, &v[..60], 70_000).unwrap().unwrap();
        assert_eq!(ev.payload_len, u16::MAX, "saturates");
        let ev = d.decode(TS, &v, v.len()).unwrap().unwrap();
        assert_eq!(ev.payload_len, 100);
    }

    #[test]
    fn non_first_fragment_is_ignored() {
        let mut ip = ip4_syn();
        ip[6..8].copy_from_slice(&0x0010u16.to_be_bytes()); // offset 16*8
        fix_ip4_checksum(&mut ip);
        assert_eq!(decode(LinkType::RawIp, &ip), Ok(None));
    }

    #[test]
    fn first_fragment_is_decoded_without_tcp_checksum() {
        let mut ip = ip4_syn();
        ip[6..8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0
        let last = ip.len() - 1;
        ip[last] ^= 0xff; // the TCP checksum would no longer match
        fix_ip4_checksum(&mut ip);
        let ev = Decoder::new(LinkType::RawIp, ChecksumMode::IpTcp)
            .decode(TS, &ip, ip.len())
            .unwrap()
            .unwrap();
        assert_eq!(ev.seq, ISN);
    }

    #[test]
    fn udp_is_ignored() {
        let b = PacketBuilder::ipv4(C4, S4, 64).udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 20]).unwrap();
        assert_eq!(decode(LinkType::RawIp, &v), Ok(None));
    }

    #[test]
    fn authentication_header_is_skipped() {
        let syn = ip4_syn();
        let tcp = &syn[20..];
        // RFC 4302 AH: next header, payload length (in 4-byte words,
        // minus 2), reserved, SPI, sequence, 4 bytes of ICV.
        let mut ah = vec![6, 2, 0, 0];
        ah.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]);
        let mut ip = syn[..20].to_vec();
        ip[9] = 51;
        let total = (20 + ah.len() + tcp.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        fix_ip4_checksum(&mut ip);
        ip.extend_from_slice(&ah);
        ip.extend_from_slice(tcp);
        let ev = event(LinkType::RawIp, &ip);
        assert_eq!((ev.seq, ev.payload_len), (ISN, 0));
    }
}

mod ipv6 {
    use super::*;

    fn with_exts(exts: Ipv6Extensions, payload: &[u8]) -> Vec<u8> {
        let ip = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 0,
            next_header: ip_number::TCP,
            hop_limit: 64,
            source: C6,
            destination: S6,
        };
        let b = PacketBuilder::ethernet2(MAC_C, MAC_S)
            .ip(IpHeaders::Ipv6(ip, exts))
            .tcp(40000, 443, ISN, 64800)
            .syn()
            .options(&SYN_OPTIONS)
            .unwrap();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn plain_syn() {
        let ev = event(LinkType::Ethernet, &eth(ETHERTYPE_IPV6, &ip6_syn()));
        assert_eq!(ev.family, FAMILY_V6);
        assert_eq!((ev.saddr, ev.daddr), (C6, S6));
        assert_eq!(
            (ev.sport, ev.dport, ev.seq, ev.tcp_flags),
            (40000, 443, ISN, SYN)
        );
    }

    #[test]
    fn extension_headers_are_skipped() {
        let exts = Ipv6Extensions {
            hop_by_hop_options: Some(
                Ipv6RawExtHeader::new_raw(ip_number::TCP, &[1, 4, 0, 0, 0, 0]).unwrap(),
            ),
            destination_options: Some(
                Ipv6RawExtHeader::new_raw(
                    ip_number::TCP,
                    &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                )
                .unwrap(),
            ),
            ..Default::default()
        };
        let v = with_exts(exts, &[7; 33]);
        assert_eq!(v[14 + 6], 0, "hop-by-hop first");
        let ev = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode(TS, &v, v.len())
            .unwrap()
            .unwrap();
        assert_eq!((ev.dport, ev.seq, ev.payload_len), (443, ISN, 33));
    }

    #[test]
    fn non_first_fragment_is_ignored() {
        let exts = Ipv6Extensions {
            fragment: Some(Ipv6FragmentHeader::new(
                ip_number::TCP,
                IpFragOffset::try_new(100).unwrap(),
                false,
                7,
            )),
            ..Default::default()
        };
        let v = with_exts(exts, &[]);
        assert_eq!(decode(LinkType::Ethernet, &v), Ok(None));
    }

    #[test]
    fn first_fragment_is_decoded() {
        let exts = Ipv6Extensions {
            fragment: Some(Ipv6FragmentHeader::new(
                ip_number::TCP,
                IpFragOffset::ZERO,
                true,
                7,
            )),
            ..Default::default()
        };
        let v = with_exts(exts, &[]);
        assert_eq!(event(LinkType::Ethernet, &v).seq, ISN);
    }

    #[test]
    fn truncated_extension_header_is_an_error() {
        let mut ip = ip6_syn();
        ip[6] = 60; // destination options, whose length byte says 2 kB
        ip[41] = 255;
        assert!(matches!(
            decode(LinkType::RawIp, &ip),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn extension_chain_stopping_on_an_error_is_not_read_past_its_end() {
        // Found by the fuzz target: etherparse 0.21's extension iterator
        // read out of bounds on this frame (a hop-by-hop header whose
        // next header is hop-by-hop again, which its lax parser stops
        // on).
        let frame = [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd,
            0x60, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00,
            0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x04, 0x9e, 0x2a, 0x00, 0x00, 0x00, 0x00,
            0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9c, 0x6f,
            0x1f, 0x90, 0xed, 0xb5, 0xd6, 0x2b, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
            0x8f, 0xae, 0x00, 0x0d, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00,
            0x0f, 0x43, 0x6c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
        ];
        let d = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp);
        // Any answer but a crash; the garbage chain leads nowhere.
        let r = d.decode(TS, &frame, frame.len());
        assert!(matches!(r, Ok(None) | Err(_)), "{r:?}");
    }

    #[test]
    fn endless_extension_chain_is_unsupported() {
        let mut ip = ip6_syn()[..40].to_vec();
        ip[6] = 60; // destination options, pointing at another one
        for _ in 0..20 {
            ip.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let len = (ip.len() - 40) as u16;
        ip[4..6].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            decode(LinkType::RawIp, &ip),
            Err(DecodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn esp_is_ignored() {
        let mut ip = ip6_syn();
        ip[6] = 50;
        assert_eq!(decode(LinkType::RawIp, &ip), Ok(None));
    }
}

mod icmp {
    use super::*;

    fn icmp4(icmp_type: u8, code: u8, quote: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_S, MAC_C)
            .ipv4(S4, C4, 64)
            .icmpv4_raw(icmp_type, code, [0; 4]);
        let mut v = Vec::new();
        b.write(&mut v, quote).unwrap();
        v
    }

    fn icmp6(icmp_type: u8, code: u8, quote: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_S, MAC_C)
            .ipv6(S6, C6, 64)
            .icmpv6_raw(icmp_type, code, [0; 4]);
        let mut v = Vec::new();
        b.write(&mut v, quote).unwrap();
        v
    }

    fn assert_quoted4(ev: &Event, code: u8, flags: u8) {
        assert_eq!(ev.kind, KIND_ICMP_UNREACH);
        assert_eq!(ev.family, FAMILY_V4);
        assert_eq!((ev.saddr, ev.daddr), (v4_addr(C4), v4_addr(S4)));
        assert_eq!((ev.sport, ev.dport, ev.seq, ev.ack), (40000, 80, ISN, 0));
        assert_eq!((ev.icmp_type, ev.icmp_code, ev.tcp_flags), (3, code, flags));
        assert_eq!(ev.payload_len, 0);
    }

    #[test]
    fn port_unreachable_quoting_whole_syn() {
        let v = icmp4(3, 3, &ip4_syn());
        let ev = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode(TS, &v, v.len())
            .unwrap()
            .unwrap();
        assert_quoted4(&ev, 3, SYN);
    }

    #[test]
    fn rfc792_eight_byte_quote_has_no_flags() {
        let syn = ip4_syn();
        assert_quoted4(&event(LinkType::Ethernet, &icmp4(3, 1, &syn[..28])), 1, 0);
        assert_quoted4(&event(LinkType::Ethernet, &icmp4(3, 1, &syn[..34])), 1, SYN);
    }

    #[test]
    fn quote_shorter_than_ports_and_seq_is_truncated() {
        let syn = ip4_syn();
        assert!(matches!(
            decode(LinkType::Ethernet, &icmp4(3, 3, &syn[..27])),
            Err(DecodeError::Truncated {
                layer: "quoted TCP header",
                ..
            })
        ));
        assert!(matches!(
            decode(LinkType::Ethernet, &icmp4(3, 3, &syn[..12])),
            Err(DecodeError::Truncated {
                layer: "quoted IPv4 header",
                ..
            })
        ));
    }

    #[test]
    fn other_icmp_is_ignored() {
        let syn = ip4_syn();
        // Echo request, time exceeded quoting TCP.
        assert_eq!(decode(LinkType::Ethernet, &icmp4(8, 0, &[0; 8])), Ok(None));
        assert_eq!(decode(LinkType::Ethernet, &icmp4(11, 0, &syn)), Ok(None));
        // Unreachable quoting UDP.
        let b = PacketBuilder::ipv4(C4, S4, 64).udp(5353, 53);
        let mut udp = Vec::new();
        b.write(&mut udp, &[0; 8]).unwrap();
        assert_eq!(decode(LinkType::Ethernet, &icmp4(3, 3, &udp)), Ok(None));
    }

    #[test]
    fn icmpv6_unreachable_quoting_syn() {
        let syn = ip6_syn();
        let v = icmp6(1, 4, &syn);
        let ev = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode(TS, &v, v.len())
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, KIND_ICMP_UNREACH);
        assert_eq!(ev.family, FAMILY_V6);
        assert_eq!((ev.saddr, ev.daddr), (C6, S6));
        assert_eq!((ev.sport, ev.dport, ev.seq), (40000, 443, ISN));
        assert_eq!((ev.icmp_type, ev.icmp_code, ev.tcp_flags), (1, 4, SYN));
        // Eight bytes of TCP.
        let ev = event(LinkType::Ethernet, &icmp6(1, 1, &syn[..48]));
        assert_eq!((ev.seq, ev.tcp_flags, ev.icmp_code), (ISN, 0, 1));
    }

    #[test]
    fn other_icmpv6_is_ignored() {
        // Echo request; packet too big quoting TCP.
        assert_eq!(
            decode(LinkType::Ethernet, &icmp6(128, 0, &[0; 8])),
            Ok(None)
        );
        assert_eq!(
            decode(LinkType::Ethernet, &icmp6(2, 0, &ip6_syn())),
            Ok(None)
        );
    }

    #[test]
    fn icmp_of_the_wrong_family_is_ignored() {
        // ICMPv4 inside IPv6 is not a thing tcpeek decodes.
        let b = PacketBuilder::ipv6(S6, C6, 64).icmpv4_raw(3, 3, [0; 4]);
        let mut v = Vec::new();
        b.write(&mut v, &ip4_syn()).unwrap();
        assert_eq!(decode(LinkType::RawIp, &v), Ok(None));
    }
}

mod truncation {
    use super::*;

    fn frames() -> Vec<(LinkType, Vec<u8>)> {
        let mut v6_ext = Vec::new();
        {
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: ip_number::TCP,
                hop_limit: 64,
                source: C6,
                destination: S6,
            };
            let exts = Ipv6Extensions {
                hop_by_hop_options: Some(
                    Ipv6RawExtHeader::new_raw(ip_number::TCP, &[0; 6]).unwrap(),
                ),
                ..Default::default()
            };
            PacketBuilder::ethernet2(MAC_C, MAC_S)
                .ip(IpHeaders::Ipv6(ip, exts))
                .tcp(1, 2, 3, 4)
                .syn()
                .write(&mut v6_ext, &[])
                .unwrap();
        }
        vec![
            (LinkType::Ethernet, eth_syn4()),
            (LinkType::Ethernet, eth(ETHERTYPE_IPV6, &ip6_syn())),
            (LinkType::Ethernet, v6_ext),
            (LinkType::LinuxSll, sll(0, 1, ETHERTYPE_IPV4, &ip4_syn())),
            (LinkType::LinuxSll2, sll2(0, ETHERTYPE_IPV6, &ip6_syn())),
            (LinkType::RawIp, ip4_syn()),
        ]
    }

    /// Where the TCP header starts in each of [`frames`].
    fn tcp_offset(link: LinkType, frame: &[u8]) -> usize {
        let ip = match link {
            LinkType::Ethernet => 14,
            LinkType::LinuxSll => SLL_LEN,
            LinkType::LinuxSll2 => SLL2_LEN,
            LinkType::RawIp => 0,
        };
        match frame[ip] >> 4 {
            4 => ip + 20,
            // The hop-by-hop header of the extension-header frame.
            _ if frame[ip + 6] == 0 => ip + IPV6_HEADER_LEN + 8,
            _ => ip + IPV6_HEADER_LEN,
        }
    }

    #[test]
    fn every_prefix_of_a_syn_is_an_error_or_nothing_unless_the_capture_cut_the_options() {
        for (link, frame) in frames() {
            let whole = decode(link, &frame).unwrap().unwrap();
            let fixed_end = tcp_offset(link, &frame) + TCP_VERDICT_LEN;
            for mode in [ChecksumMode::None, ChecksumMode::IpTcp] {
                let d = Decoder::new(link, mode);
                for n in 0..frame.len() {
                    // Not cut by the capture: the frame itself is short.
                    let r = d.decode(TS, &frame[..n], n);
                    assert!(
                        matches!(r, Err(_) | Ok(None)),
                        "{link:?} prefix {n} not cut: {r:?}"
                    );
                    // Cut by the capture: decodes once the fixed TCP
                    // header is whole, to the same event.
                    let r = d.decode_frame(TS, &frame[..n], frame.len());
                    if n >= fixed_end {
                        let got = r.unwrap().unwrap();
                        assert!(got.header_cut, "{link:?} prefix {n}");
                        assert_eq!(got.event, whole, "{link:?} prefix {n}");
                    } else {
                        assert!(
                            matches!(r, Err(_) | Ok(None)),
                            "{link:?} prefix {n} cut: {r:?}"
                        );
                    }
                }
                let r = d.decode_frame(TS, &frame, frame.len()).unwrap().unwrap();
                assert!(!r.header_cut);
            }
        }
    }

    /// `tcpdump -s 54` and `-s 68` (old defaults) cut the options off
    /// every SYN, and these SYNs were all counted as malformed.
    #[test]
    fn ipv4_syn_cut_at_54_and_68_bytes_decodes_from_the_fixed_header() {
        let frame = eth_syn4();
        assert_eq!(frame.len(), 74, "40-byte TCP header with options");
        for snap in [54, 68] {
            let d = Decoder::new(LinkType::Ethernet, ChecksumMode::None)
                .decode_frame(TS, &frame[..snap], frame.len())
                .unwrap()
                .unwrap();
            assert!(d.header_cut, "-s {snap}");
            assert_syn4(&d.event);
        }
    }

    #[test]
    fn ipv6_syn_cut_before_the_flags_is_still_truncated() {
        // Ethernet 14 + IPv6 40 leave no TCP at -s 54, and 13 bytes
        // (no flags) at -s 67.
        let frame = eth(ETHERTYPE_IPV6, &ip6_syn());
        for (snap, available) in [(54, 0), (67, 13)] {
            assert_eq!(
                Decoder::new(LinkType::Ethernet, ChecksumMode::None).decode(
                    TS,
                    &frame[..snap],
                    frame.len()
                ),
                Err(DecodeError::Truncated {
                    layer: "TCP header",
                    needed: 20,
                    available
                }),
                "-s {snap}"
            );
        }
    }

    #[test]
    fn ipv6_syn_cut_at_68_bytes_decodes_from_the_bytes_a_verdict_reads() {
        // Regression: -s 68 leaves 14 bytes of an IPv6 segment's TCP
        // header, through the flags; the handshake was lost.
        let frame = eth(ETHERTYPE_IPV6, &ip6_syn());
        assert_eq!(frame.len(), 94);
        for snap in [68, 74, 88] {
            let d = Decoder::new(LinkType::Ethernet, ChecksumMode::None)
                .decode_frame(TS, &frame[..snap], frame.len())
                .unwrap()
                .unwrap();
            assert!(d.header_cut);
            assert_eq!((d.event.sport, d.event.dport), (40000, 443));
            assert_eq!((d.event.seq, d.event.tcp_flags), (ISN, SYN));
            assert_eq!(d.event.family, FAMILY_V6);
        }
    }

    #[test]
    fn ipv4_syn_cut_in_the_middle_of_the_fixed_header_is_truncated() {
        let frame = eth_syn4();
        let r = Decoder::new(LinkType::Ethernet, ChecksumMode::None).decode(
            TS,
            &frame[..44],
            frame.len(),
        );
        assert_eq!(
            r,
            Err(DecodeError::Truncated {
                layer: "TCP header",
                needed: 20,
                available: 10
            })
        );
    }

    #[test]
    fn tcp_header_shorter_than_its_data_offset_without_a_cut_is_malformed() {
        // The IP length ends the packet 10 bytes into the 40-byte TCP
        // header, and the frame is whole: the sender's fault, not the
        // capture's.
        let mut ip = ip4_syn();
        ip.truncate(20 + 30);
        ip[2..4].copy_from_slice(&50u16.to_be_bytes());
        fix_ip4_checksum(&mut ip);
        let frame = eth(ETHERTYPE_IPV4, &ip);
        let r = decode(LinkType::Ethernet, &frame);
        assert!(matches!(r, Err(DecodeError::Truncated { .. })), "{r:?}");
    }

    #[test]
    fn cut_segment_payload_length_comes_from_the_ip_length() {
        // A TCP Fast Open SYN carrying 100 bytes, cut at -s 68.
        let b = PacketBuilder::ethernet2(MAC_C, MAC_S)
            .ipv4(C4, S4, 64)
            .tcp(40000, 80, ISN, 64240)
            .syn()
            .options(&SYN_OPTIONS)
            .unwrap();
        let mut v = Vec::new();
        b.write(&mut v, &[0x55; 100]).unwrap();
        let d = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp)
            .decode_frame(TS, &v[..68], v.len())
            .unwrap()
            .unwrap();
        assert!(d.header_cut);
        assert_eq!(d.event.payload_len, 100);
    }

    #[test]
    fn cut_segment_with_an_impossible_data_offset_is_malformed() {
        let mut frame = eth_syn4();
        frame[14 + 20 + 12] = 0x40; // 16 bytes
        let r = Decoder::new(LinkType::Ethernet, ChecksumMode::None).decode(
            TS,
            &frame[..68],
            frame.len(),
        );
        assert!(matches!(r, Err(DecodeError::Malformed { .. })), "{r:?}");
    }

    #[test]
    fn checksum_mode_2_does_not_verify_a_cut_segment() {
        // Only whole segments can be verified; a cut one is accepted
        // even with a wrong checksum, as a cut payload always was.
        let mut frame = eth_syn4();
        frame[14 + 20 + 16] ^= 0xff;
        let d = Decoder::new(LinkType::Ethernet, ChecksumMode::IpTcp);
        assert!(d.decode(TS, &frame, frame.len()).is_err());
        let cut = d.decode_frame(TS, &frame[..68], frame.len()).unwrap();
        assert!(cut.unwrap().header_cut);
    }

    #[test]
    fn absurd_wire_lengths_do_not_panic() {
        for (link, frame) in frames() {
            let d = Decoder::new(link, ChecksumMode::IpTcp);
            for wire in [0, 1, usize::MAX, usize::MAX / 2, u32::MAX as usize] {
                let _ = d.decode(TS, &frame, wire);
                let _ = d.decode(TS, &frame[..frame.len() / 2], wire);
            }
        }
    }
}

mod checksum {
    use super::*;

    fn modes(frame: &[u8], link: LinkType) -> [bool; 3] {
        [ChecksumMode::None, ChecksumMode::Ip, ChecksumMode::IpTcp].map(|m| {
            match Decoder::new(link, m).decode(TS, frame, frame.len()) {
                Ok(Some(_)) => true,
                Err(DecodeError::BadChecksum { .. }) => false,
                other => panic!("{m:?}: {other:?}"),
            }
        })
    }

    #[test]
    fn good_packets_pass_every_mode() {
        assert_eq!(modes(&eth_syn4(), LinkType::Ethernet), [true; 3]);
        assert_eq!(modes(&ip6_syn(), LinkType::RawIp), [true; 3]);
    }

    #[test]
    fn bad_ip_header_checksum_fails_modes_1_and_2() {
        let mut ip = ip4_syn();
        ip[10] ^= 0x01;
        assert_eq!(modes(&ip, LinkType::RawIp), [true, false, false]);
        let Err(DecodeError::BadChecksum { layer, .. }) =
            Decoder::new(LinkType::RawIp, ChecksumMode::Ip).decode(TS, &ip, ip.len())
        else {
            panic!()
        };
        assert_eq!(layer, "IPv4 header");
    }

    #[test]
    fn bad_tcp_checksum_fails_mode_2_only() {
        let mut ip = ip4_syn();
        ip[20 + 4] ^= 0x80; // the sequence number changed in flight
        assert_eq!(modes(&ip, LinkType::RawIp), [true, true, false]);
        let mut ip = ip6_syn();
        ip[40 + 16] ^= 0x01;
        assert_eq!(modes(&ip, LinkType::RawIp), [true, true, false]);
    }

    #[test]
    fn bad_checksum_error_names_both_values() {
        let mut ip = ip4_syn();
        let stored = u16::from_be_bytes([ip[36], ip[37]]);
        ip[36] ^= 0xff;
        let r = Decoder::new(LinkType::RawIp, ChecksumMode::IpTcp).decode(TS, &ip, ip.len());
        assert_eq!(
            r,
            Err(DecodeError::BadChecksum {
                layer: "TCP",
                stored: stored ^ 0xff00,
                computed: stored
            })
        );
    }

    #[test]
    fn snaplen_cut_segment_is_not_verified() {
        let b = PacketBuilder::ipv4(C4, S4, 64)
            .tcp(40000, 80, ISN, 1)
            .ack(1);
        let mut v = Vec::new();
        b.write(&mut v, &[1; 500]).unwrap();
        v[20 + 16] ^= 0xff;
        let d = Decoder::new(LinkType::RawIp, ChecksumMode::IpTcp);
        assert!(d.decode(TS, &v[..100], v.len()).unwrap().is_some());
        assert!(d.decode(TS, &v, v.len()).is_err());
    }

    #[test]
    fn outgoing_sll_segment_is_not_verified() {
        // Checksum offload: the kernel hands PF_PACKET the segment
        // before the NIC fills in the TCP checksum.
        let mut ip = ip4_syn();
        ip[36] ^= 0xff;
        let d = Decoder::new(LinkType::LinuxSll, ChecksumMode::IpTcp);
        let out = sll(PACKET_OUTGOING, 1, ETHERTYPE_IPV4, &ip);
        assert!(d.decode(TS, &out, out.len()).unwrap().is_some());
        let inbound = sll(PACKET_HOST, 1, ETHERTYPE_IPV4, &ip);
        assert!(d.decode(TS, &inbound, inbound.len()).is_err());
    }

    #[test]
    fn bad_icmp_checksums_fail_mode_2() {
        let b = PacketBuilder::ipv4(S4, C4, 64).icmpv4_raw(3, 3, [0; 4]);
        let mut v = Vec::new();
        b.write(&mut v, &ip4_syn()).unwrap();
        assert_eq!(modes(&v, LinkType::RawIp), [true; 3]);
        let last = v.len() - 1;
        v[last] ^= 1;
        assert_eq!(modes(&v, LinkType::RawIp), [true, true, false]);

        let b = PacketBuilder::ipv6(S6, C6, 64).icmpv6_raw(1, 4, [0; 4]);
        let mut v = Vec::new();
        b.write(&mut v, &ip6_syn()).unwrap();
        assert_eq!(modes(&v, LinkType::RawIp), [true; 3]);
        v[40 + 4] ^= 1;
        assert_eq!(modes(&v, LinkType::RawIp), [true, true, false]);
    }
}

mod flags {
    use super::*;

    #[test]
    fn rst_ack_flags_and_ack_number() {
        let b = PacketBuilder::ipv4(S4, C4, 64)
            .tcp(81, 40000, 0, 0)
            .rst()
            .ack(ISN.wrapping_add(1));
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        let ev = event(LinkType::RawIp, &v);
        assert_eq!(ev.tcp_flags, RST | ACK);
        assert_eq!(ev.ack, ISN.wrapping_add(1));
    }

    #[test]
    fn tcp_data_offset_below_five_is_malformed() {
        let mut ip = ip4_syn();
        ip[20 + 12] = 0x40;
        assert!(matches!(
            decode(LinkType::RawIp, &ip),
            Err(DecodeError::Malformed {
                layer: "TCP header",
                ..
            })
        ));
    }
}

/// Randomized no-panic check: mutated valid frames and random bytes,
/// every link type and checksum mode, with a fixed seed so a failure
/// reproduces. (The cargo-fuzz target in tcpeek/fuzz explores further.)
mod random {
    use super::*;

    use tcpeek_testkit::rng::Rng;

    #[test]
    fn mutated_and_random_frames_never_panic() {
        let syn4 = ip4_syn();
        let syn6 = ip6_syn();
        let mut icmp4 = Vec::new();
        PacketBuilder::ipv4(S4, C4, 64)
            .icmpv4_raw(3, 3, [0; 4])
            .write(&mut icmp4, &syn4)
            .unwrap();
        let mut icmp6 = Vec::new();
        PacketBuilder::ipv6(S6, C6, 64)
            .icmpv6_raw(1, 4, [0; 4])
            .write(&mut icmp6, &syn6)
            .unwrap();
        let mut seeds = Vec::new();
        for ip in [&syn4, &syn6, &icmp4, &icmp6] {
            let et = if ip[0] >> 4 == 4 {
                ETHERTYPE_IPV4
            } else {
                ETHERTYPE_IPV6
            };
            seeds.push((LinkType::Ethernet, eth(et, ip)));
            let mut tagged = 0x8100u16.to_be_bytes().to_vec();
            tagged.extend_from_slice(&[0, 5]);
            tagged.extend_from_slice(&et.to_be_bytes());
            tagged.extend_from_slice(ip);
            seeds.push((LinkType::Ethernet, eth(0x88a8, &tagged)));
            seeds.push((LinkType::LinuxSll, sll(0, 1, et, ip)));
            seeds.push((LinkType::LinuxSll2, sll2(4, et, ip)));
            seeds.push((LinkType::RawIp, ip.clone()));
        }
        let links = [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::RawIp,
        ];
        let modes = [ChecksumMode::None, ChecksumMode::Ip, ChecksumMode::IpTcp];
        let mut rng = Rng::new(0x7c9e_0b1a_55aa_1234);
        let mut buf = Vec::with_capacity(256);
        let mut decoded = 0u32;
        for i in 0..300_000 {
            buf.clear();
            let link;
            if i % 8 == 0 {
                link = links[rng.below(4)];
                let len = rng.below(160);
                buf.extend((0..len).map(|_| rng.next_u64() as u8));
            } else {
                let (l, frame) = &seeds[rng.below(seeds.len())];
                link = *l;
                buf.extend_from_slice(frame);
                for _ in 0..1 + rng.below(4) {
                    // Mostly header bytes, where the parsing happens.
                    let at = rng.below(buf.len().min(100));
                    buf[at] = rng.next_u64() as u8;
                }
                if rng.below(4) == 0 {
                    buf.truncate(rng.below(buf.len() + 1));
                }
            }
            let wire = match rng.below(4) {
                0 => buf.len(),
                1 => buf.len() + rng.below(2000),
                2 => rng.below(100),
                _ => usize::MAX,
            };
            let d = Decoder::new(link, modes[rng.below(3)]);
            if let Ok(Some(_)) = d.decode(rng.next_u64(), &buf, wire) {
                decoded += 1;
            }
        }
        // Sanity: mutations leave many frames decodable.
        assert!(decoded > 10_000, "only {decoded} frames decoded");
    }
}
