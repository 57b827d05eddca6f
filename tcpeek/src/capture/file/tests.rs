//! FileCapture on byte-built classic pcap and pcapng files and on the
//! fixtures: formats, timestamps, interfaces, and every kind of damage.

use super::*;
use etherparse::PacketBuilder;
use tcpeek_common::tcp_flags::SYN;
use tcpeek_testkit::pcap::{
    ByteOrder, Interface, PcapHeader, PcapWriter, PcapngWriter, Resolution,
};

/// 2026-01-01T00:00:00Z.
const START_S: u64 = 1_767_225_600;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A scratch file holding `bytes`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, bytes: &[u8]) -> Scratch {
        let path = std::env::temp_dir().join(format!("tcpeek-file-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn drain(cap: &mut FileCapture) -> (Vec<Frame>, Result<(), FileError>) {
    let mut frames = Vec::new();
    loop {
        match cap.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, Ok(())),
            Err(e) => return (frames, Err(e)),
        }
    }
}

fn events(frames: &[Frame]) -> Vec<Event> {
    frames.iter().filter_map(|f| f.event).collect()
}

fn read(name: &str, bytes: &[u8]) -> (FileCapture, Vec<Frame>) {
    let file = Scratch::new(name, bytes);
    let mut cap = FileCapture::open(&file.0, ChecksumMode::IpTcp).expect("opens");
    let (frames, end) = drain(&mut cap);
    end.expect("clean end");
    (cap, frames)
}

/// An Ethernet (or, with `raw`, raw IPv4) SYN from port `sport`.
fn syn(sport: u16, raw: bool) -> Vec<u8> {
    let mut v = Vec::new();
    if raw {
        PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(sport, 80, 1000, 64240)
            .syn()
            .write(&mut v, &[])
            .unwrap();
    } else {
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(sport, 80, 1000, 64240)
            .syn()
            .write(&mut v, &[])
            .unwrap();
    }
    v
}

/// A classic pcap file: `big_endian`, nanosecond magic if `nanos`;
/// records of (seconds, fraction, frame).
fn classic(big_endian: bool, nanos: bool, dlt: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let header = PcapHeader {
        resolution: if nanos {
            Resolution::Nano
        } else {
            Resolution::Micro
        },
        byte_order: order(big_endian),
        ..PcapHeader::new(dlt)
    };
    let mut w = PcapWriter::new(Vec::new(), header).unwrap();
    for (sec, frac, frame) in records {
        w.record_at(*sec, *frac, frame).unwrap();
    }
    w.into_inner()
}

/// A pcapng file, its first section `big_endian`.
fn pcapng(big_endian: bool) -> PcapngWriter {
    PcapngWriter::new(order(big_endian))
}

fn order(big_endian: bool) -> ByteOrder {
    if big_endian {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    }
}

