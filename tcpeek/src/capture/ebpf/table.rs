//! The classifier's table of SYN/ACKs awaiting their ACK, read from
//! userspace: whether the kernel still remembers a handshake.
//!
//! The table is an LRU map (65,536 IPv4 and 16,384 IPv6 entries): a flood
//! of SYN/ACKs nobody answers evicts genuine entries, and the kernel cannot
//! tell (an eviction is not observable from BPF). The completing ACK of an
//! evicted handshake is then filtered out, and the engine would call it a
//! timeout where libpcap sees a success. So when a handshake the server
//! answered times out, the daemon asks here: an entry that is still there
//! means the ACK really never came (a timeout, as libpcap says); one that
//! is gone was evicted (an ACK that came would have removed it and been
//! reported, or counted as lost in the ring), and the handshake is counted
//! as not judged instead ([`crate::stats::EngineStats::evicted`]).

use aya::maps::{HashMap, MapData, MapError};
use tcpeek_common::maps::{KeyV4, KeyV6, Pending};

use crate::event::Connection;

/// [`KeyV4`] for aya, which wants its own Pod marker.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct K4(KeyV4);
// SAFETY: plain data with no padding (three u32), as the kernel's key.
unsafe impl aya::Pod for K4 {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct K6(KeyV6);
// SAFETY: plain data with no padding (2 × 16 bytes and a u32).
unsafe impl aya::Pod for K6 {}

#[repr(transparent)]
#[derive(Clone, Copy)]
struct P(Pending);
// SAFETY: plain data with no padding, as the kernel's value.
unsafe impl aya::Pod for P {}

/// Both families' tables of one capture.
pub struct KernelTable {
    v4: HashMap<MapData, K4, P>,
    v6: HashMap<MapData, K6, P>,
}

impl KernelTable {
    pub(super) fn new(v4: aya::maps::Map, v6: aya::maps::Map) -> Result<KernelTable, MapError> {
        Ok(KernelTable {
            v4: HashMap::try_from(v4)?,
            v6: HashMap::try_from(v6)?,
        })
    }

    /// Whether the table holds `conn`'s handshake (the key the classifier
    /// stores: the client's tuple, fields as on the wire). A lookup that
    /// fails for another reason answers yes: the handshake is then judged
    /// on what was seen, as before.
    pub fn holds(&self, conn: &Connection) -> bool {
        let (c, s) = (conn.client, conn.server);
        let mut ports = [0u8; 4];
        ports[..2].copy_from_slice(&c.port.to_be_bytes());
        ports[2..].copy_from_slice(&s.port.to_be_bytes());
        let ports = u32::from_ne_bytes(ports);
        let found = if c.addr.is_v6() {
            self.v6.get(
                &K6(KeyV6 {
                    saddr: *c.addr.bytes(),
                    daddr: *s.addr.bytes(),
                    ports,
                }),
                0,
            )
        } else {
            let v4 = |b: &[u8; 16]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            self.v4.get(
                &K4(KeyV4 {
                    saddr: v4(c.addr.bytes()),
                    daddr: v4(s.addr.bytes()),
                    ports,
                }),
                0,
            )
        };
        !matches!(found, Err(MapError::KeyNotFound))
    }
}
