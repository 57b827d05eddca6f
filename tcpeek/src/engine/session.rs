//! One tracked handshake: its key, what each side has sent, and the
//! acceptability rules of RFC 9293 that decide which segments may end it.

use std::hash::{Hash, Hasher};

use crate::event::{Connection, Endpoint};

/// A direction-independent key: the two endpoints in a fixed order, so that
/// a segment finds its session with one lookup whichever way it travels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Key {
    pub(crate) lo: Endpoint,
    pub(crate) hi: Endpoint,
}

impl Hash for Key {
    /// Four machine words instead of the field-by-field derive (which also
    /// hashes array lengths): this runs for every captured segment.
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(*self.lo.addr.bytes()));
        h.write_u128(u128::from_ne_bytes(*self.hi.addr.bytes()));
        h.write_u64(
            u64::from(self.lo.port)
                | u64::from(self.hi.port) << 16
                | u64::from(self.lo.addr.is_v6()) << 32,
        );
    }
}

impl Key {
    /// The key of a segment from `src` to `dst`, and whether `src` is `lo`.
    pub(crate) fn of(src: Endpoint, dst: Endpoint) -> (Key, bool) {
        // Any fixed order will do; two integer compares instead of the
        // derived byte-wise one (a memcmp per segment).
        let rank = |e: &Endpoint| (u128::from_ne_bytes(*e.addr.bytes()), e.port);
        if rank(&src) <= rank(&dst) {
            (Key { lo: src, hi: dst }, true)
        } else {
            (Key { lo: dst, hi: src }, false)
        }
    }
}

/// Where a handshake stands, named after the RFC 9293 state of the side
/// that decides the next step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    /// The client's SYN was seen; the server has not answered.
    SynSent,
    /// The server answered with a SYN/ACK (the server is in SYN-RECEIVED);
    /// the client's completing ACK has not been seen.
    SynReceived,
    /// Both sides sent a SYN (simultaneous open, RFC 9293 section 3.5,
    /// figure 8); each must acknowledge the other's.
    SimultaneousOpen,
    /// Finished; kept for a while so that late retransmissions of the same
    /// SYN do not open a second session.
    Closed,
}

/// One side's opening, and what its peer may acknowledge of it: the rules
/// the kernel classifier decides with too.
pub(crate) use tcpeek_common::tcp::Opening;

/// [`Session::synack_us`] before the server acknowledged the client's SYN.
pub(crate) const NO_SYNACK: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Session {
    pub(crate) key: Key,
    /// Whether the client is `key.lo`.
    pub(crate) client_is_lo: bool,
    pub(crate) state: State,
    /// The client's SYN.
    pub(crate) client: Opening,
    /// The server's SYN (valid once the server has sent one).
    pub(crate) server: Opening,
    /// The server's previous SYN/ACK when it sent one with a new ISN (SYN
    /// cookies across a time slot, a listener that rebuilt its request):
    /// the client may have answered either. Valid if `has_server_prev`.
    /// (Kept as ISN and a 16-bit length rather than an `Option<Opening>`:
    /// it keeps a tracked handshake at 104 bytes.)
    pub(crate) server_prev_isn: u32,
    pub(crate) server_prev_len: u16,
    pub(crate) has_server_prev: bool,
    /// Offset past the client's SYN that the server's SYN/ACK acknowledged
    /// (the server's RCV.NXT), once the server has acknowledged it; at most
    /// the SYN's 16-bit payload length.
    pub(crate) client_rcv_off: u16,
    /// The server has acknowledged the client's SYN.
    pub(crate) server_acked: bool,
    /// The client has acknowledged the server's SYN.
    pub(crate) client_acked: bool,
    /// The server sent a SYN of its own (simultaneous open); kept after the
    /// handshake ends, to recognise its retransmission.
    pub(crate) server_sent_syn: bool,
    /// The listener dropped its half of the handshake on an ICMP error
    /// quoting its SYN/ACK (tcp_req_err): if nothing completes it, the
    /// handshake failed as unreachable rather than timed out.
    pub(crate) icmp_dropped: bool,
    /// The code of the ICMP error that decided or will decide an
    /// unreachable outcome (see `icmp_dropped`).
    pub(crate) icmp_code: u8,
    /// The interface its opening SYN was captured on ([`Event::iface`]):
    /// whose local addresses admitted it.
    ///
    /// [`Event::iface`]: tcpeek_common::Event::iface
    pub(crate) iface: u8,
    pub(crate) dupsyn: u16,
    pub(crate) dupsynack: u16,
    /// Time of the first SYN (ns since the epoch).
    pub(crate) start_ns: u64,
    /// When the server acknowledged the client's SYN, in microseconds after
    /// `start_ns` (saturating); [`NO_SYNACK`] until then. Microseconds in
    /// 32 bits cover 71 minutes, far beyond any handshake's phases, at the
    /// resolution the latency histograms need.
    pub(crate) synack_us: u32,
    /// The admission tag.
    pub(crate) tag: u32,
    /// Time of the last segment that moved or refreshed the handshake.
    pub(crate) last_ns: u64,
}

