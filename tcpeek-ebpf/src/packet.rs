//! Bounds-checked access to the bytes of a packet.
//!
//! Every read of packet memory goes through [`Packet::header`]: it checks once
//! that `N` bytes starting at `off` lie inside the packet and returns a
//! [`Header`] view whose accessors take the byte offset as a const generic
//! checked against `N` at compile time. Once `header` succeeded, no accessor
//! can read outside the packet (the verifier sees one range check followed by
//! constant-offset loads, the pattern it tracks best).

use core::mem::size_of;

/// Why the classifier stopped looking at a packet. Never an error of the
/// program: whatever the reason, the packet passes unchanged and unrecorded.
#[derive(Clone, Copy)]
pub enum Skip {
    /// Nothing to report: not TCP/ICMP, malformed, or not interesting.
    Pass,
    /// A header ended past the linear data. On TC the bytes may still exist
    /// in the skb's non-linear part (see `programs.rs`); otherwise the packet
    /// is truncated, and counted (`stat::SHORT`).
    Short,
}

/// The packet's directly accessible bytes `[start, end)`.
#[derive(Clone, Copy)]
pub struct Packet {
    start: usize,
    end: usize,
}

impl Packet {
    #[inline(always)]
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The one bounds check: `N` bytes at `off`.
    #[inline(always)]
    pub fn header<const N: usize>(&self, off: usize) -> Result<Header<N>, Skip> {
        let p = self.start + off;
        if p + N > self.end {
            return Err(Skip::Short);
        }
        Ok(Header { p })
    }
}

/// `N` bytes of packet that [`Packet::header`] proved readable.
#[derive(Clone, Copy)]
pub struct Header<const N: usize> {
    p: usize,
}

impl<const N: usize> Header<N> {
    /// A value of type `T` at byte `I`, as stored in the packet (network
    /// order for multi-byte fields).
    #[inline(always)]
    fn raw<T: Copy, const I: usize>(&self) -> T {
        const { assert!(I + size_of::<T>() <= N) };
        // SAFETY: `Packet::header` checked `p + N <= end`, and the const
        // assertion keeps the read inside those N bytes.
        unsafe { ((self.p + I) as *const T).read_unaligned() }
    }

    #[inline(always)]
    pub fn u8<const I: usize>(&self) -> u8 {
        self.raw::<u8, I>()
    }

    /// A big-endian 16-bit field converted to host order.
    #[inline(always)]
    pub fn be16<const I: usize>(&self) -> u16 {
        u16::from_be(self.raw::<u16, I>())
    }

    /// A 32-bit field left in network order (addresses, map keys).
    #[inline(always)]
    pub fn n32<const I: usize>(&self) -> u32 {
        self.raw::<u32, I>()
    }

    /// A 64-bit field left in network order (hashing).
    #[inline(always)]
    pub fn n64<const I: usize>(&self) -> u64 {
        self.raw::<u64, I>()
    }

    /// A big-endian 32-bit field converted to host order.
    #[inline(always)]
    pub fn be32<const I: usize>(&self) -> u32 {
        u32::from_be(self.raw::<u32, I>())
    }

    /// 16 bytes (an IPv6 address) in network order.
    #[inline(always)]
    pub fn bytes16<const I: usize>(&self) -> [u8; 16] {
        self.raw::<[u8; 16], I>()
    }
}
