//! The writers' output, byte by byte where the layout is the point, and
//! read back with pcap-parser (an independent reader) where it is not.

use super::*;
use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header, Block, LegacyPcapBlock, PcapNGCapture,
};

const FRAME: [u8; 6] = [1, 2, 3, 4, 5, 6];
/// Longer than [`two_records`]'s snapshot length.
const LONG: [u8; 100] = [7; 100];

fn classic(header: PcapHeader, records: &[(u64, &[u8])]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), header).unwrap();
    for (ts_ns, frame) in records {
        w.record(*ts_ns, frame).unwrap();
    }
    w.into_inner()
}

/// For each byte order and resolution, a header with snapshot length 64
/// and `linktype`, and its file: [`FRAME`] at 5.000001234 s, then [`LONG`]
/// at 6 s.
fn two_records(linktype: u32) -> Vec<(PcapHeader, Vec<u8>)> {
    let mut files = Vec::new();
    for byte_order in [ByteOrder::Little, ByteOrder::Big] {
        for resolution in [Resolution::Micro, Resolution::Nano] {
            let header = PcapHeader {
                snaplen: 64,
                resolution,
                byte_order,
                ..PcapHeader::new(linktype)
            };
            let bytes = classic(header, &[(5_000_001_234, &FRAME), (6_000_000_000, &LONG)]);
            files.push((header, bytes));
        }
    }
    files
}

/// pcap-parser's header and records (its `PcapCapture` reads
/// little-endian records only).
fn parse_classic(bytes: &[u8]) -> (pcap_parser::PcapHeader, Vec<LegacyPcapBlock<'_>>) {
    let (mut rest, header) = parse_pcap_header(bytes).unwrap();
    let mut records = Vec::new();
    while !rest.is_empty() {
        let (r, record) = if header.is_bigendian() {
            parse_pcap_frame_be(rest)
        } else {
            parse_pcap_frame(rest)
        }
        .unwrap();
        records.push(record);
        rest = r;
    }
    (header, records)
}

#[test]
fn classic_header_is_what_libpcap_writes() {
    let bytes = classic(PcapHeader::new(LINKTYPE_ETHERNET), &[]);
    assert_eq!(
        bytes,
        [
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0
        ]
    );
    let big = PcapHeader {
        resolution: Resolution::Nano,
        byte_order: ByteOrder::Big,
        ..PcapHeader::new(0x4400_0001)
    };
    assert_eq!(big.to_bytes()[..4], [0xa1, 0xb2, 0x3c, 0x4d]);
    assert_eq!(big.to_bytes()[20..], [0x44, 0, 0, 1], "the field as given");
}

#[test]
fn classic_records_read_back_in_both_orders_and_resolutions() {
    for (header, bytes) in two_records(101) {
        let (byte_order, resolution) = (header.byte_order, header.resolution);
        let (head, records) = parse_classic(&bytes);
        let what = format!("{byte_order:?} {resolution:?}");
        assert_eq!(head.is_bigendian(), byte_order == ByteOrder::Big, "{what}");
        assert_eq!(
            head.is_nanosecond_precision(),
            resolution == Resolution::Nano,
            "{what}"
        );
        assert_eq!((head.snaplen, head.network.0), (64, 101));
        let [first, second] = &records[..] else {
            panic!("{what}: {} records", records.len());
        };
        let frac = if resolution == Resolution::Nano {
            1_234
        } else {
            1
        };
        assert_eq!((first.ts_sec, first.ts_usec), (5, frac), "{what}");
        assert_eq!(
            (first.caplen, first.origlen, first.data),
            (6, 6, &FRAME[..])
        );
        // Cut to the snapshot length, keeping the original length.
        assert_eq!((second.caplen, second.origlen), (64, 100), "{what}");
        assert_eq!(second.data, &LONG[..64]);
    }
}

#[test]
fn classic_record_at_writes_the_fields_as_given() {
    let mut w = PcapWriter::new(Vec::new(), PcapHeader::new(1)).unwrap();
    w.record_at(7, 2_000_000, &FRAME).unwrap();
    let bytes = w.into_inner();
    assert_eq!(bytes.len(), 24 + 16 + FRAME.len());
    assert_eq!(bytes[24..32], [7, 0, 0, 0, 0x80, 0x84, 0x1e, 0]);
}