#[test]
fn file_events_carry_packet_time_and_counts() {
    let mut cap =
        FileCapture::open(&fixture("success.pcap"), ChecksumMode::IpTcp).expect("fixture opens");
    assert_eq!(
        cap.banner(),
        format!(
            "reading from file {}, link-type EN10MB (Ethernet), snapshot length 65535",
            fixture("success.pcap").display()
        )
    );
    let (frames, end) = drain(&mut cap);
    end.expect("clean end");
    let events = events(&frames);
    let first_syn = events.iter().find(|e| e.tcp_flags == SYN).expect("a SYN");
    // 2026-01-01T00:00:00Z + 100 ms, from the record header.
    assert_eq!(first_syn.ts_ns, 1_767_225_600_100_000_000);
    let stats = cap.stats();
    assert_eq!((stats.drop, stats.ifdrop, stats.malformed), (0, 0, 0));
    assert_eq!(stats.recv, frames.len() as u64, "every frame is returned");
    assert!(frames.len() > events.len(), "ARP and UDP are read too");
    assert!(frames.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    assert_eq!(cap.next_frame().unwrap(), None, "None again after the end");
}

#[test]
fn sll2_file_has_directions() {
    let mut cap = FileCapture::open(&fixture("sll2.pcap"), ChecksumMode::None).expect("opens");
    assert!(cap.banner().contains("LINUX_SLL2 (Linux cooked v2)"));
    let (frames, end) = drain(&mut cap);
    end.unwrap();
    let events = events(&frames);
    assert!(events
        .iter()
        .any(|e| e.direction == tcpeek_common::DIR_INGRESS));
    assert!(events
        .iter()
        .any(|e| e.direction == tcpeek_common::DIR_EGRESS));
}

#[test]
fn classic_microseconds_nanoseconds_and_both_byte_orders() {
    let frame = syn(40000, false);
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let bytes = classic(big_endian, nanos, 1, &[(START_S as u32, 7, &frame)]);
            let (cap, frames) = read("classic.pcap", &bytes);
            let want = START_S * NS_PER_S + if nanos { 7 } else { 7_000 };
            assert_eq!(frames.len(), 1, "be {big_endian} ns {nanos}");
            assert_eq!(frames[0].ts_ns, want, "be {big_endian} ns {nanos}");
            let ev = frames[0].event.expect("the SYN");
            assert_eq!((ev.sport, ev.seq, ev.ts_ns), (40000, 1000, want));
            assert_eq!(cap.stats().malformed, 0);
        }
    }
}

#[test]
fn classic_link_types_raw_ip_cooked_and_fcs_bits() {
    let v4 = syn(40001, true);
    let mut v6 = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .tcp(40001, 443, 1000, 64240)
        .syn()
        .write(&mut v6, &[])
        .unwrap();
    // Linux cooked v1: packet type (host), ARPHRD_ETHER, address length,
    // address, protocol (pcap/sll.h).
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&v4);
    // 0x4400_0001: Ethernet, FCS present and 4 bytes long (libpcap's
    // LT_FCS_DATALINK_EXT(4) | 1); the FCS follows the frame.
    let mut eth = syn(40001, false);
    eth.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    for (dlt, frame, name) in [
        (101, &v4, "RAW (Raw IP)"),
        (228, &v4, "IPV4 (Raw IPv4)"),
        (229, &v6, "IPV6 (Raw IPv6)"),
        (113, &sll, "LINUX_SLL (Linux cooked v1)"),
        (0x4400_0001, &eth, "EN10MB (Ethernet)"),
    ] {
        let (cap, frames) = read("link.pcap", &classic(false, false, dlt, &[(1, 0, frame)]));
        assert_eq!(frames[0].event.map(|e| e.sport), Some(40001), "{dlt}");
        assert!(cap.banner().contains(name), "{}", cap.banner());
    }
    let file = Scratch::new("reserved.pcap", &classic(false, false, 0x0001_0001, &[]));
    let msg = FileCapture::open(&file.0, ChecksumMode::None)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("0x00010001 has reserved bits set"), "{msg}");
}

