//! Packet time for capture files: which frame timestamps to believe.
//!
//! A capture file's timestamps are its only clock, and one damaged or
//! forged record must not move it: a stamp years ahead would time out
//! every open handshake, one years behind would make the next ones look
//! ancient. A quiet period, though, is real: a host with no new connection
//! for an hour records a gap, and the handshake after it must carry its own
//! time. The rule: a frame stamped more than [`JUMP_NS`] away from the
//! believed time is held until the next frame says which it is. If that
//! one agrees with the held frame (within [`JUMP_NS`] of it), time really
//! jumped and both carry their own stamps; if it agrees with the believed
//! time, the held frame was damaged and is handled at the believed time.
//! At most [`MAX_HELD`] frames wait. Before any time is believed (the
//! first frames of the file), the first two frames that agree set it. At
//! the end of the file, a frame nothing confirmed is handled at the
//! believed time, so a damaged last frame cannot time anything out either.
//!
//! Live capture does not need this: its timestamps come from the host's
//! clock. No I/O; frames in, frames with the time to use out.

use std::collections::VecDeque;

use tcpeek_common::Event;

/// A jump of packet time larger than this needs a second frame to be
/// believed: 10 minutes, more than any gap between the segments of one
/// handshake (the last SYN retransmission of a Linux client comes ~2
/// minutes after the first).
pub const JUMP_NS: u64 = 600 * 1_000_000_000;

/// Frames held while their time is in doubt.
const MAX_HELD: usize = 2;

/// A frame with the time to handle it at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    /// The time to use (the frame's own, or the believed time).
    pub ts_ns: u64,
    /// Its event, with `ts_ns` set to that time.
    pub event: Option<Event>,
    /// Whether its own timestamp was overruled.
    pub overruled: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FileClock {
    /// The believed time: the latest stamp of a confirmed frame.
    believed: Option<u64>,
    held: VecDeque<(u64, Option<Event>)>,
    overruled: u64,
}

fn agree(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= JUMP_NS
}

impl FileClock {
    pub fn new() -> FileClock {
        FileClock::default()
    }

    /// The believed time, once there is one.
    pub fn now(&self) -> Option<u64> {
        self.believed
    }

    /// Frames whose timestamp was not believed.
    pub fn overruled(&self) -> u64 {
        self.overruled
    }

    /// Takes one frame stamped `ts_ns`; frames whose time is settled go to
    /// `out`, in the order they were read.
    pub fn push(&mut self, ts_ns: u64, event: Option<Event>, out: &mut impl FnMut(Timed)) {
        match self.believed {
            Some(t) if agree(ts_ns, t) => {
                self.drain_overruled(t, out);
                self.emit_own(ts_ns, event, out);
            }
            _ => {
                // Does it confirm a held frame (the newest that agrees)?
                if let Some(at) = self.held.iter().rposition(|&(h, _)| agree(h, ts_ns)) {
                    let earlier: Vec<_> = self.held.drain(..at).collect();
                    let confirmed = self.held.pop_front();
                    let rest: Vec<_> = self.held.drain(..).collect();
                    // Frames before the confirmed one were lone outliers.
                    let base = self.believed.unwrap_or(confirmed.map_or(ts_ns, |c| c.0));
                    for (_, ev) in earlier {
                        self.emit_at(base, ev, out);
                    }
                    // The confirmed cluster sets the time, even backwards.
                    self.believed = None;
                    if let Some((h, ev)) = confirmed {
                        self.emit_own(h, ev, out);
                    }
                    for (h, ev) in rest {
                        // Between the confirmed frame and this one, held
                        // but not agreeing with either: outliers.
                        if agree(h, ts_ns) {
                            self.emit_own(h, ev, out);
                        } else {
                            let t = self.believed.unwrap_or(ts_ns);
                            self.emit_at(t, ev, out);
                        }
                    }
                    self.emit_own(ts_ns, event, out);
                    return;
                }
                self.held.push_back((ts_ns, event));
                if self.held.len() > MAX_HELD {
                    let (h, ev) = self.held.pop_front().expect("held is not empty");
                    match self.believed {
                        Some(t) => self.emit_at(t, ev, out),
                        // Nothing agrees with anything yet: take the
                        // first frame's word rather than wait forever.
                        None => self.emit_own(h, ev, out),
                    }
                }
            }
        }
    }

    /// End of the file: frames nothing confirmed are handled at the
    /// believed time (or, if no time was ever believed, the first one's).
    pub fn finish(&mut self, out: &mut impl FnMut(Timed)) {
        if self.believed.is_none() {
            if let Some((h, ev)) = self.held.pop_front() {
                self.emit_own(h, ev, out);
            }
        }
        if let Some(t) = self.believed {
            self.drain_overruled(t, out);
        }
    }

    fn drain_overruled(&mut self, t: u64, out: &mut impl FnMut(Timed)) {
        while let Some((_, ev)) = self.held.pop_front() {
            self.emit_at(t, ev, out);
        }
    }

    fn emit_own(&mut self, ts: u64, event: Option<Event>, out: &mut impl FnMut(Timed)) {
        // Time is the latest believed stamp (a confirmed jump, backwards
        // too, restarts it: `push` forgets the old time first).
        self.believed = Some(self.believed.map_or(ts, |t| t.max(ts)));
        out(Timed {
            ts_ns: ts,
            event: event.map(|e| Event { ts_ns: ts, ..e }),
            overruled: false,
        });
    }

