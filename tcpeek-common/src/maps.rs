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
        hint_slot(self.saddr ^ self.daddr, self.ports)
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
        hint_slot(fold64(lo(&self.saddr) ^ lo(&self.daddr)), self.ports)
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
