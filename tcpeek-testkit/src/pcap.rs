//! Capture files written for tests, benchmarks and fixtures: classic pcap
//! ([`PcapWriter`]) and pcapng ([`PcapngWriter`]), in one place, so that
//! every file the suite builds is laid out by the same code; and classic
//! files read back ([`read_classic`]), so that no test carries a reader of
//! its own.
//!
//! Classic pcap (pcap-savefile(5), draft-ietf-opsawg-pcap): a 24-byte file
//! header (magic, version 2.4, thiszone, sigfigs, snapshot length, link
//! type), then for each record a 16-byte header (seconds, fraction,
//! captured length, original length) and the captured bytes. The magic
//! number says whether the fraction counts microseconds or nanoseconds.
//!
//! pcapng (draft-ietf-opsawg-pcapng): every block is its type, its total
//! length, a body padded to 32 bits, and the total length again. Written
//! here: Section Header (section 4.1), Interface Description (4.2, with
//! `if_tsresol` and `if_tsoffset`), Enhanced Packet (4.3), Simple Packet
//! (4.4) and the obsolete Packet Block (appendix A); [`PcapngWriter::block`]
//! writes any other.
//!
//! Damaged files are not written here: a test that needs one writes a good
//! file and cuts or patches its bytes itself, so that the damage is spelled
//! out where it is asserted on.

use std::io::{self, Write};

/// Link type of Ethernet (<https://www.tcpdump.org/linktypes.html>).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Classic file magic numbers (pcap-savefile(5)).
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// pcapng block types (draft-ietf-opsawg-pcapng section 10.1), the
/// Section Header's byte-order magic, and the options written (section
/// 4.2).
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
/// Microseconds: what an interface without `if_tsresol` counts in.
const DEFAULT_TSRESOL: u8 = 6;

const NS_PER_S: u64 = 1_000_000_000;

/// The byte order of a classic file or of a pcapng section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ByteOrder {
    #[default]
    Little,
    Big,
}

impl ByteOrder {
    pub fn u16(self, v: u16) -> [u8; 2] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    pub fn u32(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    pub fn i64(self, v: i64) -> [u8; 8] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
}

/// What the fraction of a classic record's time counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    /// Magic `a1b2c3d4`.
    #[default]
    Micro,
    /// Magic `a1b23c4d`.
    Nano,
}

/// The file header of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapHeader {
    /// The link type field, written as given: the link type in the low 16
    /// bits, then reserved bits and the FCS flag and length
    /// (draft-ietf-opsawg-pcap section 4).
    pub linktype: u32,
    /// The snapshot length: the header's, and the length
    /// [`PcapWriter::record`] cuts frames to.
    pub snaplen: u32,
    pub resolution: Resolution,
    pub byte_order: ByteOrder,
}

impl PcapHeader {
    /// A little-endian, microsecond header with snapshot length 65535, as
    /// libpcap's `pcap_open_dead` and tcpdump write on x86.
    pub fn new(linktype: u32) -> PcapHeader {
        PcapHeader {
            linktype,
            snaplen: 65_535,
            resolution: Resolution::Micro,
            byte_order: ByteOrder::Little,
        }
    }

    /// The header's 24 bytes.
    pub fn to_bytes(&self) -> [u8; 24] {
        let o = self.byte_order;
        let magic = match self.resolution {
            Resolution::Micro => MAGIC_MICROS,
            Resolution::Nano => MAGIC_NANOS,
        };
        let mut b = [0; 24];
        b[0..4].copy_from_slice(&o.u32(magic));
        b[4..6].copy_from_slice(&o.u16(2));
        b[6..8].copy_from_slice(&o.u16(4));
        // thiszone and sigfigs stay 0: reserved, "SHOULD be filled with 0"
        // (pcap-savefile(5); libpcap's sf_write_header, sf-pcap.c).
        b[16..20].copy_from_slice(&o.u32(self.snaplen));
        b[20..24].copy_from_slice(&o.u32(self.linktype));
        b
    }
}

/// A classic pcap file being written to `W`, record by record.
pub struct PcapWriter<W: Write> {
    out: W,
    header: PcapHeader,
}

impl<W: Write> PcapWriter<W> {
    /// Writes `header` to `out`.
    pub fn new(mut out: W, header: PcapHeader) -> io::Result<PcapWriter<W>> {
        out.write_all(&header.to_bytes())?;
        Ok(PcapWriter { out, header })
    }

