//! The maps shared with userspace and between the programs, and the two
//! operations on them every path needs: counting and emitting an event.

use aya_ebpf::{
    helpers::{bpf_jiffies64, bpf_ktime_get_ns},
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};
use tcpeek_common::{
    maps::{Hint, KeyV4, KeyV6, Pending, HINT_SLOTS},
    stat, Event,
};

/// Events for userspace. 4 MiB = 65536 events: about a second of a
/// 30k-handshakes/s burst (two or three events per handshake) if the reader
/// stalls. Userspace may resize it before loading.
#[map]
pub static TCPEEK_EVENTS: RingBuf = RingBuf::with_byte_size(tcpeek_common::DEFAULT_RING_BYTES, 0);

/// Per-CPU counters, indexed by `tcpeek_common::stat`.
#[map]
pub static TCPEEK_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT, 0);

/// Handshakes waiting for their final ACK: a SYN/ACK was seen. The key is
/// the tuple of the expected ACK, i.e. the SYN/ACK's reversed.
///
/// Sized for a busy server: 65536 half-open IPv4 handshakes is 300k
/// handshakes/s at a 200 ms RTT. LRU so a SYN flood (the server answers with
/// SYN cookies, and nothing ever completes) evicts the oldest entries instead
/// of blocking new ones. Common (not per-CPU) LRU lists: the SYN/ACK and its
/// ACK are usually handled on different CPUs, and per-CPU lists would divide
/// the capacity by the number of CPUs.
#[map]
pub static TCPEEK_HS_V4: LruHashMap<KeyV4, Pending> = LruHashMap::with_max_entries(65536, 0);

/// As [`TCPEEK_HS_V4`] for IPv6 (a separate map keeps the IPv4 key at 12
/// bytes, which hashes faster than a padded 36-byte key).
#[map]
pub static TCPEEK_HS_V6: LruHashMap<KeyV6, Pending> = LruHashMap::with_max_entries(16384, 0);

/// A summary of the two handshake maps that lets the hot path skip their
/// hash lookup: every ACK segment would otherwise pay one (about 17 ns for
/// IPv4, 35 ns for IPv6), although nearly none completes a handshake.
///
/// A tuple hashes to one slot (`tcpeek_common::maps::hint_slot`); the slot counts the entries
/// inserted for tuples of that slot and not removed yet, and remembers when
/// (in jiffies) the last one was inserted or refreshed. An ACK needs the map
/// lookup only if its slot is non-zero and recent. LRU evictions are not
/// seen, so counts only err upwards (a wasted lookup, never a missed ACK),
/// and a slot that has seen no SYN/ACK for [`HINT_WINDOW_JIFFIES`] is
/// ignored, which keeps such leaks from accumulating. 65536 slots: with a
/// few thousand handshakes in flight, over 95% of ACKs skip the lookup.
/// 1 MiB.
#[map]
pub static TCPEEK_HS_HINT: Array<Hint> = Array::with_max_entries(HINT_SLOTS, 0);

/// 180 s at HZ=1000, 30 min at HZ=100: well above the last SYN/ACK
/// retransmission (63 s with Linux's default tcp_synack_retries) plus an RTT.
/// Each retransmitted SYN/ACK refreshes its slot.
const HINT_WINDOW_JIFFIES: u64 = 180_000;

#[inline(always)]
fn jiffies() -> u64 {
    // SAFETY: a helper without preconditions (inlined by the verifier).
    unsafe { bpf_jiffies64() }
}

/// Whether the maps may hold a tuple of `slot`.
#[inline(always)]
pub fn hint_maybe_pending(slot: u32) -> bool {
    let Some(h) = TCPEEK_HS_HINT.get_ptr_mut(slot) else {
        return true;
    };
    // SAFETY: a valid map value; concurrent updates are atomic or benign.
    // A plain (volatile) load: the bpf target has no atomic loads. Aligned
    // 64-bit loads do not tear; a value a few nanoseconds stale could only
    // matter to an ACK racing its own SYN/ACK, which is an RTT apart.
    let (pending, stamp) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*h).pending),
            (*h).stamp,
        )
    };
    pending != 0 && jiffies().wrapping_sub(stamp) <= HINT_WINDOW_JIFFIES
}

