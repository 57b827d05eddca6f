//! The program entry points (see the crate documentation).

use aya_ebpf::{
    bindings::{xdp_action::XDP_PASS, TC_ACT_UNSPEC},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use tcpeek_common::{
    framing, stat,
    wire::{Packet, Stop},
    DIR_EGRESS, DIR_INGRESS,
};

use crate::{classify, maps};

/// How this interface's packets begin (`tcpeek_common::framing`), set by
/// the loader. Read-only data: the verifier knows its value and drops the
/// walk not taken, so each interface pays for its own framing only.
#[no_mangle]
static TCPEEK_FRAMING: u32 = framing::ETHERNET;

/// How a look at a packet ended, as the programs count it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Reported, or nothing to report.
    Done,
    /// A header ended past the readable bytes (on TC the rest may be in
    /// the skb's non-linear part).
    Short,
    /// Shorter than its IP length says: counted with `Short`.
    Truncated,
    /// An impossible or unsupported header: counted as malformed, as the
    /// libpcap decoder counts the same packet.
    Malformed,
}

/// Bytes pulled into the linear part of an skb whose headers are not all
/// there (drivers that build skbs from page fragments leave only the
/// Ethernet header linear). Enough for Ethernet + two VLAN tags + IPv6 with
/// a few extension headers + TCP, or an ICMP error quoting IPv4 + TCP.
const PULL_LEN: u32 = 192;

#[classifier]
pub fn tcpeek_tc_in(ctx: TcContext) -> i32 {
    tc(&ctx, DIR_INGRESS)
}

#[classifier]
pub fn tcpeek_tc_eg(ctx: TcContext) -> i32 {
    tc(&ctx, DIR_EGRESS)
}

#[xdp]
pub fn tcpeek_xdp(ctx: XdpContext) -> u32 {
    maps::count(stat::PACKETS);
    // XDP without multi-buffer support sees the whole frame linearly: a
    // header past its end is a truncated packet.
    let len = (ctx.data_end() - ctx.data()) as u32;
    tally(try_classify(ctx.data(), ctx.data_end(), len, DIR_INGRESS));
    XDP_PASS
}

/// Does nothing: the benchmark's baseline for the cost of running a program.
#[classifier]
pub fn tcpeek_empty(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

#[inline(always)]
fn tc(ctx: &TcContext, dir: u8) -> i32 {
    maps::count(stat::PACKETS);
    let len = ctx.len();
    let mut seen = try_classify(ctx.data(), ctx.data_end(), len, dir);
    if seen == Seen::Short {
        // Headers may sit in the skb's non-linear part. Pull them (content
        // unchanged; only done when a header was missing, so never for the
        // TCP stack's own egress packets, whose headers are always linear,
        // which matters as pulling a cloned skb copies it) and look again.
        let linear = (ctx.data_end() - ctx.data()) as u32;
        if len > linear && ctx.pull_data(len.min(PULL_LEN)).is_ok() {
            seen = try_classify(ctx.data(), ctx.data_end(), len, dir);
        }
    }
    // Still short: the packet is truncated (or its headers are longer than
    // PULL_LEN, or the pull failed); counted, never silent.
    tally(seen);
    // "No opinion": the next program on the hook runs, then the default
    // action. TCX runs later programs only on TCX_NEXT, which is -1,
    // TC_ACT_UNSPEC (net/core/dev.c, tcx_run): TC_ACT_PIPE (3) ended the
    // chain there, hiding every packet from the programs after ours (a
    // second tcpeek, a firewall). cls_bpf maps codes it does not know,
    // PIPE included, to UNSPEC (cls_bpf_exec_opcode), so netlink filters
    // behave the same either way.
    TC_ACT_UNSPEC
}

/// Counts what went wrong, if anything.
#[inline(always)]
fn tally(seen: Seen) {
    match seen {
        Seen::Done => {}
        Seen::Short | Seen::Truncated => maps::count(stat::SHORT),
        Seen::Malformed => maps::count(stat::MALFORMED),
    }
}

/// The classifier proper on the readable bytes `[start, end)` of a packet
/// of `len` bytes: a BPF subprogram (not inlined) so that the retry after a
/// pull does not duplicate it.
#[inline(never)]
fn try_classify(start: usize, end: usize, len: u32, dir: u8) -> Seen {
    // SAFETY: a plain read of a static; volatile so that the compiler
    // cannot fold the value it was built with (the loader patches it).
    let framing = unsafe { core::ptr::read_volatile(&raw const TCPEEK_FRAMING) };
    // SAFETY: `[start, end)` are the context's data pointers.
    let pkt = unsafe { Packet::from_raw(start, end) };
    match classify::classify(&pkt, len as usize, framing, dir) {
        Ok(()) | Err(Stop::Ignored) => Seen::Done,
        Err(Stop::Short { .. }) => Seen::Short,
        Err(Stop::Truncated { .. }) => Seen::Truncated,
        Err(Stop::Malformed { .. } | Stop::Unsupported(_)) => Seen::Malformed,
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
