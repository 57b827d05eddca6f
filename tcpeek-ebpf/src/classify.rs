//! What to report: SYN, SYN/ACK, RST, the ACK that completes a handshake,
//! data the server sends before that ACK (TCP Fast Open), and ICMP/ICMPv6
//! destination-unreachable errors quoting a TCP segment.
//!
//! The packet walk is the shared one ([`tcpeek_common::wire`]), which the
//! libpcap decoder also runs; this module adds what only the kernel does:
//! remembering SYN/ACKs so that, of all the ACK segments, only those that
//! complete a handshake reach userspace.
//!
//! Hot path: a TCP segment without SYN or RST (nearly every packet of a busy
//! server) costs the walk plus, if ACK is set, one look at the hint array;
//! only if its slot may hold a waiting handshake, one hash lookup of its
//! tuple (and, for a segment with data whose own tuple is not there, one of
//! the reversed tuple). IPv4 and IPv6 take the same path, generic over
//! [`Family`].

use aya_ebpf::maps::LruHashMap;
use tcpeek_common::{
    maps::{slot_v4, slot_v6, KeyV4, KeyV6, Pending},
    tcp_flags::{ACK, RST, SYN},
    wire::{self, Found, Header, Ip, Packet, Stop, Tcp, IPV4_MIN_HLEN, IPV6_HLEN, TCP_VERDICT_LEN},
};

use crate::maps::{
    count, emit, hint_insert, hint_maybe_pending, hint_remove, TCPEEK_HS_V4, TCPEEK_HS_V6,
};

/// Classifies one packet of `wire_len` bytes, of which `pkt` is the
/// readable part, seen in direction `dir` on an interface whose packets
/// begin as `framing` says.
#[inline(always)]
pub fn classify(pkt: &Packet<'_>, wire_len: usize, framing: u32, dir: u8) -> Result<(), Stop> {
    match wire::walk(pkt, framing, wire_len)? {
        Found::Tcp(t) if t.ip.v6 => tcp::<V6>(pkt, &t, dir),
        Found::Tcp(t) => tcp::<V4>(pkt, &t, dir),
        Found::Unreachable(u) => {
            emit(u.event(pkt, dir)?);
            Ok(())
        }
    }
}

/// What differs between IPv4 and IPv6: the map and its key.
trait Family {
    type Key: Copy + 'static;
    fn map() -> &'static LruHashMap<Self::Key, Pending>;
    /// The hint slot of the segment's tuple, from the IP header.
    fn slot(pkt: &Packet<'_>, ip: &Ip, ports: u32) -> Result<u32, Stop>;
    /// The segment's tuple.
    fn key(pkt: &Packet<'_>, ip: &Ip, ports: u32) -> Result<Stacked<Self::Key>, Stop>;
    fn reversed(key: &Self::Key) -> Stacked<Self::Key>;
    fn key_slot(key: &Self::Key) -> u32;
}

struct V4;
struct V6;

impl Family for V4 {
    type Key = KeyV4;

    #[inline(always)]
    fn map() -> &'static LruHashMap<KeyV4, Pending> {
        &TCPEEK_HS_V4
    }

    #[inline(always)]
    fn slot(pkt: &Packet<'_>, ip: &Ip, ports: u32) -> Result<u32, Stop> {
        let h = at::<IPV4_MIN_HLEN>(pkt, ip.l3)?;
        Ok(slot_v4(h.n32::<12>(), h.n32::<16>(), ports))
    }

    #[inline(always)]
    fn key(pkt: &Packet<'_>, ip: &Ip, ports: u32) -> Result<Stacked<KeyV4>, Stop> {
        let h = at::<IPV4_MIN_HLEN>(pkt, ip.l3)?;
        Ok(Stacked(KeyV4 {
            saddr: h.n32::<12>(),
            daddr: h.n32::<16>(),
            ports,
        }))
    }

    #[inline(always)]
    fn reversed(key: &KeyV4) -> Stacked<KeyV4> {
        Stacked(key.reversed())
    }

    #[inline(always)]
    fn key_slot(key: &KeyV4) -> u32 {
        key.slot()
    }
}

impl Family for V6 {
    type Key = KeyV6;

    #[inline(always)]
    fn map() -> &'static LruHashMap<KeyV6, Pending> {
        &TCPEEK_HS_V6
    }

    #[inline(always)]
    fn slot(pkt: &Packet<'_>, ip: &Ip, ports: u32) -> Result<u32, Stop> {
        let h = at::<IPV6_HLEN>(pkt, ip.l3)?;
        // Low 64 bits of source (8..24) and destination (24..40) address.
        Ok(slot_v6(h.n64::<16>(), h.n64::<32>(), ports))
    }

    #[inline(always)]
    fn key(pkt: &Packet<'_>, ip: &Ip, ports: u32) -> Result<Stacked<KeyV6>, Stop> {
        let h = at::<IPV6_HLEN>(pkt, ip.l3)?;
        Ok(Stacked(KeyV6 {
            saddr: h.bytes16::<8>(),
            daddr: h.bytes16::<24>(),
            ports,
        }))
    }

    #[inline(always)]
    fn reversed(key: &KeyV6) -> Stacked<KeyV6> {
        Stacked(key.reversed())
    }

    #[inline(always)]
    fn key_slot(key: &KeyV6) -> u32 {
        key.slot()
    }
}

/// `N` bytes at `off` (already read once by the walk: never short).
#[inline(always)]
fn at<'a, const N: usize>(pkt: &Packet<'a>, off: usize) -> Result<Header<'a, N>, Stop> {
    pkt.header::<N>(off).map_err(|u| Stop::Short {
        layer: wire::Layer::Ip,
        needed: N,
        available: u.available,
    })
}

