//! The ring buffer of events: wrapped for tokio on first use, drained in
//! batches, records checked against the event size.

use super::*;

/// Events converted per [`EbpfCapture::drain`] call at most, so that a
/// reader cannot be kept in one call forever by a producer as fast as it.
pub(super) const MAX_BATCH: usize = 65536;

/// The ring buffer, wrapped in an `AsyncFd` on first async use (so that
/// `open` and `drain` work without a tokio runtime).
pub(super) enum Ring {
    Plain(RingBuf<MapData>),
    Async(AsyncFd<RingBuf<MapData>>),
    Moving,
}

impl Ring {
    pub(super) fn get_mut(&mut self) -> &mut RingBuf<MapData> {
        match self {
            Ring::Plain(r) => r,
            Ring::Async(a) => a.get_mut(),
            Ring::Moving => unreachable!("ring buffer lost while registering with tokio"),
        }
    }
}

/// Unread bytes at which the kernel side wakes the reader: a quarter of the
/// ring. Below that the reader drains on its own timer ([`DRAIN_INTERVAL`]),
/// so a busy host pays one wakeup per many events instead of one per event,
/// and a burst still wakes the reader long before the ring fills.
pub fn wake_bytes(ring_bytes: u32) -> u64 {
    u64::from(ring_bytes / 4)
}

/// How often the reader drains the ring without being woken: the longest a
/// record waits in the ring at low rates.
pub const DRAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Converts one ring buffer record; `None` if its size is not [`EVENT_SIZE`].
pub fn decode_record(record: &[u8]) -> Option<Event> {
    (record.len() == EVENT_SIZE).then(|| bytemuck::pod_read_unaligned::<Event>(record))
}

/// Drains up to [`MAX_BATCH`] records; returns (events appended, whether
/// records may remain).
pub(super) fn drain_ring(
    ring: &mut RingBuf<MapData>,
    offset_ns: i64,
    bad_records: &mut u64,
    out: &mut Vec<Event>,
) -> (usize, bool) {
    let mut n = 0;
    for _ in 0..MAX_BATCH {
        let Some(item) = ring.next() else {
            return (n, false);
        };
        match decode_record(&item) {
            Some(mut ev) => {
                ev.ts_ns = (ev.ts_ns as i64).wrapping_add(offset_ns) as u64;
                out.push(ev);
                n += 1;
            }
            None => *bad_records += 1,
        }
    }
    (n, true)
}
