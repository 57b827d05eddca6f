//! Fuzz target: `Decoder::decode` must never panic, whatever the bytes, the
//! link type, the checksum mode or the claimed wire length.
//!
//! Run (needs the nightly toolchain; from tcpeek/):
//!
//! ```text
//! cargo +nightly fuzz run decode -- -max_total_time=120
//! ```
//!
//! Input layout: byte 0 picks the link type (mod 4), byte 1 the checksum
//! mode (mod 3), bytes 2..4 how many bytes the frame lost to the snaplen
//! (wire length = frame length + that); the rest is the frame. Crashes land
//! in tcpeek/fuzz/artifacts/decode/; replay one with
//! `cargo +nightly fuzz run decode <file>`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The decoder is a self-contained module; compiling it in directly
// keeps the fuzz build free of libpcap and the eBPF build.
#[path = "../../src/capture/decode/mod.rs"]
#[allow(dead_code, reason = "the target only calls decode")]
mod decode;

use decode::{ChecksumMode, Decoder, LinkType};

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
];
const MODES: [ChecksumMode; 3] = [ChecksumMode::None, ChecksumMode::Ip, ChecksumMode::IpTcp];

fuzz_target!(|data: &[u8]| {
    let [link, mode, lost_hi, lost_lo, frame @ ..] = data else {
        return;
    };
    let decoder = Decoder::new(
        LINKS[usize::from(*link) % LINKS.len()],
        MODES[usize::from(*mode) % MODES.len()],
    );
    let lost = usize::from(u16::from_be_bytes([*lost_hi, *lost_lo]));
    let wire_len = match lost {
        0xffff => usize::MAX,
        n => frame.len() + n,
    };
    let _ = decoder.decode(0, frame, wire_len);
});
