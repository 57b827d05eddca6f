//! The reordering window: puts records that arrive slightly out of order
//! back in time order before the engine sees them.
//!
//! Merged multi-queue captures, mirror ports and eBPF events written from
//! different CPUs can deliver a SYN/ACK just before its SYN, or the ACK
//! just before the SYN/ACK, a few microseconds apart. A record is held
//! until time has passed its timestamp by [`WINDOW_NS`]; records are then
//! released in timestamp order. Records with the same timestamp (a
//! microsecond capture file, a coarse clock) are released in the order a
//! handshake makes them: the opening SYN, then the SYN/ACK, then anything
//! else, and otherwise in arrival order.
//!
//! A record whose timestamp is older than what was already released
//! arrived later than the window allows: it is released at once, counted
//! as [`Reorder::late`], and the engine handles it at its own clock. No I/O
//! and no clock: time is passed in, as to the engine.

use std::collections::VecDeque;

use tcpeek_common::{tcp_flags, Event, KIND_TCP};

/// How long a record is held for records stamped before it: 5 ms, a
/// thousand times the skew between CPUs or capture queues, short enough
/// that a finished handshake is still reported at once.
pub const WINDOW_NS: u64 = 5_000_000;

/// Most records held at once. A burst beyond it (over 13 million records a
/// second for the whole window) releases the oldest early, in order.
const MAX_HELD: usize = 1 << 16;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Reorder {
    held: VecDeque<Event>,
    /// Timestamp of the last released record.
    released: u64,
    late: u64,
}

/// Sort key: time, then the record's place in a handshake.
fn key(ev: &Event) -> (u64, u8) {
    let rank = if ev.kind != KIND_TCP {
        2
    } else {
        match ev.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) {
            tcp_flags::SYN => 0,
            f if f == tcp_flags::SYN | tcp_flags::ACK => 1,
            _ => 2,
        }
    };
    (ev.ts_ns, rank)
}

impl Reorder {
    pub fn new() -> Reorder {
        Reorder::default()
    }

    /// Records that arrived after their window had closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Takes one record; what can be released already goes to `out`.
    pub fn push(&mut self, ev: Event, out: &mut impl FnMut(&Event)) {
        if ev.ts_ns < self.released {
            self.late += 1;
            out(&ev);
            return;
        }
        // Nearly always in order: found at the back.
        let k = key(&ev);
        let at = self
            .held
            .iter()
            .rposition(|h| key(h) <= k)
            .map_or(0, |i| i + 1);
        self.held.insert(at, ev);
        let newest = self.held.back().map_or(0, |e| e.ts_ns);
        self.release(newest, out);
        while self.held.len() > MAX_HELD {
            self.pop(out);
        }
    }

    /// Time has reached `now` on the records' clock: releases what is at
    /// least [`WINDOW_NS`] older.
    pub fn advance(&mut self, now: u64, out: &mut impl FnMut(&Event)) {
        self.release(now, out);
    }

    /// Releases everything (end of input).
    pub fn flush(&mut self, out: &mut impl FnMut(&Event)) {
        while !self.held.is_empty() {
            self.pop(out);
        }
    }

    /// Releases records stamped at least [`WINDOW_NS`] before `now`.
    fn release(&mut self, now: u64, out: &mut impl FnMut(&Event)) {
        while self
            .held
            .front()
            .is_some_and(|e| e.ts_ns.saturating_add(WINDOW_NS) <= now)
        {
            self.pop(out);
        }
    }

    fn pop(&mut self, out: &mut impl FnMut(&Event)) {
        if let Some(ev) = self.held.pop_front() {
            self.released = self.released.max(ev.ts_ns);
            out(&ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcpeek_common::tcp_flags::{ACK, RST, SYN};

    fn ev(ts: u64, flags: u8, seq: u32) -> Event {
        Event {
            ts_ns: ts,
            tcp_flags: flags,
            seq,
            kind: KIND_TCP,
            ..Event::ZERO
        }
    }

    fn run(r: &mut Reorder, evs: &[Event]) -> Vec<u32> {
        let mut got = Vec::new();
        for e in evs {
            r.push(*e, &mut |e: &Event| got.push(e.seq));
        }
        got
    }

    #[test]
    fn in_order_records_wait_for_the_window_then_pass() {
        let mut r = Reorder::new();
        assert!(run(&mut r, &[ev(0, SYN, 1), ev(1_000, SYN | ACK, 2)]).is_empty());
        let mut got = Vec::new();
        r.advance(WINDOW_NS + 999, &mut |e: &Event| got.push(e.seq));
        assert_eq!(got, [1], "only what is a whole window old");
        r.flush(&mut |e: &Event| got.push(e.seq));
        assert_eq!(got, [1, 2]);
        assert_eq!(r.late(), 0);
    }

    #[test]
    fn synack_delivered_before_its_syn_comes_out_after_it() {
        let mut r = Reorder::new();
        let mut got = run(&mut r, &[ev(20_000, SYN | ACK, 2), ev(10_000, SYN, 1)]);
        r.flush(&mut |e: &Event| got.push(e.seq));
        assert_eq!(got, [1, 2]);
    }

    #[test]
    fn equal_times_follow_the_handshake_order() {
        let mut r = Reorder::new();
        let mut got = run(
            &mut r,
            &[
                ev(5, ACK, 3),
                ev(5, RST, 4),
                ev(5, SYN | ACK, 2),
                ev(5, SYN, 1),
            ],
        );
        r.flush(&mut |e: &Event| got.push(e.seq));
        assert_eq!(got, [1, 2, 3, 4], "SYN, SYN/ACK, then arrival order");
    }

    #[test]
    fn a_record_later_than_the_window_is_counted_and_passed_at_once() {
        let mut r = Reorder::new();
        let mut got = run(&mut r, &[ev(WINDOW_NS, SYN, 1), ev(4 * WINDOW_NS, ACK, 2)]);
        assert_eq!(got, [1]);
        // Older than a record already released: cannot be put before it.
        r.push(ev(WINDOW_NS / 2, SYN | ACK, 9), &mut |e: &Event| {
            got.push(e.seq)
        });
        assert_eq!(got, [1, 9]);
        assert_eq!(r.late(), 1);
        // Older than the newest by more than the window, but newer than
        // everything released: still put in order, not late.
        r.push(ev(2 * WINDOW_NS, SYN, 3), &mut |e: &Event| got.push(e.seq));
        r.flush(&mut |e: &Event| got.push(e.seq));
        assert_eq!(got, [1, 9, 3, 2]);
        assert_eq!(r.late(), 1);
    }

    #[test]
    fn a_burst_beyond_the_bound_releases_the_oldest_in_order() {
        let mut r = Reorder::new();
        let evs: Vec<Event> = (0..MAX_HELD as u32 + 10)
            .map(|i| ev(1_000, ACK, i))
            .collect();
        let got = run(&mut r, &evs);
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(r.held.len(), MAX_HELD);
    }
}
