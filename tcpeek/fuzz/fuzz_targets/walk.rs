//! Fuzz target: the shared packet walk (`tcpeek_common::wire`), which the
//! eBPF classifier and the libpcap decoder both run, must never panic and
//! its results must keep their rules (`wire::invariants::check`: offsets
//! inside the packet, lengths consistent, error counts that add up),
//! whatever the bytes, the framing or the claimed wire length.
//!
//! Run (needs the nightly toolchain and cargo-fuzz; from tcpeek/):
//!
//! ```text
//! cargo +nightly fuzz run walk -- -max_total_time=120
//! ```
//!
//! Input layout: byte 0 picks the framing (mod 3: Ethernet, raw IP, after
//! a cooked header), bytes 1..3 the EtherType for the last, bytes 3..5 how
//! many bytes the frame lost to the snaplen (wire length = frame length +
//! that); the rest is the frame. Crashes land in
//! tcpeek/fuzz/artifacts/walk/; replay one with
//! `cargo +nightly fuzz run walk <file>`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpeek_common::wire::invariants;

fuzz_target!(|data: &[u8]| {
    let [framing, et_hi, et_lo, lost_hi, lost_lo, frame @ ..] = data else {
        return;
    };
    let lost = usize::from(u16::from_be_bytes([*lost_hi, *lost_lo]));
    invariants::check(
        frame,
        frame.len() + lost,
        framing % 3,
        u16::from_be_bytes([*et_hi, *et_lo]),
    );
});
