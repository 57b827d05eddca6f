//! The handshake engine: one state machine per TCP three-way handshake.
//!
//! The engine does no I/O and reads no clock: every call takes the time it
//! should act at, so live capture (wall clock), capture files (packet time)
//! and tests (made-up time) run the same code.
//!
//! Only a SYN without ACK, RST or FIN opens a handshake, and only if the
//! caller's admission check says a filter wants it. A handshake ends as
//! - [`Outcome::Success`] when each side has acknowledged the other's SYN;
//! - [`Outcome::Reject`] on an RST from the server that the client would
//!   accept, [`Outcome::Aborted`] on one from the client that the server
//!   would accept (both count as `reject` on the socket);
//! - [`Outcome::Unreach`] (with ICMP enabled) on an ICMP/ICMPv6
//!   destination-unreachable that makes an endpoint give up (Linux's
//!   tcp_v4_err, tcp_v6_err and tcp_req_err decide which);
//! - [`Outcome::Timeout`] when no acceptable segment arrived for the timeout.
//!
//! Time only moves forward: an event stamped before the engine's clock (a
//! record delivered out of order beyond the caller's reordering window) is
//! handled at the engine's clock, so that the expiry lists stay in deadline
//! order and a handshake times out when its deadline passes, whatever the
//! order records came in.
//!
//! Segments the endpoints themselves would discard (an RST or ACK that does
//! not acknowledge the SYN, a SYN/ACK for another ISN: RFC 9293 section
//! 3.10.7.3) change nothing, so a forged or stale packet cannot decide an
//! outcome. Finished handshakes stay in the table as `Closed` for a while, so
//! that a retransmission of their SYN does not count a second one.

mod config;
mod hint;
mod icmp;
mod outcome;
pub mod reorder;
mod session;
mod table;

use tcpeek_common::{tcp_flags, Event, KIND_ICMP_UNREACH, KIND_TCP};

use crate::event::{endpoints, Connection};
pub use config::EngineConfig;
use hint::Hint;
pub use outcome::{Finished, Outcome};
use session::{Key, Opening, Session, State};
use table::{ListId, Table};

/// Whether a segment with these flags opens a handshake: a SYN without
/// ACK, RST or FIN (Linux discards SYN with FIN or RST in LISTEN and
/// SYN-SENT, tcp_rcv_state_process). One mask test: it runs for every SYN.
fn opens(flags: u8) -> bool {
    flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN) == tcp_flags::SYN
}