#[test]
fn truncated_last_record_is_an_error_after_the_events_before_it() {
    let bytes = std::fs::read(fixture("reject.pcap")).unwrap();
    let file = Scratch::new("truncated.pcap", &bytes[..bytes.len() - 10]);
    let mut cap = FileCapture::open(&file.0, ChecksumMode::None).expect("opens");
    let (frames, end) = drain(&mut cap);
    let err = end.expect_err("truncation is reported");
    assert!(matches!(err, FileError::TruncatedFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("truncated") && msg.contains("truncated.pcap"),
        "{msg}"
    );
    assert!(events(&frames).len() >= 3, "events before the cut count");
    assert_eq!(cap.next_frame().unwrap(), None, "reported once");
}

#[test]
fn caplen_beyond_the_snapshot_length_is_an_error_not_an_allocation() {
    let frame = syn(40000, false);
    let mut bytes = classic(false, false, 1, &[(1, 0, &frame), (2, 0, &frame)]);
    let second = 24 + 16 + frame.len();
    bytes[second + 8..second + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let file = Scratch::new("huge.pcap", &bytes);
    let mut cap = FileCapture::open(&file.0, ChecksumMode::None).unwrap();
    let (frames, end) = drain(&mut cap);
    assert_eq!(frames.len(), 1);
    let msg = end.unwrap_err().to_string();
    assert!(msg.starts_with("cannot read "), "{msg}");
    assert!(msg.contains("2147483632") && msg.contains("65535"), "{msg}");
}

#[test]
fn not_a_capture_file_is_named() {
    let file = Scratch::new(
        "notpcap.txt",
        b"this is not a capture file at all, just text\n",
    );
    let err = FileCapture::open(&file.0, ChecksumMode::None)
        .err()
        .unwrap();
    assert!(matches!(err, FileError::NotACaptureFile { .. }), "{err}");
    assert!(err.to_string().contains("notpcap.txt"), "{err}");
}

#[test]
fn garbage_after_a_valid_header_is_an_error_not_a_panic() {
    // Random bytes after a classic header and after a pcapng section
    // header: errors or frames, never a panic or a hang.
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let heads = [classic(false, false, 1, &[]), pcapng(false).into_bytes()];
    for round in 0..200 {
        let mut bytes = heads[round % 2].clone();
        let n = (next() % 3000) as usize;
        bytes.extend((0..n).map(|_| next() as u8));
        let file = Scratch::new("garbage", &bytes);
        if let Ok(mut cap) = FileCapture::open(&file.0, ChecksumMode::IpTcp) {
            let (_, end) = drain(&mut cap);
            let _ = end;
        }
    }
}

#[test]
fn missing_empty_and_directory_are_named() {
    let err = FileCapture::open(Path::new("/nonexistent/x.pcap"), ChecksumMode::None)
        .err()
        .unwrap();
    assert!(matches!(err, FileError::OpenFile { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
    let err = FileCapture::open(&std::env::temp_dir(), ChecksumMode::None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("directory"), "{err}");
    let empty = Scratch::new("empty.pcap", b"");
    let err = FileCapture::open(&empty.0, ChecksumMode::None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("the file is empty"), "{err}");
    let short = Scratch::new("short.pcap", &classic(false, false, 1, &[])[..10]);
    let err = FileCapture::open(&short.0, ChecksumMode::None)
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot open ") && msg.contains("truncated"),
        "{msg}"
    );
    let short = Scratch::new("short.pcapng", &pcapng(false).into_bytes()[..20]);
    let msg = FileCapture::open(&short.0, ChecksumMode::None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.starts_with("cannot open ") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn unsupported_link_type_names_its_number() {
    let mut bytes = std::fs::read(fixture("tfo.pcap")).unwrap();
    bytes[20..24].copy_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
    let file = Scratch::new("wifi.pcap", &bytes);
    let err = FileCapture::open(&file.0, ChecksumMode::None)
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("105") && msg.contains("IEEE802_11"), "{msg}");
    // The same with pcapng's one interface.
    let mut ng = pcapng(false);
    ng.interface(Interface::new(105));
    ng.enhanced_packet(0, 0, &[0; 40]);
    let file = Scratch::new("wifi.pcapng", ng.bytes());
    let msg = FileCapture::open(&file.0, ChecksumMode::None)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("105") && msg.contains("IEEE802_11"), "{msg}");
}

#[test]
fn pcapng_is_read_too() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    // Default resolution: microseconds. 2026-01-01T00:00:01Z.
    ng.enhanced_packet(0, (START_S + 1) * 1_000_000, &syn(40000, false));
    let (cap, frames) = read("one.pcapng", ng.bytes());
    assert_eq!(events(&frames).len(), 1);
    assert_eq!(frames[0].ts_ns, (START_S + 1) * NS_PER_S);
    assert!(cap.banner().contains("link-type EN10MB (Ethernet)"));
}

/// libpcap refused these files ("an interface has a type different
/// from the type of the first interface").
#[test]
fn pcapng_interfaces_of_different_link_types_each_decode() {
    for big_endian in [false, true] {
        let mut ng = pcapng(big_endian);
        ng.interface(Interface::new(1));
        ng.interface(Interface::new(101).with_tsresol(9));
        ng.enhanced_packet(0, START_S * 1_000_000, &syn(40000, false));
        ng.enhanced_packet(1, START_S * NS_PER_S + 5, &syn(40001, true));
        let (cap, frames) = read("two.pcapng", ng.bytes());
        let evs = events(&frames);
        assert_eq!(evs.len(), 2, "be {big_endian}");
        assert_eq!((evs[0].sport, evs[1].sport), (40000, 40001));
        assert_eq!(frames[1].ts_ns, START_S * NS_PER_S + 5);
        assert_eq!(cap.stats().malformed, 0);
        let banner = cap.banner();
        assert!(
            banner.contains("2 interfaces: 0: link-type EN10MB (Ethernet)")
                && banner.contains("1: link-type RAW (Raw IP)"),
            "{banner}"
        );
    }
}

#[test]
fn pcapng_if_tsresol_powers_of_ten_and_two_and_if_tsoffset() {
    for big_endian in [false, true] {
        let mut ng = pcapng(big_endian);
        // Milliseconds; 2^-20 s; microseconds 100 s later.
        ng.interface(Interface::new(1).with_tsresol(3));
        ng.interface(Interface::new(1).with_tsresol(0x80 | 20));
        ng.interface(Interface::new(1).with_tsoffset(100));
        let frame = syn(40000, false);
        ng.enhanced_packet(0, START_S * 1_000 + 250, &frame);
        ng.enhanced_packet(1, (START_S << 20) + (1 << 19), &frame);
        ng.enhanced_packet(2, 1_500_000, &frame);
        let (_, frames) = read("tsresol.pcapng", ng.bytes());
        let ts: Vec<u64> = frames.iter().map(|f| f.ts_ns).collect();
        assert_eq!(
            ts,
            [
                START_S * NS_PER_S + 250_000_000,
                START_S * NS_PER_S + 500_000_000,
                101 * NS_PER_S + 500_000_000,
            ],
            "be {big_endian}"
        );
    }
}

#[test]
fn pcapng_timestamps_saturate() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1).with_tsresol(0).with_tsoffset(i64::MAX));
    ng.interface(Interface::new(1).with_tsoffset(i64::MIN));
    ng.interface(Interface::new(1).with_tsresol(0xff)); // 2^127: unusable
    ng.enhanced_packet(0, u64::MAX, &syn(1, false));
    ng.enhanced_packet(1, 5, &syn(2, false));
    ng.enhanced_packet(2, 5, &syn(3, false));
    let (cap, frames) = read("saturate.pcapng", ng.bytes());
    assert_eq!(frames[0].ts_ns, u64::MAX);
    assert_eq!(frames[1].ts_ns, 0);
    assert_eq!(frames[2].event, None);
    assert_eq!(cap.stats().malformed, 1, "the unusable interface");
}

