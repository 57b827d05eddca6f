//! What to report: SYN, SYN/ACK, RST, the ACK that completes a handshake,
//! data the server sends before that ACK (TCP Fast Open), and ICMP/ICMPv6
//! destination-unreachable errors quoting a TCP segment.
//!
//! Hot path: a TCP segment without SYN or RST (nearly every packet of a busy
//! server) costs the header walk plus, if ACK is set, one look at the hint
//! array; only if its slot may hold a waiting handshake, one hash lookup of
//! its tuple (and, for a segment with data whose own tuple is not there, one
//! of the reversed tuple). Everything else (not TCP/ICMP) is passed after
//! the walk; truncated packets are counted.

use tcpeek_common::{
    tcp_flags::{ACK, RST, SYN},
    Event, FAMILY_V4, FAMILY_V6, KIND_ICMP_UNREACH, KIND_TCP,
};

use aya_ebpf::maps::LruHashMap;

use crate::{
    headers::{self, Ip, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP},
    maps::{
        count, emit, fold64, hint_insert, hint_maybe_pending, hint_remove, hint_slot, KeyV4, KeyV6,
        Pending, TCPEEK_HS_V4, TCPEEK_HS_V6,
    },
    packet::{Header, Packet, Skip},
};

/// ICMP type 3, destination unreachable (RFC 792).
const ICMP_DEST_UNREACH: u8 = 3;
/// ICMPv6 type 1, destination unreachable (RFC 4443 section 3.1).
const ICMPV6_DEST_UNREACH: u8 = 1;
/// Size of the ICMP/ICMPv6 header before the quoted packet.
const ICMP_HLEN: usize = 8;

/// Classifies one packet seen in direction `dir`.
#[inline(always)]
pub fn classify(pkt: &Packet, dir: u8) -> Result<(), Skip> {
    let ip = headers::l3(pkt)?;
    match (ip.proto, ip.v6) {
        (IPPROTO_TCP, _) => tcp(pkt, &ip, dir),
        (IPPROTO_ICMP, false) | (IPPROTO_ICMPV6, true) => icmp_unreach(pkt, &ip, dir),
        _ => Err(Skip::Pass),
    }
}