    /// A record of `frame` at `ts_ns` nanoseconds since the epoch: seconds
    /// (truncated to the format's 32 bits) and the fraction in the file's
    /// resolution. A frame longer than the snapshot length is cut to it and
    /// keeps its original length, as a capture would.
    pub fn record(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let frac = ts_ns % NS_PER_S;
        let frac = match self.header.resolution {
            Resolution::Micro => frac / 1_000,
            Resolution::Nano => frac,
        };
        self.record_at((ts_ns / NS_PER_S) as u32, frac as u32, frame)
    }

    /// A record of `frame` with its time as the two fields hold it:
    /// seconds, and the fraction in the file's resolution (written as
    /// given, even past a second). Cut to the snapshot length like
    /// [`PcapWriter::record`].
    pub fn record_at(&mut self, sec: u32, frac: u32, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a frame of {} bytes does not fit a record", frame.len()),
            )
        })?;
        let caplen = len.min(self.header.snaplen);
        let o = self.header.byte_order;
        let mut head = [0; 16];
        head[0..4].copy_from_slice(&o.u32(sec));
        head[4..8].copy_from_slice(&o.u32(frac));
        head[8..12].copy_from_slice(&o.u32(caplen));
        head[12..16].copy_from_slice(&o.u32(len));
        self.out.write_all(&head)?;
        self.out.write_all(&frame[..caplen as usize])
    }

    pub fn header(&self) -> &PcapHeader {
        &self.header
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The writer, for a flush or for bytes written by hand.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// An interface for an Interface Description Block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The link type (16 bits in an IDB).
    pub linktype: u16,
    pub snaplen: u32,
    /// `if_tsresol`, written if `Some`: the high bit chooses a power of 2,
    /// else of 10, of the rest, as the units per second. Without it the
    /// interface counts microseconds.
    pub tsresol: Option<u8>,
    /// `if_tsoffset`, written if `Some`: seconds added to every time.
    pub tsoffset: Option<i64>,
}

impl Interface {
    /// An interface with snapshot length 65535, counting microseconds.
    pub fn new(linktype: u16) -> Interface {
        Interface {
            linktype,
            snaplen: 65_535,
            tsresol: None,
            tsoffset: None,
        }
    }

    pub fn with_snaplen(self, snaplen: u32) -> Interface {
        Interface { snaplen, ..self }
    }

    pub fn with_tsresol(self, tsresol: u8) -> Interface {
        Interface {
            tsresol: Some(tsresol),
            ..self
        }
    }

    pub fn with_tsoffset(self, seconds: i64) -> Interface {
        Interface {
            tsoffset: Some(seconds),
            ..self
        }
    }

    /// `ns` nanoseconds since the epoch in this interface's units, after
    /// its offset; saturating. Panics if the resolution does not fit in 64
    /// bits (such an interface can be described, not written to by time).
    fn units(&self, ns: u64) -> u64 {
        let tsresol = self.tsresol.unwrap_or(DEFAULT_TSRESOL);
        let exp = u32::from(tsresol & 0x7f);
        let per_s = if tsresol & 0x80 == 0 {
            10u64.checked_pow(exp)
        } else {
            1u64.checked_shl(exp)
        };
        let per_s =
            per_s.unwrap_or_else(|| panic!("if_tsresol 0x{tsresol:02x} has no 64-bit unit"));
        let offset_ns = i128::from(self.tsoffset.unwrap_or(0)) * i128::from(NS_PER_S);
        let units = (i128::from(ns) - offset_ns) * i128::from(per_s) / i128::from(NS_PER_S);
        u64::try_from(units.max(0)).unwrap_or(u64::MAX)
    }
}

/// A pcapng file being built in memory, block by block. In memory because
/// the tests that read these files cut and patch their bytes
/// ([`PcapngWriter::bytes_mut`]).
pub struct PcapngWriter {
    bytes: Vec<u8>,
    /// The current section's byte order.
    order: ByteOrder,
    /// The current section's interfaces.
    interfaces: Vec<Interface>,
}

impl PcapngWriter {
    /// A file and its first section, in `order`.
    pub fn new(order: ByteOrder) -> PcapngWriter {
        let mut ng = PcapngWriter {
            bytes: Vec::new(),
            order,
            interfaces: Vec::new(),
        };
        ng.section(order);
        ng
    }

    /// Starts a section in `order` with a Section Header Block: byte-order
    /// magic, version 1.0, section length unknown (-1). Its interfaces are
    /// described afresh.
    pub fn section(&mut self, order: ByteOrder) {
        self.order = order;
        self.interfaces.clear();
        let mut body = order.u32(BYTE_ORDER_MAGIC).to_vec();
        body.extend_from_slice(&order.u16(1));
        body.extend_from_slice(&order.u16(0));
        body.extend_from_slice(&order.i64(-1));
        self.block(SHB, &body);
    }

