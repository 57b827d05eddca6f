//! Capture: where events come from.
//!
//! Each backend turns what it captured into [`tcpeek_common::Event`]s and
//! reports what it saw and what it could not deliver as [`CaptureStats`]:
//! live interfaces through libpcap (`pcap`) or eBPF (`ebpf`), capture files
//! through `file`. libpcap frames and file frames go through the same
//! [`decode::Decoder`].

pub mod clock;
pub mod decode;
pub mod ebpf;
pub mod file;
pub mod pcap;

/// What a capture backend saw and lost, reported in the summary and on the
/// socket next to the engine's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets received by the capture (libpcap `ps_recv`; frames read from a
    /// file; eBPF: packets the classifier looked at).
    pub recv: u64,
    /// Packets dropped by the capture because the reader was too slow
    /// (libpcap `ps_drop`; eBPF: ring buffer full).
    pub drop: u64,
    /// Packets dropped by the interface or driver (libpcap `ps_ifdrop`; eBPF:
    /// handshakes the in-kernel table could not hold).
    pub ifdrop: u64,
    /// Frames that could not be decoded (truncated, malformed, unsupported
    /// link layer) or failed the `-c` checksum check.
    pub malformed: u64,
    /// Frames whose headers were cut short by the snapshot length but whose
    /// fixed TCP header was decoded (see `decode.rs`); also counted in
    /// `recv`, not in `malformed`.
    pub truncated: u64,
}

impl std::ops::AddAssign for CaptureStats {
    /// Two captures' figures together (several interfaces).
    fn add_assign(&mut self, o: CaptureStats) {
        self.recv += o.recv;
        self.drop += o.drop;
        self.ifdrop += o.ifdrop;
        self.malformed += o.malformed;
        self.truncated += o.truncated;
    }
}
