//! The maps shared with userspace and between the programs, and the two
//! operations on them every path needs: counting and emitting an event.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf},
};
use tcpeek_common::{stat, Event};

/// Events for userspace. 4 MiB = 65536 events: about a second of a
/// 30k-handshakes/s burst (two or three events per handshake) if the reader
/// stalls. Userspace may resize it before loading.
#[map]
pub static TCPEEK_EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

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
pub static TCPEEK_HS_V4: LruHashMap<KeyV4, u32> = LruHashMap::with_max_entries(65536, 0);

/// As [`TCPEEK_HS_V4`] for IPv6 (a separate map keeps the IPv4 key at 12
/// bytes, which hashes faster than a padded 36-byte key).
#[map]
pub static TCPEEK_HS_V6: LruHashMap<KeyV6, u32> = LruHashMap::with_max_entries(16384, 0);

/// IPv4 tuple, every field as on the wire (network order).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeyV4 {
    pub saddr: u32,
    pub daddr: u32,
    /// Source port in the first two bytes, destination port in the last two.
    pub ports: u32,
}

/// IPv6 tuple, every field as on the wire (network order).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeyV6 {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub ports: u32,
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

/// Writes `ev` with the current `bpf_ktime_get_ns()` timestamp, or counts a
/// full ring buffer.
#[inline(always)]
pub fn emit(mut ev: Event) {
    match TCPEEK_EVENTS.reserve::<Event>(0) {
        Some(mut entry) => {
            // SAFETY: a helper without preconditions.
            ev.ts_ns = unsafe { bpf_ktime_get_ns() };
            entry.write(ev);
            entry.submit(0);
            count(stat::EVENTS);
        }
        None => count(stat::RINGBUF_FULL),
    }
}