#[inline(always)]
fn tcp(pkt: &Packet, ip: &Ip, dir: u8) -> Result<(), Skip> {
    let th = pkt.header::<20>(ip.l4)?;
    let flags = th.u8::<13>();
    let doff = ((th.u8::<12>() >> 4) as u32) * 4;
    if doff < 20 {
        return Err(Skip::Pass);
    }
    if flags & (SYN | RST) == 0 {
        if flags & ACK == 0 {
            return Err(Skip::Pass);
        }
        return final_ack(pkt, ip, &th, doff, dir);
    }

    let ev = tcp_event(pkt, ip, &th, doff, dir)?;
    // An RST does not forget a remembered handshake: only userspace knows
    // whether the endpoint accepts it (RFC 9293 3.10.7), and if it does not,
    // the completing ACK must still come through. The LRU map ages the
    // entry out otherwise.
    if flags & (RST | ACK) == ACK {
        remember(pkt, ip, &th, ev.payload_len)?;
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
fn final_ack(pkt: &Packet, ip: &Ip, th: &Header<20>, doff: u32, dir: u8) -> Result<(), Skip> {
    let ports = th.n32::<0>();
    let forward = if ip.v6 {
        let h = pkt.header::<40>(ip.l3)?;
        // Low 64 bits of source (8..24) and destination (24..40) address.
        let slot = hint_slot(fold64(h.n64::<16>() ^ h.n64::<32>()), ports);
        if !hint_maybe_pending(slot) {
            return Ok(());
        }
        let key = key_v6(pkt, ip, th, false)?;
        match completes(&TCPEEK_HS_V6, &key.0, slot, th) {
            Some(forward) => forward,
            None => server_data(&TCPEEK_HS_V6, &key_v6(pkt, ip, th, true)?.0, ip, th, doff),
        }
    } else {
        let h = pkt.header::<20>(ip.l3)?;
        let slot = hint_slot(h.n32::<12>() ^ h.n32::<16>(), ports);
        if !hint_maybe_pending(slot) {
            return Ok(());
        }
        let key = key_v4(pkt, ip, th, false)?;
        match completes(&TCPEEK_HS_V4, &key.0, slot, th) {
            Some(forward) => forward,
            None => server_data(&TCPEEK_HS_V4, &key_v4(pkt, ip, th, true)?.0, ip, th, doff),
        }
    };
    if forward {
        emit(tcp_event(pkt, ip, th, doff, dir)?);
    }
    Ok(())
}

/// The client's side of [`final_ack`]: `None` if `key` (the segment's own
/// tuple) has no entry, else whether the segment acknowledges its SYN/ACK.
#[inline(always)]
fn completes<K>(map: &LruHashMap<K, Pending>, key: &K, slot: u32, th: &Header<20>) -> Option<bool> {
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
/// widens the entry's span, so that this ACK is forwarded, and the segment
/// itself is forwarded, as userspace applies the same rule to it. Pure
/// ACKs from the server cost no lookup.
#[inline(always)]
fn server_data<K>(
    map: &LruHashMap<K, Pending>,
    rkey: &K,
    ip: &Ip,
    th: &Header<20>,
    doff: u32,
) -> bool {
    let len = ip.l4_len.saturating_sub(doff);
    if len == 0 {
        return false;
    }
    let Some(p) = map.get_ptr_mut(rkey) else {
        return false;
    };
    // SAFETY: a valid map value. A racing update of the same entry (the
    // SYN/ACK retransmitted at this very moment) can at worst lose the
    // widening, and then only the engine's rule decides, on what it sees.
    unsafe { (*p).server_data(th.be32::<4>(), len) }
}

/// SYN/ACK: remember the reversed tuple and what the completing ACK looks
/// like (RFC 9293 3.5). Another SYN/ACK of the tuple (the entry exists)
/// updates it ([`Pending::then`]) without counting it twice.
#[inline(always)]
fn remember(pkt: &Packet, ip: &Ip, th: &Header<20>, payload_len: u16) -> Result<(), Skip> {
    let pending = Pending::new(th.be32::<4>(), payload_len as u32, th.be32::<8>());
    if ip.v6 {
        let key = key_v6(pkt, ip, th, true)?;
        remember_in(&TCPEEK_HS_V6, &key.0, key.0.slot(), pending);
    } else {
        let key = key_v4(pkt, ip, th, true)?;
        remember_in(&TCPEEK_HS_V4, &key.0, key.0.slot(), pending);
    }
    Ok(())
}

#[inline(always)]
fn remember_in<K>(map: &LruHashMap<K, Pending>, key: &K, slot: u32, pending: Pending) {
    const BPF_NOEXIST: u64 = 1;
    const EEXIST: i32 = 17;
    if let Some(p) = map.get_ptr_mut(key) {
        // SAFETY: a valid map value; see `server_data` on races.
        unsafe { *p = (*p).then(pending) };
        hint_insert(slot, false);
        return;
    }
    match map.insert(key, &pending, BPF_NOEXIST) {
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

#[inline(always)]
fn key_v4(pkt: &Packet, ip: &Ip, th: &Header<20>, reversed: bool) -> Result<Stacked<KeyV4>, Skip> {
    let h = pkt.header::<20>(ip.l3)?;
    let (s, d, ports) = (h.n32::<12>(), h.n32::<16>(), th.n32::<0>());
    Ok(Stacked(if reversed {
        // The two ports swap places whatever the host byte order.
        KeyV4 {
            saddr: d,
            daddr: s,
            ports: ports.rotate_left(16),
        }
    } else {
        KeyV4 {
            saddr: s,
            daddr: d,
            ports,
        }
    }))
}

#[inline(always)]
fn key_v6(pkt: &Packet, ip: &Ip, th: &Header<20>, reversed: bool) -> Result<Stacked<KeyV6>, Skip> {
    let h = pkt.header::<40>(ip.l3)?;
    let (s, d, ports) = (h.bytes16::<8>(), h.bytes16::<24>(), th.n32::<0>());
    Ok(Stacked(if reversed {
        KeyV6 {
            saddr: d,
            daddr: s,
            ports: ports.rotate_left(16),
        }
    } else {
        KeyV6 {
            saddr: s,
            daddr: d,
            ports,
        }
    }))
}

/// An event with the addresses of the IP header at `ip.l3` and `family`.
#[inline(always)]
fn ip_event(pkt: &Packet, ip: &Ip, dir: u8) -> Result<Event, Skip> {
    let mut ev = Event::ZERO;
    if ip.v6 {
        let h = pkt.header::<40>(ip.l3)?;
        ev.saddr = h.bytes16::<8>();
        ev.daddr = h.bytes16::<24>();
        ev.family = FAMILY_V6;
    } else {
        let h = pkt.header::<20>(ip.l3)?;
        ev.saddr[..4].copy_from_slice(&h.n32::<12>().to_ne_bytes());
        ev.daddr[..4].copy_from_slice(&h.n32::<16>().to_ne_bytes());
        ev.family = FAMILY_V4;
    }
    ev.direction = dir;
    Ok(ev)
}

#[inline(always)]
fn tcp_event(pkt: &Packet, ip: &Ip, th: &Header<20>, doff: u32, dir: u8) -> Result<Event, Skip> {
    let mut ev = ip_event(pkt, ip, dir)?;
    ev.kind = KIND_TCP;
    ev.sport = th.be16::<0>();
    ev.dport = th.be16::<2>();
    ev.seq = th.be32::<4>();
    ev.ack = th.be32::<8>();
    ev.tcp_flags = th.u8::<13>();
    let payload = ip.l4_len.saturating_sub(doff);
    ev.payload_len = if payload > u16::MAX as u32 {
        u16::MAX
    } else {
        payload as u16
    };
    Ok(ev)
}

/// ICMP type 3 / ICMPv6 type 1 quoting an IP header and at least the first
/// 8 bytes of a TCP header (RFC 792 only guarantees those: ports and seq).
#[inline(always)]
fn icmp_unreach(pkt: &Packet, ip: &Ip, dir: u8) -> Result<(), Skip> {
    let h = pkt.header::<ICMP_HLEN>(ip.l4)?;
    let (ty, code) = (h.u8::<0>(), h.u8::<1>());
    let quoted = if ip.v6 {
        if ty != ICMPV6_DEST_UNREACH {
            return Err(Skip::Pass);
        }
        headers::ipv6(pkt, ip.l4 + ICMP_HLEN)?
    } else {
        if ty != ICMP_DEST_UNREACH {
            return Err(Skip::Pass);
        }
        headers::ipv4(pkt, ip.l4 + ICMP_HLEN)?
    };
    if quoted.proto != IPPROTO_TCP {
        return Err(Skip::Pass);
    }
    let th = pkt.header::<8>(quoted.l4)?;
    // The flags byte is at offset 13: only there if the router quoted more
    // than RFC 792's minimum (Linux quotes as much as fits).
    let flags = match pkt.header::<14>(quoted.l4) {
        Ok(t) => t.u8::<13>(),
        Err(_) => 0,
    };
    let mut ev = ip_event(pkt, &quoted, dir)?;
    ev.kind = KIND_ICMP_UNREACH;
    ev.sport = th.be16::<0>();
    ev.dport = th.be16::<2>();
    ev.seq = th.be32::<4>();
    ev.tcp_flags = flags;
    ev.icmp_type = ty;
    ev.icmp_code = code;
    emit(ev);
    Ok(())
}
