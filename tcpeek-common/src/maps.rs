//! The keys and values of the kernel side's handshake maps, and the slot
//! function of their hint array: the layouts both sides of the map
//! interface agree on (see [`crate::names`] for the maps' names).

use crate::tcp::{Opening, ServerOpening};

/// IPv4 tuple of `TCPEEK_HS_V4`, every field as on the wire (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct KeyV4 {
    pub saddr: u32,
    pub daddr: u32,
    /// Source port in the first two bytes, destination port in the last two.
    pub ports: u32,
}

/// IPv6 tuple of `TCPEEK_HS_V6`, every field as on the wire (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct KeyV6 {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub ports: u32,
}

impl KeyV4 {
    /// The tuple of the other direction. (The two ports swap places
    /// whatever the host byte order.)
    #[inline(always)]
    pub fn reversed(&self) -> KeyV4 {
        KeyV4 {
            saddr: self.daddr,
            daddr: self.saddr,
            ports: self.ports.rotate_left(16),
        }
    }

    #[inline(always)]
    pub fn slot(&self) -> u32 {
        slot_v4(self.saddr, self.daddr, self.ports)
    }
}

impl KeyV6 {
    #[inline(always)]
    pub fn reversed(&self) -> KeyV6 {
        KeyV6 {
            saddr: self.daddr,
            daddr: self.saddr,
            ports: self.ports.rotate_left(16),
        }
    }

    #[inline(always)]
    pub fn slot(&self) -> u32 {
        let lo = |a: &[u8; 16]| {
            let mut b = [0; 8];
            b.copy_from_slice(&a[8..]);
            u64::from_ne_bytes(b)
        };
        slot_v6(lo(&self.saddr), lo(&self.daddr), self.ports)
    }
}

/// Slots of `TCPEEK_HS_HINT`.
pub const HINT_SLOTS: u32 = 1 << 16;

/// The hint slot of a tuple given its addresses folded to 32 bits (XOR) and
/// its ports as on the wire. Both directions of a connection share a slot
/// (the ports enter XORed with their swap), so that a segment from the
/// server finds out as cheaply as one from the client whether its
/// handshake may be remembered.
#[inline(always)]
pub fn hint_slot(addrs: u32, ports: u32) -> u32 {
    // Fibonacci hashing: the top 16 bits of a multiplication by 2^32/phi.
    (addrs ^ ports ^ ports.rotate_left(16)).wrapping_mul(0x9e37_79b9) >> 16
}

/// The hint slot of an IPv4 tuple, its fields as on the wire: what a key
/// has at insert and what the classifier reads from the headers of a
/// segment, so that both find the same slot.
#[inline(always)]
pub fn slot_v4(saddr: u32, daddr: u32, ports: u32) -> u32 {
    hint_slot(saddr ^ daddr, ports)
}

/// [`slot_v4`] for IPv6, from the low 64 bits of each address as on the
/// wire.
#[inline(always)]
pub fn slot_v6(saddr_lo: u64, daddr_lo: u64, ports: u32) -> u32 {
    hint_slot(fold64(saddr_lo ^ daddr_lo), ports)
}

/// IPv6 addresses enter the hint hash through their low 64 bits (the
/// interface identifiers, which vary most), XORed and folded to 32.
#[inline(always)]
pub fn fold64(x: u64) -> u32 {
    (x ^ (x >> 32)) as u32
}

/// A slot of `TCPEEK_HS_HINT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Hint {
    /// Map entries of this slot (changed with atomic add/sub; 64-bit: the
    /// bpf target has no 32-bit Rust atomics).
    pub pending: u64,
    /// jiffies at the last insert or refresh.
    pub stamp: u64,
}

/// What a remembered SYN/ACK waits for (host byte order): an ACK that
/// acknowledges the server's opening ([`ServerOpening::acked_by`], as the
/// userspace engine accepts), and the sequence number the client's next
/// segment starts at (the SYN/ACK's own acknowledgement number).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
pub struct Pending {
    pub server: ServerOpening,
    pub seq: u32,
}

impl Pending {
    /// A first SYN/ACK with sequence number `isn` and `payload` bytes,
    /// acknowledging `seq`.
    #[inline(always)]
    pub fn new(isn: u32, payload: u32, seq: u32) -> Pending {
        Pending {
            server: ServerOpening::new(Opening::new(isn, payload)),
            seq,
        }
    }

    /// This entry after another SYN/ACK of the tuple (`next`, built by
    /// [`Pending::new`]).
    #[inline(always)]
    pub fn then(self, next: Pending) -> Pending {
        Pending {
            server: self.server.then(next.server.latest),
            seq: next.seq,
        }
    }

    /// Whether `ack` acknowledges the latest or the previous SYN/ACK.
    #[inline(always)]
    pub fn acked_by(&self, ack: u32) -> bool {
        self.server.acked_by(ack)
    }