#[test]
fn pcapng_blocks_read_back_in_both_orders() {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let mut ng = PcapngWriter::new(order);
        assert_eq!(ng.interface(Interface::new(1)), 0);
        let raw = Interface::new(101)
            .with_snaplen(262_144)
            .with_tsresol(9)
            .with_tsoffset(-3);
        assert_eq!(ng.interface(raw), 1);
        ng.enhanced_packet(0, (7 << 32) | 9, &FRAME);
        ng.enhanced_packet_with_len(1, 5, &FRAME[..3], 1500);
        ng.simple_packet(&FRAME);
        let bytes = ng.into_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let cap = PcapNGCapture::from_file(&bytes).unwrap();
        let [section] = &cap.sections[..] else {
            panic!("{order:?}: {} sections", cap.sections.len());
        };
        assert_eq!(section.big_endian, order == ByteOrder::Big);
        let blocks = &section.blocks;
        let Block::InterfaceDescription(eth) = &blocks[1] else {
            panic!("{order:?}: {:?}", blocks[1]);
        };
        assert_eq!((eth.linktype.0, eth.snaplen), (1, 65_535));
        assert!(eth.options.is_empty());
        let Block::InterfaceDescription(raw) = &blocks[2] else {
            panic!("{order:?}: {:?}", blocks[2]);
        };
        assert_eq!((raw.linktype.0, raw.snaplen), (101, 262_144));
        // Checked by hand: pcap-parser 0.17 reads if_tsoffset
        // little-endian whatever the section's order.
        let values: Vec<(u16, &[u8])> = raw
            .options
            .iter()
            .map(|o| (o.code.0, o.as_bytes().unwrap()))
            .collect();
        assert_eq!(values[0], (9, &[9][..]));
        assert_eq!(values[1], (14, &order.i64(-3)[..]));
        let Block::EnhancedPacket(p) = &blocks[3] else {
            panic!("{order:?}: {:?}", blocks[3]);
        };
        assert_eq!((p.if_id, p.ts_high, p.ts_low), (0, 7, 9));
        assert_eq!((p.caplen, p.origlen, &p.data[..6]), (6, 6, &FRAME[..]));
        let Block::EnhancedPacket(p) = &blocks[4] else {
            panic!("{order:?}: {:?}", blocks[4]);
        };
        assert_eq!((p.if_id, p.caplen, p.origlen), (1, 3, 1500));
        let Block::SimplePacket(s) = &blocks[5] else {
            panic!("{order:?}: {:?}", blocks[5]);
        };
        assert_eq!((s.origlen, &s.data[..6]), (6, &FRAME[..]));
    }
}

#[test]
fn pcapng_obsolete_and_custom_blocks_are_laid_out_by_hand() {
    let mut ng = PcapngWriter::new(ByteOrder::Big);
    let shb = ng.bytes().len();
    assert_eq!(shb, 28, "the smallest Section Header Block");
    ng.obsolete_packet(3, (1 << 32) | 2, &FRAME);
    let b = &ng.bytes()[shb..];
    // Type 2, total 12 + 20 + 8 (6 bytes padded), then the body.
    assert_eq!(b[..8], [0, 0, 0, 2, 0, 0, 0, 40]);
    assert_eq!(
        b[8..28],
        [0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 6]
    );
    assert_eq!(b[28..36], [1, 2, 3, 4, 5, 6, 0, 0]);
    assert_eq!(b[36..], [0, 0, 0, 40]);
    let at = ng.bytes().len();
    ng.block(0x0bad, &[0xee; 5]);
    assert_eq!(ng.bytes().len() - at, 12 + 8);
}

#[test]
fn pcapng_times_in_nanoseconds_follow_the_interface() {
    let mut ng = PcapngWriter::new(ByteOrder::Little);
    ng.interface(Interface::new(1));
    ng.interface(Interface::new(1).with_tsresol(9));
    ng.interface(Interface::new(1).with_tsresol(0x80 | 20).with_tsoffset(100));
    let ns = 101 * NS_PER_S + 500_000_999;
    ng.enhanced_packet_ns(0, ns, &FRAME);
    ng.enhanced_packet_ns(1, ns, &FRAME);
    // 1.5 s after the offset, in units of 2^-20 s (rounded down).
    ng.enhanced_packet_ns(2, 101 * NS_PER_S + 500_000_900, &FRAME);
    ng.enhanced_packet_ns(2, 0, &FRAME); // before the offset: 0
    let bytes = ng.into_bytes();
    let cap = PcapNGCapture::from_file(&bytes).unwrap();
    let ts: Vec<u64> = cap.sections[0]
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::EnhancedPacket(p) => Some((u64::from(p.ts_high) << 32) | u64::from(p.ts_low)),
            _ => None,
        })
        .collect();
    assert_eq!(ts, [101_500_000, ns, (1 << 20) + (1 << 19), 0]);
}