/// The engine. See the module documentation.
pub struct Engine {
    cfg: EngineConfig,
    table: Table,
    overflow: u64,
    /// No session can expire before this time: a lower bound of the
    /// deadlines at the heads of the two lists, so that [`Engine::expire`]
    /// costs one comparison for most events.
    next_expiry: u64,
    /// Sessions waiting for an ACK (see [`Hint`]).
    awaiting_ack: Hint,
    /// The engine's clock: the latest time it was given (see the module
    /// documentation).
    now: u64,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            table: Table::new(cfg.max_sessions),
            cfg,
            overflow: 0,
            next_expiry: u64::MAX,
            awaiting_ack: Hint::new(),
            now: 0,
        }
    }

    /// Handshakes in progress.
    pub fn pending(&self) -> usize {
        self.table.live_len()
    }

    /// Most handshakes tracked at once.
    pub fn capacity(&self) -> usize {
        self.cfg.max_sessions
    }

    /// Opening SYNs not tracked because the table was full.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Heap bytes held by the session table.
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// Finished handshakes forgotten before their linger time to make room
    /// (a late retransmission of their SYN then looks like a new
    /// handshake).
    pub fn forgotten(&self) -> u64 {
        self.table.forgotten()
    }

    /// Finished handshakes remembered for retransmission detection.
    pub fn lingering(&self) -> usize {
        self.table.closed_len()
    }

    /// Processes one event. `admit` is asked once per new handshake whether
    /// to track it: `None` refuses it, `Some(tag)` tracks it and hands the
    /// tag back in its [`Finished`] record (the caller's own use: the
    /// daemon keeps the matching filters there); finished handshakes are
    /// appended to `out`.
    ///
    /// Returns the tag of a handshake this event started tracking, if it
    /// did: one admitted and given room in the table (its client is the
    /// event's source). Every such handshake later ends in exactly one
    /// [`Finished`] record, or is still pending.
    pub fn process(
        &mut self,
        ev: &Event,
        admit: impl FnOnce(&Connection) -> Option<u32>,
        out: &mut Vec<Finished>,
    ) -> Option<u32> {
        match ev.kind {
            KIND_TCP => self.segment(ev, admit, out),
            KIND_ICMP_UNREACH if self.cfg.icmp => {
                self.unreachable(ev, out);
                None
            }
            _ => None,
        }
    }

    /// Replaces the admission tag of every handshake in progress with
    /// `retag(tag, connection)` (a new filter set: the daemon's reload).
    /// `retag` also gets the interface its opening SYN was captured on.
    pub fn retag(&mut self, mut retag: impl FnMut(u32, &Connection, u8) -> u32) {
        self.table.for_each_mut(ListId::Live, |s| {
            s.tag = retag(s.tag, &s.connection(), s.iface);
        });
    }

    /// Ends handshakes idle since before `now - timeout` and forgets
    /// finished ones older than the linger time.
    pub fn expire(&mut self, now: u64, out: &mut Vec<Finished>) {
        self.now = self.now.max(now);
        if now < self.next_expiry {
            return;
        }
        self.next_expiry = u64::MAX;
        while let Some(i) = self.table.oldest(ListId::Live) {
            let s = self.table.get(i);
            let deadline = s.last_ns.saturating_add(self.cfg.timeout_ns);
            if deadline > now {
                self.next_expiry = deadline;
                break;
            }
            let outcome = if s.icmp_dropped {
                Outcome::Unreach
            } else {
                Outcome::Timeout
            };
            self.finish(i, outcome, deadline, out);
        }
        while let Some(i) = self.table.oldest(ListId::Closed) {
            let forget = self.table.get(i).last_ns.saturating_add(self.cfg.linger_ns);
            if forget > now {
                self.next_expiry = self.next_expiry.min(forget);
                break;
            }
            self.table.remove(i);
        }
    }

    /// Marks activity on slot `i`, moving it to the tail of `list`.
    fn touch(&mut self, i: u32, list: ListId) {
        self.table.touch(i, list);
        self.schedule(i, list);
    }

    /// Keeps [`Engine::next_expiry`] a lower bound after slot `i` was
    /// touched on `list`.
    fn schedule(&mut self, i: u32, list: ListId) {
        let wait = match list {
            ListId::Live => self.cfg.timeout_ns,
            ListId::Closed => self.cfg.linger_ns,
        };
        let at = self.table.get(i).last_ns.saturating_add(wait);
        self.next_expiry = self.next_expiry.min(at);
    }

    fn segment(
        &mut self,
        ev: &Event,
        admit: impl FnOnce(&Connection) -> Option<u32>,
        out: &mut Vec<Finished>,
    ) -> Option<u32> {
        let flags = ev.tcp_flags;
        let syn = flags & tcp_flags::SYN != 0;
        let ack = flags & tcp_flags::ACK != 0;
        let rst = flags & tcp_flags::RST != 0;
        let fin = flags & tcp_flags::FIN != 0;
        // Most segments carry data of established connections. Without SYN
        // or RST a segment matters only to a handshake waiting for its ACK,
        // and the hint rules that out without touching the table.
        if !syn && !rst && !self.awaiting_ack.maybe(Hint::of_event(ev)) {
            return None;
        }
        let (src, dst) = endpoints(ev);
        let (key, src_is_lo) = Key::of(src, dst);
        let clamped;
        let ev = if ev.ts_ns < self.now {
            clamped = Event {
                ts_ns: self.now,
                ..*ev
            };
            &clamped
        } else {
            self.now = ev.ts_ns;
            ev
        };
        let now = self.now;

        let Some(i) = self.table.find(&key) else {
            if !opens(flags) {
                return None;
            }
            return self.open(
                Connection {
                    client: src,
                    server: dst,
                },
                ev,
                admit,
            );
        };

        let from_client = self.table.get(i).client_is_lo == src_is_lo;
        if self.table.list_of(i) == ListId::Closed {
            if !opens(flags) {
                return None;
            }
            return self.lingering_syn(
                i,
                ev,
                from_client,
                Connection {
                    client: src,
                    server: dst,
                },
                admit,
            );
        }

        if rst {
            if self.rst_acceptable(i, ev, from_client) {
                let outcome = if from_client {
                    Outcome::Aborted
                } else {
                    Outcome::Reject
                };
                self.finish(i, outcome, now, out);
            }
            return None;
        }
        match (syn, ack) {
            (true, false) if !fin => return self.syn(i, ev, from_client, admit, out),
            (true, true) => self.syn_ack(i, ev, from_client, out),
            (false, true) => self.ack(i, ev, from_client, out),
            _ => {}
        }
        None
    }

    fn open(
        &mut self,
        conn: Connection,
        ev: &Event,
        admit: impl FnOnce(&Connection) -> Option<u32>,
    ) -> Option<u32> {
        let tag = admit(&conn)?;
        if !self.table.has_room() {
            self.overflow += 1;
            return None;
        }
        let opening = Opening::new(ev.seq, u32::from(ev.payload_len));
        let mut session = Session::new(conn, opening, ev.ts_ns, tag);
        session.iface = ev.iface;
        let i = self.table.insert(session);
        self.schedule(i, ListId::Live);
        Some(tag)
    }

    /// An opening SYN for a handshake that already finished: a
    /// retransmission of the same SYN is absorbed (and keeps the memory
    /// fresh); a SYN with a new ISN is a new connection on the same ports.
    /// (The caller drops every other segment of a finished handshake.)
    fn lingering_syn(
        &mut self,
        i: u32,
        ev: &Event,
        from_client: bool,
        conn: Connection,
        admit: impl FnOnce(&Connection) -> Option<u32>,
    ) -> Option<u32> {
        let s = self.table.get_mut(i);
        // Either side's SYN again: the server's too after a simultaneous
        // open.
        let same_syn = if from_client {
            s.client.isn == ev.seq
        } else {
            s.server_sent_syn && s.server.isn == ev.seq
        };
        if same_syn {
            s.refresh(ev.ts_ns);
            self.touch(i, ListId::Closed);
            return None;
        }
        self.table.remove(i);
        self.open(conn, ev, admit)
    }

    fn syn(
        &mut self,
        i: u32,
        ev: &Event,
        from_client: bool,
        admit: impl FnOnce(&Connection) -> Option<u32>,
        out: &mut Vec<Finished>,
    ) -> Option<u32> {
        let s = self.table.get_mut(i);
        if from_client {
            if ev.seq != s.client.isn {
                // Another ISN on the same ports while this handshake is
                // open: a new connection on a reused port (behind NAT, or
                // a client that gave up and reconnected; a Linux client
                // abandons a connect() in SYN-SENT without sending
                // anything, RFC 9293 section 3.10.4).
                if s.state == State::SynSent {
                    // Nobody answered the first: its client gave up on
                    // it. It ends as a timeout now, and the new SYN is
                    // tracked as a handshake of its own.
                    let conn = s.connection();
                    self.finish(i, Outcome::Timeout, ev.ts_ns, out);
                    self.table.remove(i);
                    return self.open(conn, ev, admit);
                }
                // Otherwise the server holds the first handshake (it sent
                // its SYN/ACK) and answers the new SYN with a challenge
                // ACK (RFC 5961 section 4; Linux's tcp_check_req drops an
                // out-of-window SYN and sends an ACK): the new client's
                // RST to it ends the first handshake, and its next SYN
                // opens the second.
                return None;
            }
            s.dupsyn = s.dupsyn.saturating_add(1);
        } else {
            match s.state {
                State::SynSent => {
                    // The server connects to the client too: simultaneous
                    // open.
                    s.server = Opening::new(ev.seq, u32::from(ev.payload_len));
                    s.state = State::SimultaneousOpen;
                    s.server_sent_syn = true;
                    self.awaiting_ack.add(Hint::of_key(&s.key));
                }
                State::SimultaneousOpen if ev.seq == s.server.isn => {
                    s.dupsyn = s.dupsyn.saturating_add(1);
                }
                _ => return None,
            }
        }
        s.refresh(ev.ts_ns);
        self.touch(i, ListId::Live);
        None
    }

    fn syn_ack(&mut self, i: u32, ev: &Event, from_client: bool, out: &mut Vec<Finished>) {
        let s = self.table.get_mut(i);
        if from_client {
            // Only in a simultaneous open does the client send a SYN/ACK:
            // its SYN again, acknowledging the server's.
            if s.state != State::SimultaneousOpen
                || ev.seq != s.client.isn
                || !s.server.acked_by(ev.ack)
            {
                return;
            }
            if s.client_acked {
                s.dupsynack = s.dupsynack.saturating_add(1);
            }
            s.client_acked = true;
        } else {
            if !s.client.acked_by(ev.ack) {
                return;
            }
            match s.state {
                State::SynSent => {
                    s.server = Opening::new(ev.seq, u32::from(ev.payload_len));
                    s.state = State::SynReceived;
                    self.awaiting_ack.add(Hint::of_key(&s.key));
                }
                State::SynReceived | State::SimultaneousOpen if ev.seq == s.server.isn => {
                    if s.server_acked {
                        s.dupsynack = s.dupsynack.saturating_add(1);
                    }
                }
                State::SynReceived => {
                    // A SYN/ACK with a new ISN, answering a retransmitted
                    // SYN: a SYN cookie from the next time slot, or a
                    // listener that dropped and rebuilt its request. The
                    // client may complete with either (Linux checks a
                    // cookie against the current and the previous slot,
                    // cookie_v4_check): remember both. It is the server
                    // sending its SYN/ACK again, so it counts as such.
                    s.new_server_isn(Opening::new(ev.seq, u32::from(ev.payload_len)));
                    if s.server_acked {
                        s.dupsynack = s.dupsynack.saturating_add(1);
                    }
                }
                _ => return,
            }
            s.server_acknowledged(ev.ack, ev.ts_ns);
        }
        self.acknowledged(i, ev.ts_ns, out);
    }

    fn ack(&mut self, i: u32, ev: &Event, from_client: bool, out: &mut Vec<Finished>) {
        let s = self.table.get_mut(i);
        if !s.server_synced() {
            return;
        }
        if from_client {
            if !s.server_acked_by(ev.ack) || !s.client.next_seq(ev.seq) {
                return;
            }
            s.client_acked = true;
        } else {
            // Data the server sends before the handshake completes (TCP
            // Fast Open, RFC 7413 section 4.2.2): the completing ACK may
            // acknowledge it. Only data contiguous with what the server
            // sent counts.
            let extended = s.server.extend(ev.seq, u32::from(ev.payload_len));
            if !s.client.acked_by(ev.ack) || !s.server.next_seq(ev.seq) {
                return;
            }
            if s.server_acked {
                // Already known: only the data matters (and refreshes).
                if extended {
                    s.refresh(ev.ts_ns);
                    self.touch(i, ListId::Live);
                }
                return;
            }
            s.server_acknowledged(ev.ack, ev.ts_ns);
        }
        self.acknowledged(i, ev.ts_ns, out);
    }

    /// After an acceptable acknowledgement at `now`: the handshake succeeds
    /// once each side has acknowledged the other's SYN.
    fn acknowledged(&mut self, i: u32, now: u64, out: &mut Vec<Finished>) {
        let s = self.table.get_mut(i);
        s.refresh(now);
        let done = s.server_acked && s.client_acked;
        self.touch(i, ListId::Live);
        if done {
            self.finish(i, Outcome::Success, now, out);
        }
    }

    /// RFC 9293 section 3.10.7.3 (SYN-SENT): an RST is acceptable if its ACK
    /// acknowledges our SYN; section 3.10.7.4 (other states): if its
    /// sequence number is the next one expected from the sender. Only the
    /// client can be in SYN-SENT (it may not have received the SYN/ACK the
    /// observer saw); the server is in LISTEN or SYN-RECEIVED, where only
    /// the sequence number counts (Linux: tcp_check_req). The server's
    /// RCV.NXT is what its SYN/ACK acknowledged: an RST inside Fast Open
    /// data the server already took is below it and is dropped.
    fn rst_acceptable(&self, i: u32, ev: &Event, from_client: bool) -> bool {
        let s = self.table.get(i);
        if from_client {
            let from = if s.server_acked {
                u32::from(s.client_rcv_off)
            } else {
                0
            };
            s.client.seq_from(ev.seq, from)
        } else {
            let ack_ok = ev.tcp_flags & tcp_flags::ACK != 0 && s.client.acked_by(ev.ack);
            ack_ok || (s.server_synced() && s.server.next_seq(ev.seq))
        }
    }

    fn finish(&mut self, i: u32, outcome: Outcome, end_ns: u64, out: &mut Vec<Finished>) {
        let s = self.table.get_mut(i);
        out.push(Finished {
            conn: s.connection(),
            outcome,
            start_ns: s.start_ns,
            end_ns: end_ns.max(s.start_ns),
            dupsyn: u32::from(s.dupsyn),
            dupsynack: u32::from(s.dupsynack),
            tag: s.tag,
            iface: s.iface,
            synack_ns: s.synack_ns(),
            icmp_code: (outcome == Outcome::Unreach).then_some(s.icmp_code),
        });
        if s.server_synced() {
            self.awaiting_ack.remove(Hint::of_key(&s.key));
        }
        s.state = State::Closed;
        s.last_ns = s.last_ns.max(end_ns);
        self.touch(i, ListId::Closed);
    }
}

#[cfg(test)]
mod tests;