    /// A segment from the server starting at `seq` with `len` bytes of
    /// data (RFC 7413: Fast Open servers may send data before the
    /// completing ACK): if it starts within what the latest SYN/ACK and the
    /// data so far cover, what was sent grows to its end and `true` says
    /// the segment matters (the engine extends the same way, and must see
    /// it).
    #[inline(always)]
    pub fn server_data(&mut self, seq: u32, len: u32) -> bool {
        self.server.latest.extend(seq, len)
    }
}

const _: () = assert!(core::mem::size_of::<KeyV4>() == 12);
const _: () = assert!(core::mem::size_of::<KeyV6>() == 36);
const _: () = assert!(core::mem::size_of::<Pending>() == 20);
const _: () = assert!(core::mem::size_of::<Hint>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;

    fn v4(i: u32) -> KeyV4 {
        KeyV4 {
            saddr: 0x0a00_0001u32.to_be(),
            daddr: (0x0a01_0000 + i).to_be(),
            ports: (u32::from(40000 + i as u16) << 16 | 443).to_be(),
        }
    }

    fn v6(i: u32) -> KeyV6 {
        let mut daddr = [0xfd; 16];
        daddr[12..].copy_from_slice(&i.to_be_bytes());
        KeyV6 {
            saddr: [0xfd; 16],
            daddr,
            ports: (u32::from(50000 + (i % 1000) as u16) << 16 | 443).to_be(),
        }
    }

    /// What the kernel's hot path computes from the headers for a
    /// segment of the other direction must find the SYN/ACK's slot.
    #[test]
    fn a_tuple_and_its_reverse_share_a_slot() {
        for i in 0..1000 {
            let (k, r) = (v4(i), v4(i).reversed());
            assert_eq!((r.saddr, r.daddr), (k.daddr, k.saddr));
            assert_ne!(r.ports, k.ports);
            assert_eq!(r.reversed(), k);
            assert_eq!(k.slot(), r.slot());
            let (k, r) = (v6(i), v6(i).reversed());
            assert_eq!(r.reversed(), k);
            assert_eq!(k.slot(), r.slot());
        }
    }

    /// Slots spread: many tuples, many slots, all in range. (A constant or
    /// a hash that drops address or port bits would crowd a few slots and
    /// send every ACK to the map lookup.)
    #[test]
    fn slots_spread_over_the_array() {
        let mut seen = std::collections::BTreeSet::new();
        let mut seen6 = std::collections::BTreeSet::new();
        for i in 0..4096 {
            let s = v4(i).slot();
            assert!(s < HINT_SLOTS);
            seen.insert(s);
            seen6.insert(v6(i).slot());
        }
        assert!(seen.len() > 3500, "{} distinct slots", seen.len());
        assert!(seen6.len() > 3500, "{} distinct slots", seen6.len());
        // Addresses alone move the slot, whatever the ports.
        let fixed: std::collections::BTreeSet<u32> = (0..4096)
            .map(|i| {
                KeyV4 {
                    ports: 443,
                    ..v4(i)
                }
                .slot()
            })
            .collect();
        assert!(fixed.len() > 3500, "{} distinct slots", fixed.len());
        let fixed6: std::collections::BTreeSet<u32> = (0..4096)
            .map(|i| {
                KeyV6 {
                    ports: 443,
                    ..v6(i)
                }
                .slot()
            })
            .collect();
        assert!(fixed6.len() > 3500, "{} distinct slots", fixed6.len());
        // Addresses alone and ports alone move the slot too.
        let k = v4(1);
        assert_ne!(KeyV4 { saddr: 7, ..k }.slot(), k.slot());
        assert_ne!(KeyV4 { ports: 7, ..k }.slot(), k.slot());
    }

    #[test]
    fn the_slot_is_fibonacci_hashing_of_the_folded_tuple() {
        let (addrs, ports) = (0x1234_5678, 0x9abc_def0u32);
        let x = addrs ^ ports ^ ports.rotate_left(16);
        assert_eq!(hint_slot(addrs, ports), x.wrapping_mul(0x9e37_79b9) >> 16);
        assert_eq!(fold64(0x0000_0001_0000_0010), 0x11);
        assert_eq!(fold64(0xf000_0000_0000_0000), 0xf000_0000);
        assert_eq!(fold64(0x8000_0000_8000_0000), 0);
    }

    #[test]
    fn pending_acknowledgement_and_server_data() {
        let mut p = Pending::new(100, 0, 7);
        assert!(p.acked_by(101) && !p.acked_by(102) && !p.acked_by(100));
        assert!(!p.server_data(101, 0), "no data");
        assert!(!p.server_data(150, 10), "not contiguous");
        assert!(p.server_data(101, 10));
        assert!(p.acked_by(111) && !p.acked_by(112));
        // A new ISN keeps the previous one acceptable; seq follows.
        let q = p.then(Pending::new(500, 0, 8));
        assert!(q.acked_by(501) && q.acked_by(111));
        assert_eq!(q.seq, 8);
    }
}
