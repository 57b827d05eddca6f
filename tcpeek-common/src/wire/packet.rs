//! Bounds-checked access to the bytes of a packet, the same on both sides.
//!
//! Every read of packet memory goes through [`Packet::header`]: it checks
//! once that `N` bytes starting at `off` are readable and returns a
//! [`Header`] view whose accessors take the byte offset as a const generic
//! checked against `N` at compile time. Once `header` succeeded, no accessor
//! can read outside the packet. In the kernel this is one range check
//! against the packet's end followed by constant-offset loads, the pattern
//! the verifier tracks best; on the host it is a checked slice access.

use core::{marker::PhantomData, mem::size_of};

/// The readable bytes of a packet: `[start, end)` in memory.
///
/// On the host it is built from a slice ([`Packet::new`]) and borrows it;
/// in the kernel from the program context's data pointers
/// ([`Packet::from_raw`]).
#[derive(Clone, Copy)]
pub struct Packet<'a> {
    start: usize,
    end: usize,
    bytes: PhantomData<&'a [u8]>,
}

/// `N` bytes at `off` are not readable: the packet's readable part ends
/// `available` bytes after `off` (0 if before it; always 0 in the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub available: usize,
}

impl<'a> Packet<'a> {
    /// The bytes of `bytes`.
    #[inline(always)]
    pub fn new(bytes: &'a [u8]) -> Packet<'a> {
        let start = bytes.as_ptr() as usize;
        Packet {
            start,
            end: start + bytes.len(),
            bytes: PhantomData,
        }
    }

    /// The bytes from address `start` to `end`.
    ///
    /// # Safety
    /// `[start, end)` must be readable memory for as long as the packet is
    /// used (in an eBPF program: the context's `data` and `data_end`).
    #[inline(always)]
    pub unsafe fn from_raw(start: usize, end: usize) -> Packet<'static> {
        Packet {
            start,
            end,
            bytes: PhantomData,
        }
    }

    /// How many bytes are readable.
    #[inline(always)]
    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Readable bytes from `off` on, for error messages; 0 in the kernel,
    /// whose verifier refuses arithmetic on the packet's end pointer.
    #[inline(always)]
    pub fn available(&self, off: usize) -> usize {
        if cfg!(target_arch = "bpf") {
            0
        } else {
            self.len().saturating_sub(off)
        }
    }

    /// The one bounds check: `N` bytes at `off`.
    #[inline(always)]
    pub fn header<const N: usize>(&self, off: usize) -> Result<Header<'a, N>, Unreadable> {
        // The kernel compares a packet pointer with the packet's end, which
        // the verifier turns into a known readable range; offsets there are
        // bounded by the walk (a few hundred bytes), so nothing overflows.
        // The host compares lengths, which cannot overflow whatever `off`.
        #[cfg(target_arch = "bpf")]
        let fits = fits_in_kernel(self.start, off, N, self.end);
        #[cfg(not(target_arch = "bpf"))]
        let fits = off <= self.len() && N <= self.len() - off;
        if !fits {
            return Err(Unreadable {
                available: self.available(off),
            });
        }
        Ok(Header {
            p: self.start + off,
            bytes: PhantomData,
        })
    }
}

/// The kernel's form of the check: a packet pointer against the packet's
/// end. (Compiled for the bpf target only; `tests/wire_parity.rs` runs it.)
#[cfg(target_arch = "bpf")]
#[inline(always)]
fn fits_in_kernel(start: usize, off: usize, n: usize, end: usize) -> bool {
    start + off + n <= end
}

/// `N` bytes of packet that [`Packet::header`] proved readable.
#[derive(Clone, Copy)]
pub struct Header<'a, const N: usize> {
    p: usize,
    bytes: PhantomData<&'a [u8]>,
}

impl<const N: usize> Header<'_, N> {
    /// A value of type `T` at byte `I`, as stored in the packet (network
    /// order for multi-byte fields).
    #[inline(always)]
    fn raw<T: Copy, const I: usize>(&self) -> T {
        const { assert!(I + size_of::<T>() <= N) };
        // SAFETY: `Packet::header` checked that `p..p + N` is readable, and
        // the const assertion keeps the read inside those N bytes.
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

    /// A big-endian 32-bit field converted to host order.
    #[inline(always)]
    pub fn be32<const I: usize>(&self) -> u32 {
        u32::from_be(self.raw::<u32, I>())
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

    /// 4 bytes (an IPv4 address) in network order.
    #[inline(always)]
    pub fn bytes4<const I: usize>(&self) -> [u8; 4] {
        self.raw::<[u8; 4], I>()
    }

    /// 16 bytes (an IPv6 address) in network order.
    #[inline(always)]
    pub fn bytes16<const I: usize>(&self) -> [u8; 16] {
        self.raw::<[u8; 16], I>()
    }
}
