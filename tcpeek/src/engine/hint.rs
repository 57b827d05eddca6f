//! The awaiting-ACK hint: a cheap filter in front of the session table, so
//! that the segments of established connections (most of what a capture
//! holds) are ruled out without a table lookup.

use tcpeek_common::Event;

use super::session::Key;

/// Counts, per bucket of a direction-independent hash of the 4-tuple, the
/// sessions whose server has sent its SYN (the only ones an ACK can move).
/// Zero means no segment of that tuple needs a table lookup; a collision
/// only costs a lookup. 64 Ki buckets, 256 KiB: stays in cache. The
/// buckets are open to the engine, whose tests add them up.
pub(super) struct Hint(pub(super) Box<[u32]>);

impl Hint {
    const BITS: u32 = 16;

    pub(super) fn new() -> Hint {
        Hint(vec![0; 1 << Self::BITS].into_boxed_slice())
    }

    fn fold(addr: &[u8; 16]) -> u32 {
        addr.chunks_exact(4)
            .fold(0, |h, w| h ^ u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
    }

    /// XOR makes it the same for both directions of a connection.
    fn index(a: &[u8; 16], b: &[u8; 16], ports: u32) -> usize {
        let h = Self::fold(a) ^ Self::fold(b) ^ ports;
        (h.wrapping_mul(0x9e37_79b1) >> (32 - Self::BITS)) as usize
    }

    pub(super) fn of_event(ev: &Event) -> usize {
        Self::index(&ev.saddr, &ev.daddr, u32::from(ev.sport ^ ev.dport))
    }

    pub(super) fn of_key(k: &Key) -> usize {
        Self::index(
            k.lo.addr.bytes(),
            k.hi.addr.bytes(),
            u32::from(k.lo.port ^ k.hi.port),
        )
    }

    /// A hint that rules nothing out: every segment is looked up (the
    /// tests compare an engine without the fast path to one with it).
    #[cfg(test)]
    pub(super) fn everywhere() -> Hint {
        Hint(vec![1; 1 << Self::BITS].into_boxed_slice())
    }

    pub(super) fn maybe(&self, i: usize) -> bool {
        self.0[i] != 0
    }

    pub(super) fn add(&mut self, i: usize) {
        self.0[i] += 1;
    }

    pub(super) fn remove(&mut self, i: usize) {
        self.0[i] -= 1;
    }
}