#[test]
fn a_new_section_describes_its_interfaces_afresh() {
    let mut ng = PcapngWriter::new(ByteOrder::Little);
    ng.interface(Interface::new(1));
    ng.section(ByteOrder::Big);
    assert_eq!(ng.byte_order(), ByteOrder::Big);
    assert_eq!(ng.interface(Interface::new(101)), 0);
    let bytes = ng.into_bytes();
    let cap = PcapNGCapture::from_file(&bytes).unwrap();
    let orders: Vec<bool> = cap.sections.iter().map(|s| s.big_endian).collect();
    assert_eq!(orders, [false, true]);
}

// --- the classic reader ---------------------------------------------------

#[test]
fn read_classic_gives_back_what_the_writer_wrote_in_every_order_and_resolution() {
    // Reserved bits and the FCS flag come back as written.
    for (header, bytes) in two_records(0x4400_0001) {
        let (byte_order, resolution) = (header.byte_order, header.resolution);
        let file = ClassicFile::parse(&bytes).unwrap();
        let what = format!("{byte_order:?} {resolution:?}");
        assert_eq!(file.header, header, "{what}");
        let first_ns = match resolution {
            Resolution::Micro => 5_000_001_000,
            Resolution::Nano => 5_000_001_234,
        };
        assert_eq!(
            file.records,
            [
                Record {
                    ts_ns: first_ns,
                    data: FRAME.to_vec(),
                    origlen: 6,
                },
                // Cut to the snapshot length, keeping the original length.
                Record {
                    ts_ns: 6_000_000_000,
                    data: LONG[..64].to_vec(),
                    origlen: 100,
                },
            ],
            "{what}"
        );
    }
}

#[test]
fn read_classic_takes_a_fraction_past_a_second_as_it_stands() {
    let mut w = PcapWriter::new(Vec::new(), PcapHeader::new(1)).unwrap();
    w.record_at(7, 2_000_000, &FRAME).unwrap();
    let file = ClassicFile::parse(&w.into_inner()).unwrap();
    assert_eq!(file.records[0].ts_ns, 9 * NS_PER_S);
}

#[test]
fn read_classic_reads_a_file_with_no_records() {
    let file = ClassicFile::parse(&classic(PcapHeader::new(LINKTYPE_ETHERNET), &[])).unwrap();
    assert_eq!(file.header, PcapHeader::new(LINKTYPE_ETHERNET));
    assert!(file.records.is_empty());
}

#[test]
fn read_classic_reads_by_path_and_names_the_file_in_errors() {
    let dir = crate::TempDir::new("read-classic");
    let path = dir.path("two.pcap");
    let bytes = classic(PcapHeader::new(101), &[(1, &FRAME), (2, &FRAME)]);
    std::fs::write(&path, &bytes).unwrap();
    let file = read_classic(&path).unwrap();
    assert_eq!((file.header.linktype, file.records.len()), (101, 2));

    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = read_classic(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
    let missing = dir.path("missing.pcap");
    let err = read_classic(&missing).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.pcap"), "{err}");
}

#[test]
fn read_classic_refuses_other_magics_naming_the_bytes() {
    let pcapng = PcapngWriter::new(ByteOrder::Little).into_bytes();
    // The "modified" format: its records are 8 bytes longer.
    let mut modified = classic(PcapHeader::new(1), &[(0, &FRAME)]);
    modified[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
    for (bytes, starts) in [
        (&pcapng[..], "0a 0d 0d 0a"),
        (&modified[..], "34 cd b2 a1"),
        (&[0xde; 24][..], "de de de de"),
    ] {
        let err = ClassicFile::parse(bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = err.to_string();
        assert!(err.contains("not a classic pcap file"), "{err}");
        assert!(err.contains(&format!("starts {starts},")), "{err}");
        assert!(
            err.contains("a1b2c3d4") && err.contains("a1b23c4d"),
            "{err}"
        );
    }
}

#[test]
fn read_classic_says_where_a_file_is_cut_short() {
    let bytes = classic(PcapHeader::new(1), &[(0, &FRAME), (1, &FRAME)]);
    // 24-byte file header, then records of 16 + 6 bytes.
    let second = 24 + 16 + FRAME.len();
    for (cut, says) in [
        (
            10,
            "the file header is cut short: 10 of 24 bytes".to_string(),
        ),
        (
            second + 9,
            format!("record 1 (at byte {second}) is cut short"),
        ),
        (
            bytes.len() - 2,
            format!("record 1 (at byte {second}) is cut short: 2 more bytes were due"),
        ),
    ] {
        let err = ClassicFile::parse(&bytes[..cut]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        assert!(err.to_string().starts_with(&says), "cut at {cut}: {err}");
    }
}