    fn emit_at(&mut self, t: u64, event: Option<Event>, out: &mut impl FnMut(Timed)) {
        self.overruled += 1;
        out(Timed {
            ts_ns: t,
            event: event.map(|e| Event { ts_ns: t, ..e }),
            overruled: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const T0: u64 = 1_767_225_600 * S;
    const YEAR: u64 = 365 * 24 * 3600 * S;

    /// Feeds stamps; returns the time each frame was handled at, in order.
    fn times(stamps: &[u64]) -> (Vec<u64>, u64) {
        let mut c = FileClock::new();
        let mut got = Vec::new();
        for (i, &ts) in stamps.iter().enumerate() {
            let ev = Event {
                ts_ns: ts,
                seq: i as u32,
                ..Event::ZERO
            };
            c.push(ts, Some(ev), &mut |t: Timed| {
                assert_eq!(t.event.unwrap().ts_ns, t.ts_ns);
                got.push((t.event.unwrap().seq, t.ts_ns));
            });
        }
        c.finish(&mut |t: Timed| got.push((t.event.unwrap().seq, t.ts_ns)));
        let order: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            order,
            (0..stamps.len() as u32).collect::<Vec<_>>(),
            "read order kept"
        );
        (got.into_iter().map(|g| g.1).collect(), c.overruled())
    }

    #[test]
    fn steady_time_passes_through() {
        let s = [T0, T0 + S, T0 + 2 * S];
        assert_eq!(times(&s), (s.to_vec(), 0));
    }

    #[test]
    fn a_quiet_period_is_real_when_the_next_frame_confirms_it() {
        // Regression: the first frame after an hour's gap was stamped
        // before the gap, and its handshake timed out.
        let gap = T0 + 3600 * S;
        let s = [T0, T0 + S, gap, gap + 1000, gap + 2000];
        assert_eq!(times(&s), (s.to_vec(), 0));
    }

    #[test]
    fn a_lone_stamp_far_ahead_is_overruled() {
        let (t, n) = times(&[T0, T0 + 10 * YEAR, T0 + S]);
        assert_eq!((t, n), (vec![T0, T0, T0 + S], 1));
    }

    #[test]
    fn a_lone_stamp_far_behind_is_overruled() {
        let (t, n) = times(&[T0, 0, T0 + S]);
        assert_eq!((t, n), (vec![T0, T0, T0 + S], 1));
    }

    #[test]
    fn a_damaged_first_frame_does_not_set_the_time() {
        let (t, n) = times(&[T0 + 10 * YEAR, T0, T0 + S]);
        assert_eq!((t, n), (vec![T0, T0, T0 + S], 1));
        let (t, n) = times(&[0, T0, T0 + S]);
        assert_eq!((t, n), (vec![T0, T0, T0 + S], 1));
    }

    #[test]
    fn a_damaged_last_frame_does_not_move_the_end_of_file() {
        let mut c = FileClock::new();
        let mut last = 0;
        for ts in [T0, T0 + S, T0 + 10 * YEAR] {
            c.push(ts, None, &mut |t: Timed| last = t.ts_ns);
        }
        c.finish(&mut |t: Timed| last = t.ts_ns);
        assert_eq!(last, T0 + S);
        assert_eq!(c.now(), Some(T0 + S));
    }

    #[test]
    fn two_damaged_frames_in_a_row_are_both_overruled() {
        let (t, n) = times(&[T0, T0 + 10 * YEAR, 7, T0 + S]);
        assert_eq!((t, n), (vec![T0, T0, T0, T0 + S], 2));
    }

    #[test]
    fn a_confirmed_jump_backwards_restarts_the_time() {
        // A file whose clock was set back by an hour: once two frames
        // agree, the new time is believed, and frames after it too.
        let back = T0 - 3600 * S;
        let s = [T0, T0 + S, back, back + S, back + 2 * S];
        assert_eq!(times(&s), (s.to_vec(), 0));
    }

    #[test]
    fn the_believed_time_is_the_latest_stamp() {
        // A frame a little older than the one before it (within the jump
        // bound) keeps its stamp but does not set the time back.
        let mut c = FileClock::new();
        for ts in [T0, T0 + 10 * S, T0 + 5 * S] {
            c.push(ts, None, &mut |_| {});
        }
        assert_eq!(c.now(), Some(T0 + 10 * S));
    }

    #[test]
    fn events_carry_the_time_they_are_handled_at() {
        let mut c = FileClock::new();
        let mut got = Vec::new();
        for ts in [T0, T0 + S] {
            // An event whose own stamp is not the frame's.
            c.push(ts, Some(Event::ZERO), &mut |t: Timed| got.push(t));
        }
        c.finish(&mut |t: Timed| got.push(t));
        let stamps: Vec<u64> = got.iter().map(|t| t.event.unwrap().ts_ns).collect();
        assert_eq!(stamps, [T0, T0 + S]);
    }

    #[test]
    fn a_single_frame_file_keeps_its_time() {
        assert_eq!(times(&[T0]), (vec![T0], 0));
    }
}