#[test]
fn packet_on_an_undescribed_interface_is_malformed_not_a_panic() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.enhanced_packet(7, 1, &syn(40000, false));
    ng.obsolete_packet(9, 1, &syn(40000, false));
    ng.enhanced_packet(0, 2, &syn(40001, false));
    let (cap, frames) = read("noif.pcapng", ng.bytes());
    assert_eq!(frames.len(), 3);
    assert_eq!(events(&frames).len(), 1);
    assert_eq!(cap.stats().malformed, 2);
    assert_eq!(cap.stats().recv, 3);
}

#[test]
fn undecodable_interface_frames_are_malformed() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.interface(Interface::new(105));
    ng.enhanced_packet(1, 1, &[0; 40]);
    ng.enhanced_packet(1, 2, &[0; 40]);
    ng.enhanced_packet(0, 3, &syn(40000, false));
    let (cap, frames) = read("wifi2.pcapng", ng.bytes());
    assert_eq!(events(&frames).len(), 1);
    assert_eq!(cap.stats().malformed, 2);
    assert!(cap
        .banner()
        .contains("IEEE802_11 (802.11), snapshot length 65535 (not decoded)"));
}

#[test]
fn no_decodable_interface_is_an_error_at_open() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(105));
    ng.interface(Interface::new(127));
    ng.enhanced_packet(0, 1, &[0; 40]);
    let file = Scratch::new("nodec.pcapng", ng.bytes());
    let msg = FileCapture::open(&file.0, ChecksumMode::None)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("no interface can be decoded"), "{msg}");
    assert!(
        msg.contains("0: link type 105") && msg.contains("1: link type 127"),
        "{msg}"
    );
}