    /// Describes `iface` in an Interface Description Block: link type,
    /// reserved, snapshot length, then the options it has, each padded to
    /// 32 bits, and `opt_endofopt`. Returns its interface id.
    pub fn interface(&mut self, iface: Interface) -> u32 {
        let o = self.order;
        let mut body = o.u16(iface.linktype).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&o.u32(iface.snaplen));
        let mut options: Vec<(u16, Vec<u8>)> = Vec::new();
        if let Some(r) = iface.tsresol {
            options.push((IF_TSRESOL, vec![r]));
        }
        if let Some(s) = iface.tsoffset {
            options.push((IF_TSOFFSET, o.i64(s).to_vec()));
        }
        if !options.is_empty() {
            for (code, value) in options {
                body.extend_from_slice(&o.u16(code));
                body.extend_from_slice(&o.u16(value.len() as u16));
                body.extend_from_slice(&value);
                body.resize(body.len().div_ceil(4) * 4, 0);
            }
            body.extend_from_slice(&o.u16(OPT_ENDOFOPT));
            body.extend_from_slice(&[0, 0]);
        }
        self.block(IDB, &body);
        self.interfaces.push(iface);
        (self.interfaces.len() - 1) as u32
    }

    /// An Enhanced Packet Block holding all of `frame`, on interface
    /// `if_id` (described or not) at `ts` in that interface's units.
    pub fn enhanced_packet(&mut self, if_id: u32, ts: u64, frame: &[u8]) {
        self.enhanced_packet_with_len(if_id, ts, frame, block_len(frame.len()));
    }

    /// An Enhanced Packet Block holding `data`, captured from a packet of
    /// `origlen` bytes.
    pub fn enhanced_packet_with_len(&mut self, if_id: u32, ts: u64, data: &[u8], origlen: u32) {
        let o = self.order;
        let mut body = o.u32(if_id).to_vec();
        body.extend_from_slice(&o.u32((ts >> 32) as u32));
        body.extend_from_slice(&o.u32(ts as u32));
        body.extend_from_slice(&o.u32(block_len(data.len())));
        body.extend_from_slice(&o.u32(origlen));
        body.extend_from_slice(data);
        self.block(EPB, &body);
    }

    /// An Enhanced Packet Block at `ns` nanoseconds since the epoch, in the
    /// units and after the offset of interface `if_id`, which must have
    /// been described in this section.
    pub fn enhanced_packet_ns(&mut self, if_id: u32, ns: u64, frame: &[u8]) {
        let iface = self
            .interfaces
            .get(if_id as usize)
            .unwrap_or_else(|| panic!("interface {if_id} was not described"));
        let ts = iface.units(ns);
        self.enhanced_packet(if_id, ts, frame);
    }

    /// A Simple Packet Block: original length and the packet; no
    /// interface (it is interface 0) and no time.
    pub fn simple_packet(&mut self, frame: &[u8]) {
        let mut body = self.order.u32(block_len(frame.len())).to_vec();
        body.extend_from_slice(frame);
        self.block(SPB, &body);
    }

    /// An obsolete Packet Block: interface (16 bits), drops count (0),
    /// time in the interface's units, captured and original length, data.
    pub fn obsolete_packet(&mut self, if_id: u16, ts: u64, frame: &[u8]) {
        let o = self.order;
        let len = block_len(frame.len());
        let mut body = o.u16(if_id).to_vec();
        body.extend_from_slice(&o.u16(0));
        body.extend_from_slice(&o.u32((ts >> 32) as u32));
        body.extend_from_slice(&o.u32(ts as u32));
        body.extend_from_slice(&o.u32(len));
        body.extend_from_slice(&o.u32(len));
        body.extend_from_slice(frame);
        self.block(OPB, &body);
    }

    /// A block of type `kind` around `body`, padded to 32 bits, in the
    /// section's byte order.
    pub fn block(&mut self, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = self.order.u32(block_len(12 + padded));
        self.bytes.extend_from_slice(&self.order.u32(kind));
        self.bytes.extend_from_slice(&total);
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        self.bytes.extend_from_slice(&total);
    }

    /// The current section's byte order.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes written so far, to cut or patch.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A length in a block; pcapng lengths are 32 bits.
fn block_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("{n} bytes do not fit a pcapng block"))
}

mod read;

pub use read::{read_classic, ClassicFile, Record};

#[cfg(test)]
mod tests;