/// A tuple of `slot` was inserted (`added`) or refreshed.
#[inline(always)]
pub fn hint_insert(slot: u32, added: bool) {
    if let Some(h) = TCPEEK_HS_HINT.get_ptr_mut(slot) {
        // SAFETY: a valid map value; `pending` is only changed atomically.
        unsafe {
            if added {
                atomic_add(&raw mut (*h).pending, 1);
            }
            (*h).stamp = jiffies();
        }
    }
}

/// `*p += v` as one BPF atomic add (`lock xadd`). The bpf target has no
/// Rust atomic read-modify-write operations (no CAS), but LLVM lowers this
/// intrinsic to BPF_ATOMIC | BPF_ADD, which needs none.
///
/// # Safety
/// `p` must be valid for writes.
#[inline(always)]
unsafe fn atomic_add(p: *mut u64, v: u64) {
    // SAFETY: upheld by the caller.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            p, v,
        )
    };
}

/// A tuple of `slot` was removed from the maps.
#[inline(always)]
pub fn hint_remove(slot: u32) {
    if let Some(h) = TCPEEK_HS_HINT.get_ptr_mut(slot) {
        // SAFETY: as in `hint_insert`.
        unsafe { atomic_add(&raw mut (*h).pending, u64::MAX) };
    }
}

/// Adds one to counter `idx` of this CPU.
#[inline(always)]
pub fn count(idx: u32) {
    if let Some(p) = TCPEEK_STATS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot, and BPF programs are not preempted by another
        // program touching the same slot on this CPU (TC/XDP run in softirq
        // or with preemption disabled).
        unsafe { *p += 1 };
    }
}

/// Unread bytes in the ring buffer from which the program wakes userspace
/// (`BPF_RB_FORCE_WAKEUP`). Below it, records are submitted without a
/// wakeup (`BPF_RB_NO_WAKEUP`) and userspace drains the ring on a short
/// timer: a wakeup is an irq_work and a reader wakeup, microseconds in a
/// VM, and with a reader that keeps up every record would otherwise find
/// the ring empty and pay one. Set by the loader (a fraction of the ring
/// size); read through a volatile load so the verifier sees the loader's
/// value.
#[no_mangle]
static TCPEEK_WAKE_BYTES: u64 = 1 << 20;

/// `bpf_ringbuf_submit` flags and the `bpf_ringbuf_query` selector
/// (include/uapi/linux/bpf.h).
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;
/// A record as the ring holds it: the 8-byte record header, then the event.
const RECORD_BYTES: u64 = 8 + core::mem::size_of::<Event>() as u64;
/// Records that cross the threshold together on several CPUs each see the
/// unread bytes past it; waking for any of the first few crossings keeps a
/// wakeup from being missed (the timer would still drain, later).
const WAKE_BAND: u64 = 8 * RECORD_BYTES;

/// Writes `ev` with the current `bpf_ktime_get_ns()` timestamp, or counts a
/// full ring buffer. Wakes userspace only when the unread data crosses
/// [`TCPEEK_WAKE_BYTES`].
#[inline(always)]
pub fn emit(mut ev: Event) {
    match TCPEEK_EVENTS.reserve::<Event>(0) {
        Some(mut entry) => {
            // SAFETY: a helper without preconditions.
            ev.ts_ns = unsafe { bpf_ktime_get_ns() };
            entry.write(ev);
            // Reserved records count as produced: this one is included.
            let unread = TCPEEK_EVENTS.query(BPF_RB_AVAIL_DATA);
            // SAFETY: a plain static, written only by the loader.
            let wake = unsafe { core::ptr::read_volatile(&raw const TCPEEK_WAKE_BYTES) };
            let flags = if unread >= wake && unread < wake + WAKE_BAND {
                BPF_RB_FORCE_WAKEUP
            } else {
                BPF_RB_NO_WAKEUP
            };
            entry.submit(flags);
            count(stat::EVENTS);
        }
        None => count(stat::RINGBUF_FULL),
    }
}