#[inline(always)]
fn tcp<F: Family>(pkt: &Packet<'_>, t: &Tcp<'_>, dir: u8) -> Result<(), Stop> {
    let flags = t.flags();
    if flags & (SYN | RST) == 0 {
        if flags & ACK == 0 {
            return Ok(());
        }
        return final_ack::<F>(pkt, t, dir);
    }
    let ev = t.event(pkt, dir)?;
    // An RST does not forget a remembered handshake: only userspace knows
    // whether the endpoint accepts it (RFC 9293 3.10.7), and if it does not,
    // the completing ACK must still come through. The LRU map ages the
    // entry out otherwise.
    if flags & (RST | ACK) == ACK {
        let pending = Pending::new(t.th.be32::<4>(), ev.payload_len as u32, t.th.be32::<8>());
        let key = F::reversed(&F::key(pkt, &t.ip, t.th.n32::<0>())?.0);
        remember(F::map(), &key.0, F::key_slot(&key.0), pending);
    }
    emit(ev);
    Ok(())
}

/// An ACK segment (SYN and RST clear): reported only if it acknowledges a
/// remembered SYN/ACK, or if it is the server's data that a remembered
/// handshake's completing ACK may acknowledge ([`server_data`]). Data on it
/// is fine (RFC 9293 3.5 allows the third segment to carry data). The entry
/// is forgotten only when the segment also starts where the client's next
/// segment must (a forged or stale ACK with the right acknowledgement
/// number is reported, and judged by userspace, without hiding the real
/// one). The hint array answers "certainly not" for nearly every segment
/// without touching the hash maps.
#[inline(always)]
fn final_ack<F: Family>(pkt: &Packet<'_>, t: &Tcp<'_>, dir: u8) -> Result<(), Stop> {
    let ports = t.th.n32::<0>();
    let slot = F::slot(pkt, &t.ip, ports)?;
    if !hint_maybe_pending(slot) {
        return Ok(());
    }
    let key = F::key(pkt, &t.ip, ports)?;
    let forward = match completes(F::map(), &key.0, slot, &t.th) {
        Some(forward) => forward,
        None => server_data(F::map(), &F::reversed(&key.0).0, t),
    };
    if forward {
        emit(t.event(pkt, dir)?);
    }
    Ok(())
}

/// The client's side of [`final_ack`]: `None` if `key` (the segment's own
/// tuple) has no entry, else whether the segment acknowledges its SYN/ACK.
#[inline(always)]
fn completes<K>(
    map: &LruHashMap<K, Pending>,
    key: &K,
    slot: u32,
    th: &Header<'_, TCP_VERDICT_LEN>,
) -> Option<bool> {
    let (ack, seq) = (th.be32::<8>(), th.be32::<4>());
    // SAFETY: the value is plain data copied once; a concurrent delete
    // can at worst make us read a recycled entry (a missed event).
    let p = unsafe { *map.get(key)? };
    if !p.acked_by(ack) {
        return Some(false);
    }
    if p.seq == seq && map.remove(key).is_ok() {
        hint_remove(slot);
    }
    Some(true)
}

/// The server's side of [`final_ack`]: a segment whose reversed tuple
/// `rkey` is remembered, carrying data that may come before the completing
/// ACK (TCP Fast Open, RFC 7413 section 4.2: the server may send data right
/// after its SYN/ACK, and the client's ACK may acknowledge it). Such data
/// widens the entry ([`Pending::server_data`]), so that this ACK is
/// forwarded, and the segment itself is forwarded, as userspace applies the
/// same rule to it. Pure ACKs from the server cost no lookup.
#[inline(always)]
fn server_data<K>(map: &LruHashMap<K, Pending>, rkey: &K, t: &Tcp<'_>) -> bool {
    let len = t.payload_len();
    if len == 0 {
        return false;
    }
    let Some(p) = map.get_ptr_mut(rkey) else {
        return false;
    };
    // SAFETY: a valid map value. A racing update of the same entry (the
    // SYN/ACK retransmitted at this very moment) can at worst lose the
    // widening, and then only the engine's rule decides, on what it sees.
    unsafe { (*p).server_data(t.th.be32::<4>(), len) }
}

/// SYN/ACK: remember the reversed tuple and what the completing ACK looks
/// like (RFC 9293 3.5). Another SYN/ACK of the tuple (the entry exists)
/// updates it ([`Pending::then`]) without counting it twice.
#[inline(always)]
fn remember<K>(map: &LruHashMap<K, Pending>, key: &K, slot: u32, pending: Pending) {
    const BPF_NOEXIST: u64 = 1;
    const EEXIST: i32 = 17;
    if let Some(p) = map.get_ptr_mut(key) {
        // SAFETY: a valid map value; see `server_data` on races.
        unsafe { *p = (*p).then(pending) };
        hint_insert(slot, false);
        return;
    }
    match map.insert(key, pending, BPF_NOEXIST) {
        Ok(()) => hint_insert(slot, true),
        // Another CPU inserted it since the lookup (a SYN/ACK and its
        // retransmission at once): already counted.
        Err(e) if e == -EEXIST => hint_insert(slot, false),
        Err(_) => count(tcpeek_common::stat::MAP_FULL),
    }
}

/// A map key on the stack at an 8-byte boundary. The keys are 4-aligned,
/// but LLVM may fill them with 8-byte stores (the two IPv4 addresses are
/// one 8-byte load from the packet), which the verifier refuses at a
/// 4-aligned stack offset ("misaligned stack access"). The padding after
/// the key is not part of it (the maps read `size_of::<K>()` bytes).
#[repr(C, align(8))]
struct Stacked<K>(K);