// What the table's memory per handshake (BENCHMARKS.md, cli's
// DEFAULT_MAX_SESSIONS) rests on: a new field is a deliberate change.
const _: () = assert!(std::mem::size_of::<Session>() == 104);

impl Session {
    pub(crate) fn new(conn: Connection, client: Opening, now: u64, tag: u32) -> Session {
        let (key, client_is_lo) = Key::of(conn.client, conn.server);
        Session {
            key,
            client_is_lo,
            state: State::SynSent,
            client,
            server: Opening::default(),
            server_prev_isn: 0,
            server_prev_len: 0,
            has_server_prev: false,
            client_rcv_off: 0,
            server_acked: false,
            client_acked: false,
            server_sent_syn: false,
            icmp_dropped: false,
            icmp_code: 0,
            iface: 0,
            dupsyn: 0,
            dupsynack: 0,
            start_ns: now,
            synack_us: NO_SYNACK,
            last_ns: now,
            tag,
        }
    }

    pub(crate) fn connection(&self) -> Connection {
        if self.client_is_lo {
            Connection {
                client: self.key.lo,
                server: self.key.hi,
            }
        } else {
            Connection {
                client: self.key.hi,
                server: self.key.lo,
            }
        }
    }

    /// Whether the server's ISN is known.
    pub(crate) fn server_synced(&self) -> bool {
        matches!(self.state, State::SynReceived | State::SimultaneousOpen)
    }

    /// Whether the client's `ack` acknowledges the server's SYN (its latest
    /// SYN/ACK or the one before).
    pub(crate) fn server_acked_by(&self, ack: u32) -> bool {
        self.server.acked_by(ack)
            || (self.has_server_prev
                && Opening::new(self.server_prev_isn, u32::from(self.server_prev_len))
                    .acked_by(ack))
    }

    /// The server sent a SYN/ACK with a new ISN: the current one becomes
    /// the previous one.
    pub(crate) fn new_server_isn(&mut self, next: Opening) {
        self.server_prev_isn = self.server.isn;
        self.server_prev_len = u16::try_from(self.server.len).unwrap_or(u16::MAX);
        self.has_server_prev = true;
        self.server = next;
    }

    /// Records what the server's acknowledgement `ack` of the client's SYN,
    /// sent at `now`, says the server's RCV.NXT is; the first one since the
    /// server last forgot the handshake marks the end of its first phase.
    pub(crate) fn server_acknowledged(&mut self, ack: u32, now: u64) {
        if !self.server_acked {
            let us = now.saturating_sub(self.start_ns) / 1000;
            self.synack_us = u32::try_from(us)
                .unwrap_or(NO_SYNACK - 1)
                .min(NO_SYNACK - 1);
        }
        self.server_acked = true;
        let off = ack.wrapping_sub(self.client.isn.wrapping_add(1));
        self.client_rcv_off = u16::try_from(off).unwrap_or(u16::MAX);
    }

    /// When the server acknowledged the client's SYN, ns since the epoch.
    pub(crate) fn synack_ns(&self) -> Option<u64> {
        (self.synack_us != NO_SYNACK).then(|| self.start_ns + u64::from(self.synack_us) * 1000)
    }

    pub(crate) fn refresh(&mut self, now: u64) {
        self.last_ns = self.last_ns.max(now);
    }
}
