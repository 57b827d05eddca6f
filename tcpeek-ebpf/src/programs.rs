//! The program entry points (see the crate documentation).

use aya_ebpf::{
    bindings::{xdp_action::XDP_PASS, TC_ACT_UNSPEC},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use tcpeek_common::{stat, DIR_EGRESS, DIR_INGRESS};

use crate::{
    classify, maps,
    packet::{Packet, Skip},
};

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
    if let Err(Skip::Short) = try_classify(ctx.data(), ctx.data_end(), DIR_INGRESS) {
        maps::count(stat::SHORT);
    }
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
    if let Err(Skip::Short) = try_classify(ctx.data(), ctx.data_end(), dir) {
        // Headers may sit in the skb's non-linear part. Pull them (content
        // unchanged; only done when a header was missing, so never for the
        // TCP stack's own egress packets, whose headers are always linear,
        // which matters as pulling a cloned skb copies it) and look again.
        let linear = (ctx.data_end() - ctx.data()) as u32;
        let len = ctx.len();
        let again = if len > linear && ctx.pull_data(len.min(PULL_LEN)).is_ok() {
            try_classify(ctx.data(), ctx.data_end(), dir)
        } else {
            Err(Skip::Short)
        };
        // Still short: the packet is truncated (or its headers are longer
        // than PULL_LEN, or the pull failed); counted, never silent.
        if let Err(Skip::Short) = again {
            maps::count(stat::SHORT);
        }
    }
    // "No opinion": the next program on the hook runs, then the default
    // action. TCX runs later programs only on TCX_NEXT, which is -1,
    // TC_ACT_UNSPEC (net/core/dev.c, tcx_run): TC_ACT_PIPE (3) ended the
    // chain there, hiding every packet from the programs after ours (a
    // second tcpeek, a firewall). cls_bpf maps codes it does not know,
    // PIPE included, to UNSPEC (cls_bpf_exec_opcode), so netlink filters
    // behave the same either way.
    TC_ACT_UNSPEC
}

/// The classifier proper, a BPF subprogram (not inlined) so that the retry
/// after a pull does not duplicate it.
#[inline(never)]
fn try_classify(start: usize, end: usize, dir: u8) -> Result<(), Skip> {
    classify::classify(&Packet::new(start, end), dir)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