#[test]
fn a_new_section_describes_its_interfaces_afresh() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.interface(Interface::new(101));
    ng.enhanced_packet(1, 1, &syn(40000, true));
    // Second section, big-endian, one raw interface: interface 1 is gone.
    ng.section(ByteOrder::Big);
    ng.interface(Interface::new(101));
    ng.enhanced_packet(1, 2, &syn(40001, true));
    ng.enhanced_packet(0, 3, &syn(40002, true));
    let (cap, frames) = read("sections.pcapng", ng.bytes());
    let ports: Vec<u16> = events(&frames).iter().map(|e| e.sport).collect();
    assert_eq!(ports, [40000, 40002]);
    assert_eq!(cap.stats().malformed, 1);
}

#[test]
fn simple_and_obsolete_packet_blocks_are_read() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.obsolete_packet(0, 2_000_000, &syn(40000, false));
    ng.simple_packet(&syn(40001, false));
    let (_, frames) = read("old.pcapng", ng.bytes());
    let ports: Vec<u16> = events(&frames).iter().map(|e| e.sport).collect();
    assert_eq!(ports, [40000, 40001]);
    // A Simple Packet Block has no time: the previous frame's.
    assert_eq!(frames[1].ts_ns, 2 * NS_PER_S);
}

#[test]
fn truncated_pcapng_block_is_an_error_after_the_frames_before_it() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.enhanced_packet(0, 1, &syn(40000, false));
    ng.enhanced_packet(0, 2, &syn(40001, false));
    let cut = ng.bytes().len() - 20;
    let file = Scratch::new("cut.pcapng", &ng.bytes()[..cut]);
    let mut cap = FileCapture::open(&file.0, ChecksumMode::None).unwrap();
    let (frames, end) = drain(&mut cap);
    assert_eq!(frames.len(), 1);
    let err = end.unwrap_err();
    assert!(matches!(err, FileError::TruncatedFile { .. }), "{err}");
    assert!(err.to_string().contains("cut.pcapng"), "{err}");
}

#[test]
fn pcapng_block_larger_than_the_buffer_is_read() {
    // A 2 MiB custom block the reader must grow its buffer for, then a
    // packet.
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.block(0x0000_0bad, &vec![0; 2 << 20]);
    ng.enhanced_packet(0, 1, &syn(40000, false));
    let (_, frames) = read("big.pcapng", ng.bytes());
    assert_eq!(events(&frames).len(), 1);
}

#[test]
fn pcapng_block_claiming_gigabytes_is_an_error() {
    let mut ng = pcapng(false);
    ng.interface(Interface::new(1));
    ng.enhanced_packet(0, 1, &syn(40000, false));
    let at = ng.bytes().len();
    ng.enhanced_packet(0, 2, &syn(40001, false));
    ng.bytes_mut()[at + 4..at + 8].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    ng.bytes_mut().extend_from_slice(&vec![0; 2 << 20]);
    let file = Scratch::new("huge.pcapng", ng.bytes());
    let mut cap = FileCapture::open(&file.0, ChecksumMode::None).unwrap();
    let (frames, end) = drain(&mut cap);
    assert_eq!(frames.len(), 1);
    let msg = end.unwrap_err().to_string();
    assert!(msg.contains("1073741824"), "{msg}");
}
