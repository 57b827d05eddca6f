//! State machine tests, grouped by the state the handshake is in.

use std::net::IpAddr;

use tcpeek_common::{tcp_flags::*, Event, FAMILY_V4, FAMILY_V6, KIND_ICMP_UNREACH, KIND_TCP};

use super::*;
use crate::event::{Addr, Endpoint};

const S: u64 = 1_000_000_000;
const C_ISN: u32 = 1000;
const S_ISN: u32 = 50_000;

fn ep(ip: &str, port: u16) -> Endpoint {
    Endpoint::new(Addr::from(ip.parse::<IpAddr>().unwrap()), port)
}

fn client() -> Endpoint {
    ep("10.0.0.2", 40000)
}

fn server() -> Endpoint {
    ep("10.0.0.1", 80)
}

fn seg(t: u64, src: Endpoint, dst: Endpoint, flags: u8, seq: u32, ack: u32) -> Event {
    Event {
        ts_ns: t,
        saddr: *src.addr.bytes(),
        daddr: *dst.addr.bytes(),
        seq,
        ack,
        sport: src.port,
        dport: dst.port,
        kind: KIND_TCP,
        family: if src.addr.is_v6() {
            FAMILY_V6
        } else {
            FAMILY_V4
        },
        tcp_flags: flags,
        ..Event::ZERO
    }
}

fn c2s(t: u64, flags: u8, seq: u32, ack: u32) -> Event {
    seg(t, client(), server(), flags, seq, ack)
}

fn s2c(t: u64, flags: u8, seq: u32, ack: u32) -> Event {
    seg(t, server(), client(), flags, seq, ack)
}

fn syn(t: u64) -> Event {
    c2s(t, SYN, C_ISN, 0)
}

fn synack(t: u64) -> Event {
    s2c(t, SYN | ACK, S_ISN, C_ISN + 1)
}

fn ack(t: u64) -> Event {
    c2s(t, ACK, C_ISN + 1, S_ISN + 1)
}

fn unreach(t: u64, quoted: &Event, code: u8) -> Event {
    Event {
        kind: KIND_ICMP_UNREACH,
        ts_ns: t,
        icmp_type: 3,
        icmp_code: code,
        ack: 0,
        ..*quoted
    }
}

struct Harness {
    engine: Engine,
    out: Vec<Finished>,
    admitted: usize,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(EngineConfig::new(30 * S, 1000, true))
    }

    fn with(cfg: EngineConfig) -> Harness {
        Harness {
            engine: Engine::new(cfg),
            out: Vec::new(),
            admitted: 0,
        }
    }

    fn feed(&mut self, evs: &[Event]) -> &mut Harness {
        for ev in evs {
            self.engine.expire(ev.ts_ns, &mut self.out);
            let admitted = &mut self.admitted;
            self.engine.process(
                ev,
                |_| {
                    *admitted += 1;
                    Some(7)
                },
                &mut self.out,
            );
        }
        self
    }

    fn expire(&mut self, now: u64) -> &mut Harness {
        self.engine.expire(now, &mut self.out);
        self
    }

    fn outcomes(&self) -> Vec<Outcome> {
        self.out.iter().map(|f| f.outcome).collect()
    }

    fn only(&self) -> Finished {
        assert_eq!(self.out.len(), 1, "finished: {:?}", self.out);
        self.out[0]
    }
}

mod no_session {
    use super::*;

    #[test]
    fn process_says_which_events_started_tracking_a_handshake() {
        let mut engine = Engine::new(EngineConfig::new(30 * S, 2, true));
        let mut out = Vec::new();
        let mut process = |ev: Event, admit: Option<u32>| engine.process(&ev, |_| admit, &mut out);
        assert_eq!(process(syn(0), Some(7)), Some(7), "a new handshake");
        assert_eq!(process(syn(S), Some(7)), None, "its retransmission");
        assert_eq!(process(synack(S + 1), Some(7)), None);
        let other = |port: u16| seg(2 * S, ep("10.0.0.2", port), server(), SYN, C_ISN, 0);
        assert_eq!(process(other(40001), None), None, "refused by admission");
        assert_eq!(process(other(40002), Some(3)), Some(3));
        assert_eq!(process(other(40003), Some(3)), None, "no room: overflow");
        assert_eq!(process(ack(3 * S), Some(7)), None, "completes, not opens");
        // The same ports with another ISN after the first finished: a new
        // handshake (the finished one left room).
        assert_eq!(process(c2s(4 * S, SYN, C_ISN + 99, 0), Some(5)), Some(5));
        // A client SYN with another ISN while the first is unanswered:
        // that one ends, this one is tracked.
        let reused = |isn: u32| seg(5 * S, ep("10.0.0.2", 40002), server(), SYN, isn, 0);
        assert_eq!(process(reused(C_ISN + 1), Some(6)), Some(6));
        assert_eq!(engine.overflow(), 1);
    }

    #[test]
    fn only_a_pure_syn_opens() {
        let mut h = Harness::new();
        h.feed(&[
            c2s(0, ACK, 1, 1),
            c2s(0, SYN | ACK, 1, 1),
            c2s(0, SYN | RST, 1, 0),
            c2s(0, SYN | FIN, 1, 0),
            c2s(0, RST, 1, 0),
        ]);
        assert_eq!(h.engine.pending(), 0);
        assert_eq!(h.admitted, 0);
        h.feed(&[c2s(0, SYN | ECE | CWR, C_ISN, 0)]);
        assert_eq!(h.engine.pending(), 1, "an ECN-setup SYN opens");
    }

    #[test]
    fn refused_by_admission_is_not_tracked() {
        let mut e = Engine::new(EngineConfig::new(30 * S, 10, false));
        let mut out = Vec::new();
        e.process(&syn(0), |_| None, &mut out);
        assert_eq!(e.pending(), 0);
        e.process(&synack(1), |_| Some(0), &mut out);
        e.process(&ack(2), |_| Some(0), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn admission_sees_client_and_server() {
        let mut e = Engine::new(EngineConfig::new(30 * S, 10, false));
        let mut seen = None;
        e.process(
            &syn(0),
            |c| {
                seen = Some(*c);
                Some(0)
            },
            &mut Vec::new(),
        );
        let c = seen.unwrap();
        assert_eq!((c.client, c.server), (client(), server()));
    }

    #[test]
    fn full_table_counts_overflow_and_keeps_working() {
        let mut h = Harness::with(EngineConfig::new(30 * S, 2, false));
        let syn_from = |port| seg(0, ep("10.0.0.2", port), server(), SYN, C_ISN, 0);
        h.feed(&[syn_from(1), syn_from(2), syn_from(3), syn_from(4)]);
        assert_eq!(h.engine.pending(), 2);
        assert_eq!(h.engine.overflow(), 2);
        // The tracked ones still complete.
        h.feed(&[
            seg(1, server(), ep("10.0.0.2", 1), SYN | ACK, S_ISN, C_ISN + 1),
            seg(2, ep("10.0.0.2", 1), server(), ACK, C_ISN + 1, S_ISN + 1),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
        // A finished session's slot is reused for a new one (its memory is
        // evicted first).
        h.feed(&[syn_from(5)]);
        assert_eq!(h.engine.pending(), 2);
        assert_eq!(h.engine.overflow(), 2);
    }

    #[test]
    fn icmp_for_unknown_session_is_ignored() {
        let mut h = Harness::new();
        h.feed(&[unreach(0, &syn(0), 3)]);
        assert!(h.out.is_empty());
    }
}

mod syn_sent {
    use super::*;

    #[test]
    fn normal_handshake_succeeds_on_the_ack() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(S / 100)]);
        assert!(h.out.is_empty());
        h.feed(&[ack(S / 50)]);
        let f = h.only();
        assert_eq!(f.outcome, Outcome::Success);
        assert_eq!((f.conn.client, f.conn.server), (client(), server()));
        assert_eq!((f.start_ns, f.end_ns), (0, S / 50));
        assert_eq!((f.dupsyn, f.dupsynack), (0, 0));
        assert_eq!(f.tag, 7, "admission's tag comes back");
        assert_eq!(h.engine.pending(), 0);
    }

    #[test]
    fn syn_retransmission_is_counted() {
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            syn(S),
            syn(3 * S),
            synack(3 * S + 1),
            ack(3 * S + 2),
        ]);
        assert_eq!(h.only().dupsyn, 2);
    }

    #[test]
    fn syn_fin_is_neither_a_retransmission_nor_a_simultaneous_open() {
        // Linux discards SYN+FIN in LISTEN and SYN-SENT alike
        // (tcp_rcv_state_process): it is no endpoint's SYN.
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            c2s(S, SYN | FIN, C_ISN, 0),
            s2c(S + 1, SYN | FIN, S_ISN, 0),
            synack(S + 2),
            ack(S + 3),
        ]);
        let f = h.only();
        assert_eq!((f.outcome, f.dupsyn), (Outcome::Success, 0));
    }

    #[test]
    fn syn_with_another_isn_supersedes_the_unanswered_one() {
        // Port reuse (behind NAT, or a client that gave up and
        // reconnected): nobody answered the first SYN and its client
        // abandoned it silently, so it ends as a timeout when the new one
        // starts, and the new one is a handshake of its own.
        let new = C_ISN + 777;
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            c2s(S, SYN, new, 0),
            s2c(S + 1, SYN | ACK, S_ISN, new + 1),
            c2s(S + 2, ACK, new + 1, S_ISN + 1),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Timeout, Outcome::Success]);
        assert_eq!((h.out[0].start_ns, h.out[0].end_ns), (0, S));
        assert_eq!((h.out[1].start_ns, h.out[1].end_ns), (S, S + 2));
        assert_eq!(h.out[1].dupsyn, 0);
        assert_eq!(h.admitted, 2, "the new SYN is admitted on its own");
        assert_eq!(h.engine.pending(), 0);
    }

    #[test]
    fn rst_ack_acknowledging_the_syn_rejects() {
        let mut h = Harness::new();
        h.feed(&[syn(0), s2c(S / 1000, RST | ACK, 0, C_ISN + 1)]);
        let f = h.only();
        assert_eq!(f.outcome, Outcome::Reject);
        assert_eq!(f.end_ns, S / 1000);
    }

    #[test]
    fn rst_with_wrong_ack_is_not_accepted() {
        let mut h = Harness::new();
        h.feed(&[syn(0), s2c(1, RST | ACK, 0, C_ISN + 5)]);
        assert!(h.out.is_empty());
        h.feed(&[synack(2), ack(3)]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn server_rst_without_ack_is_not_accepted() {
        // RFC 9293 3.10.7.3: in SYN-SENT, an RST without ACK is dropped,
        // whatever its acknowledgement field holds.
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            s2c(1, RST, 0, 0),
            s2c(2, RST, 0, C_ISN + 1),
            s2c(3, RST, 1, 0),
        ]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn client_rst_in_window_is_an_abort() {
        let mut h = Harness::new();
        h.feed(&[syn(0), c2s(1, RST, C_ISN + 1, 0)]);
        assert_eq!(h.outcomes(), [Outcome::Aborted]);
    }

    #[test]
    fn synack_for_another_isn_is_ignored() {
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            s2c(1, SYN | ACK, S_ISN, C_ISN + 2),
            c2s(2, ACK, C_ISN + 1, S_ISN + 1),
        ]);
        assert!(h.out.is_empty());
        assert_eq!(h.engine.pending(), 1);
    }

    #[test]
    fn ack_before_any_synack_is_ignored() {
        let mut h = Harness::new();
        h.feed(&[syn(0), ack(1)]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn times_out_after_the_last_segment() {
        let mut h = Harness::new();
        h.feed(&[syn(0), syn(S), syn(3 * S)]);
        h.expire(33 * S - 1);
        assert!(h.out.is_empty(), "retransmissions extend the life");
        h.expire(33 * S);
        let f = h.only();
        assert_eq!(f.outcome, Outcome::Timeout);
        assert_eq!(f.end_ns, 33 * S);
        assert_eq!(f.duration_ns(), 33 * S);
        assert_eq!(f.dupsyn, 2);
    }

    #[test]
    fn icmp_unreachable_quoting_the_syn_ends_it() {
        let mut h = Harness::new();
        h.feed(&[syn(0), unreach(S / 10, &syn(0), 3)]);
        let f = h.only();
        assert_eq!(f.outcome, Outcome::Unreach);
        assert_eq!(f.end_ns, S / 10);
    }

    #[test]
    fn icmp_unreachable_of_any_code_counts() {
        for code in [0, 1, 2, 3, 5, 13, 15] {
            let mut h = Harness::new();
            h.feed(&[syn(0), unreach(1, &syn(0), code)]);
            assert_eq!(h.outcomes(), [Outcome::Unreach], "code {code}");
        }
    }

    #[test]
    fn fragmentation_needed_does_not_end_the_handshake() {
        // Path MTU discovery, not unreachability: the SYN is retried and
        // the handshake succeeds (tcp_v4_err). Unassigned codes likewise.
        for code in [4, 16, 255] {
            let mut h = Harness::new();
            h.feed(&[
                syn(0),
                unreach(1, &syn(0), code),
                syn(S),
                synack(S + 1),
                ack(S + 2),
            ]);
            assert_eq!(h.outcomes(), [Outcome::Success], "code {code}");
        }
        // ICMPv6 has no such code among type 1's: every one counts.
        let c = ep("2001:db8::2", 40000);
        let s6 = ep("2001:db8::1", 443);
        let mut h = Harness::new();
        let syn6 = seg(0, c, s6, SYN, C_ISN, 0);
        h.feed(&[
            syn6,
            Event {
                icmp_type: 1,
                ..unreach(1, &syn6, 4)
            },
        ]);
        assert_eq!(h.outcomes(), [Outcome::Unreach]);
    }

    #[test]
    fn icmp_quoting_another_seq_is_ignored() {
        let mut h = Harness::new();
        let mut other = syn(0);
        other.seq = C_ISN + 9;
        h.feed(&[syn(0), unreach(1, &other, 3)]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn icmp_is_ignored_without_the_icmp_option() {
        let mut h = Harness::with(EngineConfig::new(30 * S, 10, false));
        h.feed(&[syn(0), unreach(1, &syn(0), 3)]);
        assert!(h.out.is_empty());
        h.expire(31 * S);
        assert_eq!(h.outcomes(), [Outcome::Timeout]);
    }

    #[test]
    fn fast_open_synack_may_acknowledge_the_data() {
        let mut h = Harness::new();
        let mut tfo = syn(0);
        tfo.payload_len = 100;
        h.feed(&[
            tfo,
            s2c(1, SYN | ACK, S_ISN, C_ISN + 101),
            c2s(2, ACK, C_ISN + 101, S_ISN + 1),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn fast_open_synack_may_decline_the_data() {
        let mut h = Harness::new();
        let mut tfo = syn(0);
        tfo.payload_len = 100;
        h.feed(&[tfo, synack(1), c2s(2, ACK | PSH, C_ISN + 1, S_ISN + 1)]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn works_the_same_for_ipv6() {
        let c = ep("2001:db8::2", 40000);
        let s = ep("2001:db8::1", 443);
        let mut h = Harness::new();
        h.feed(&[
            seg(0, c, s, SYN, C_ISN, 0),
            seg(1, s, c, SYN | ACK, S_ISN, C_ISN + 1),
            seg(2, c, s, ACK, C_ISN + 1, S_ISN + 1),
        ]);
        let f = h.only();
        assert_eq!(
            (f.outcome, f.conn.client, f.conn.server),
            (Outcome::Success, c, s)
        );
    }
}

mod syn_received {
    use super::*;

    #[test]
    fn synack_retransmission_is_counted() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), synack(S), synack(3 * S), ack(3 * S + 1)]);
        let f = h.only();
        assert_eq!((f.outcome, f.dupsyn, f.dupsynack), (Outcome::Success, 0, 2));
    }

    #[test]
    fn synack_with_a_new_isn_after_a_retransmitted_syn_completes_with_either() {
        // SYN cookies across a time slot, or a listener that rebuilt its
        // request: the client may answer the first SYN/ACK or the second.
        let new = S_ISN + 3_000_000;
        for answered in [S_ISN, new] {
            let mut h = Harness::new();
            h.feed(&[
                syn(0),
                synack(1),
                syn(S),
                s2c(S + 1, SYN | ACK, new, C_ISN + 1),
                c2s(S + 2, ACK, C_ISN + 1, answered + 1),
            ]);
            let f = h.only();
            assert_eq!(
                (f.outcome, f.dupsyn, f.dupsynack),
                (Outcome::Success, 1, 1),
                "ACK of ISN {answered}"
            );
        }
        // Still nothing else: an ACK of neither does not complete.
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            synack(1),
            s2c(2, SYN | ACK, new, C_ISN + 1),
            c2s(3, ACK, C_ISN + 1, new + 77),
        ]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn synack_for_another_client_isn_is_still_ignored() {
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            synack(1),
            s2c(2, SYN | ACK, S_ISN + 3, C_ISN + 9),
            ack(3),
        ]);
        let f = h.only();
        assert_eq!((f.outcome, f.dupsynack), (Outcome::Success, 0));
    }

    #[test]
    fn syn_with_another_isn_is_left_to_the_server() {
        // The server holds the first handshake and challenges the new SYN
        // (RFC 5961 section 4); the new client's RST to the challenge ACK
        // carries the first handshake's next sequence number and ends it
        // as reset by the client. The new client's next SYN is new.
        let new = C_ISN + 777_777;
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            synack(1),
            c2s(2, SYN, new, 0),
            s2c(3, ACK, S_ISN + 1, C_ISN + 1),
            c2s(4, RST, C_ISN + 1, 0),
            c2s(S, SYN, new, 0),
            s2c(S + 1, SYN | ACK, S_ISN + 9, new + 1),
            c2s(S + 2, ACK, new + 1, S_ISN + 10),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Aborted, Outcome::Success]);
    }

    #[test]
    fn server_data_before_the_ack_may_be_acknowledged() {
        // TCP Fast Open: the server sends data after its SYN/ACK and before
        // the handshake completes (RFC 7413 section 4.2.2); the client's
        // ACK acknowledges it.
        let mut tfo = syn(0);
        tfo.payload_len = 100;
        let mut data = s2c(2, ACK | PSH, S_ISN + 1, C_ISN + 101);
        data.payload_len = 1200;
        let mut more = s2c(3, ACK | PSH, S_ISN + 1201, C_ISN + 101);
        more.payload_len = 300;
        let mut h = Harness::new();
        h.feed(&[
            tfo,
            s2c(1, SYN | ACK, S_ISN, C_ISN + 101),
            data,
            more,
            c2s(4, ACK, C_ISN + 101, S_ISN + 1501),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
        // Not beyond what it sent, nor data that is not contiguous.
        let mut gap = s2c(3, ACK | PSH, S_ISN + 5001, C_ISN + 101);
        gap.payload_len = 300;
        let mut h = Harness::new();
        h.feed(&[
            tfo,
            s2c(1, SYN | ACK, S_ISN, C_ISN + 101),
            data,
            gap,
            c2s(4, ACK, C_ISN + 101, S_ISN + 1502),
            c2s(5, ACK, C_ISN + 101, S_ISN + 5301),
        ]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn client_rst_inside_data_the_server_took_is_below_rcv_nxt() {
        // RFC 9293 3.10.7.4: the server's RCV.NXT is past the Fast Open
        // data it acknowledged; an RST below it is not acceptable.
        let mut tfo = syn(0);
        tfo.payload_len = 100;
        let mut h = Harness::new();
        h.feed(&[
            tfo,
            s2c(1, SYN | ACK, S_ISN, C_ISN + 101),
            c2s(2, RST, C_ISN + 1, 0),
            c2s(3, RST, C_ISN + 50, 0),
        ]);
        assert!(h.out.is_empty());
        h.feed(&[c2s(4, RST, C_ISN + 101, 0)]);
        assert_eq!(h.outcomes(), [Outcome::Aborted]);
        // Data the server declined: RCV.NXT stayed at ISN+1.
        let mut h = Harness::new();
        h.feed(&[tfo, synack(1), c2s(2, RST, C_ISN + 1, 0)]);
        assert_eq!(h.outcomes(), [Outcome::Aborted]);
    }

    #[test]
    fn ack_with_wrong_ack_number_does_not_complete() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), c2s(2, ACK, C_ISN + 1, S_ISN + 7)]);
        assert!(h.out.is_empty());
        h.feed(&[ack(3)]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn ack_with_out_of_window_seq_does_not_complete() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), c2s(2, ACK, C_ISN + 5000, S_ISN + 1)]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn data_segment_completes_when_the_pure_ack_was_not_seen() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), c2s(2, ACK | PSH, C_ISN + 1, S_ISN + 1)]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn client_rst_after_synack_is_an_abort() {
        // A Happy Eyeballs loser, a connect timer that fired, a port scan:
        // the client, not the server, gave up.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), c2s(2, RST, C_ISN + 1, 0)]);
        assert_eq!(h.outcomes(), [Outcome::Aborted]);
    }

    #[test]
    fn client_rst_acknowledging_the_synack_with_a_bogus_seq_is_ignored() {
        // The server is in SYN-RECEIVED: only the sequence number makes an
        // RST acceptable there, whatever its ACK field says.
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            synack(1),
            c2s(2, RST | ACK, C_ISN + 700_000, S_ISN + 1),
            ack(3),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn client_rst_with_bogus_seq_is_ignored() {
        // Linux answers a SYN/ACK it cannot use with an RST whose seq is the
        // SYN/ACK's ack number; that RST is not in the server's window.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), c2s(2, RST, C_ISN + 40, 0)]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn server_rst_in_window_rejects() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), s2c(2, RST, S_ISN + 1, 0)]);
        assert_eq!(h.outcomes(), [Outcome::Reject]);
    }

    #[test]
    fn times_out_without_the_ack() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(S)]);
        h.expire(31 * S);
        let f = h.only();
        assert_eq!((f.outcome, f.end_ns), (Outcome::Timeout, 31 * S));
    }

    #[test]
    fn icmp_quoting_the_synack_is_judged_as_the_listener_judges_it() {
        // tcp_req_err: the listener drops its request only for network or
        // host unreachable; the client retries and may still succeed.
        for code in [0, 1] {
            let mut h = Harness::new();
            h.feed(&[syn(0), synack(1), unreach(2, &synack(1), code)]);
            assert!(h.out.is_empty(), "code {code}: the client still tries");
            h.feed(&[
                syn(S),
                s2c(S + 1, SYN | ACK, S_ISN + 64, C_ISN + 1),
                c2s(S + 2, ACK, C_ISN + 1, S_ISN + 65),
            ]);
            let f = h.only();
            assert_eq!((f.outcome, f.dupsyn), (Outcome::Success, 1), "code {code}");
        }
        // Dropped and never completed: unreachable, at the deadline.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), unreach(2, &synack(1), 1)]);
        h.expire(31 * S);
        assert_eq!(h.outcomes(), [Outcome::Unreach]);
        // The old SYN/ACK cannot complete it any more: the listener forgot it.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), unreach(2, &synack(1), 1), ack(3)]);
        assert!(h.out.is_empty());
    }

    #[test]
    fn icmp_quoting_the_synack_with_a_non_fatal_code_changes_nothing() {
        // Port unreachable and the rest: the listener keeps its request.
        for code in [2, 3, 4, 9, 13] {
            let mut h = Harness::new();
            h.feed(&[syn(0), synack(1), unreach(2, &synack(1), code), ack(3)]);
            assert_eq!(h.outcomes(), [Outcome::Success], "code {code}");
        }
        // ICMPv6: no route, beyond scope and address unreachable are not
        // fatal (icmpv6_err_convert); administratively prohibited is.
        let c = ep("2001:db8::2", 40000);
        let s6 = ep("2001:db8::1", 443);
        let sa6 = seg(1, s6, c, SYN | ACK, S_ISN, C_ISN + 1);
        let icmp6 = |code| Event {
            icmp_type: 1,
            ..unreach(2, &sa6, code)
        };
        for (code, completes) in [(0, true), (2, true), (3, true), (1, false), (4, false)] {
            let mut h = Harness::new();
            h.feed(&[
                seg(0, c, s6, SYN, C_ISN, 0),
                sa6,
                icmp6(code),
                seg(3, c, s6, ACK, C_ISN + 1, S_ISN + 1),
            ]);
            assert_eq!(h.out.len(), usize::from(completes), "ICMPv6 code {code}");
        }
    }

    #[test]
    fn icmp_quoting_another_synack_seq_is_ignored() {
        let mut h = Harness::new();
        let mut other = synack(1);
        other.seq = S_ISN + 1;
        h.feed(&[syn(0), synack(1), unreach(2, &other, 1), ack(3)]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn icmp_quoting_the_syn_after_the_synack_changes_nothing() {
        // The client has the SYN/ACK: it is not in SYN-SENT any more.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), unreach(2, &syn(0), 3), ack(3)]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }
}

mod simultaneous_open {
    use super::*;

    fn opening() -> [Event; 2] {
        [syn(0), s2c(1, SYN, S_ISN, 0)]
    }

    #[test]
    fn succeeds_when_both_synacks_are_seen() {
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[c2s(2, SYN | ACK, C_ISN, S_ISN + 1)]);
        assert!(h.out.is_empty());
        h.feed(&[s2c(3, SYN | ACK, S_ISN, C_ISN + 1)]);
        let f = h.only();
        assert_eq!((f.outcome, f.conn.client), (Outcome::Success, client()));
    }

    #[test]
    fn succeeds_when_one_side_acks_plainly() {
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[
            s2c(2, SYN | ACK, S_ISN, C_ISN + 1),
            c2s(3, ACK, C_ISN + 1, S_ISN + 1),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn retransmitted_syns_of_both_sides_count() {
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[s2c(2, SYN, S_ISN, 0), syn(3)]);
        h.feed(&[
            c2s(4, SYN | ACK, C_ISN, S_ISN + 1),
            s2c(5, SYN | ACK, S_ISN, C_ISN + 1),
        ]);
        assert_eq!(h.only().dupsyn, 2);
    }

    #[test]
    fn a_server_syn_with_another_isn_is_not_a_retransmission() {
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[s2c(2, SYN, S_ISN + 5, 0)]);
        h.feed(&[
            c2s(4, SYN | ACK, C_ISN, S_ISN + 1),
            s2c(5, SYN | ACK, S_ISN, C_ISN + 1),
        ]);
        let f = h.only();
        assert_eq!((f.outcome, f.dupsyn), (Outcome::Success, 0));
    }

    #[test]
    fn late_server_syn_after_success_does_not_open_a_second_session() {
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[
            c2s(2, SYN | ACK, C_ISN, S_ISN + 1),
            s2c(3, SYN | ACK, S_ISN, C_ISN + 1),
        ]);
        h.feed(&[s2c(S, SYN, S_ISN, 0)]);
        h.expire(400 * S);
        assert_eq!(h.outcomes(), [Outcome::Success]);
        assert_eq!(h.admitted, 1);
    }

    #[test]
    fn rst_from_either_side_rejects() {
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[s2c(2, RST, S_ISN + 1, 0)]);
        assert_eq!(h.outcomes(), [Outcome::Reject]);
    }

    #[test]
    fn succeeds_when_the_server_acks_plainly() {
        // The server's side of a simultaneous open may acknowledge the
        // client's SYN with a plain ACK (RFC 9293 figure 8).
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[
            c2s(2, SYN | ACK, C_ISN, S_ISN + 1),
            s2c(3, ACK, S_ISN + 1, C_ISN + 1),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
    }

    #[test]
    fn a_plain_server_ack_of_another_number_or_out_of_sequence_decides_nothing() {
        for (seq, ack) in [(S_ISN + 1, C_ISN + 9), (S_ISN + 4000, C_ISN + 1)] {
            let mut h = Harness::new();
            h.feed(&opening());
            h.feed(&[c2s(2, SYN | ACK, C_ISN, S_ISN + 1), s2c(3, ACK, seq, ack)]);
            assert!(h.out.is_empty(), "seq {seq} ack {ack}");
        }
    }

    #[test]
    fn a_client_synack_with_another_isn_or_ack_decides_nothing() {
        for (seq, ack) in [(C_ISN + 5, S_ISN + 1), (C_ISN, S_ISN + 9)] {
            let mut h = Harness::new();
            h.feed(&opening());
            h.feed(&[
                c2s(2, SYN | ACK, seq, ack),
                s2c(3, SYN | ACK, S_ISN, C_ISN + 1),
            ]);
            assert!(h.out.is_empty(), "seq {seq} ack {ack}");
        }
    }

    #[test]
    fn icmp_quoting_the_servers_syn_ends_it() {
        // Both sides are connecting sockets here: the server gives up on
        // an error quoting its SYN, as a client would (tcp_v4_err).
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[unreach(2, &s2c(1, SYN, S_ISN, 0), 1)]);
        assert_eq!(h.outcomes(), [Outcome::Unreach]);
        // Not for a sequence number the server never sent.
        let mut h = Harness::new();
        h.feed(&opening());
        h.feed(&[unreach(2, &s2c(1, SYN, S_ISN + 7, 0), 1)]);
        assert!(h.out.is_empty());
    }
}

mod closed {
    use super::*;

    #[test]
    fn late_segments_change_nothing() {
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            synack(1),
            ack(2),
            synack(S),
            ack(S + 1),
            s2c(S + 2, RST | ACK, S_ISN + 1, C_ISN + 1),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success]);
        assert_eq!(h.engine.pending(), 0);
    }

    #[test]
    fn retransmitted_syn_after_icmp_does_not_open_a_second_session() {
        let mut h = Harness::new();
        h.feed(&[syn(0), unreach(1, &syn(0), 1), syn(S), syn(3 * S)]);
        h.expire(200 * S);
        assert_eq!(h.outcomes(), [Outcome::Unreach]);
        assert_eq!(h.admitted, 1);
    }

    #[test]
    fn retransmitted_syn_after_timeout_does_not_count_again() {
        // -t 5: a client backing off (1, 3, 7, 15, 31 s) outlives the timeout.
        let mut h = Harness::with(EngineConfig::new(5 * S, 10, false));
        h.feed(&[
            syn(0),
            syn(S),
            syn(3 * S),
            syn(7 * S),
            syn(15 * S),
            syn(31 * S),
            syn(63 * S),
        ]);
        h.expire(400 * S);
        assert_eq!(h.outcomes(), [Outcome::Timeout]);
        assert_eq!(h.out[0].dupsyn, 3);
    }

    #[test]
    fn new_isn_on_the_same_ports_is_a_new_session() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), ack(2)]);
        h.feed(&[
            c2s(S, SYN, C_ISN + 99_999, 0),
            s2c(S + 1, RST | ACK, 0, C_ISN + 100_000),
        ]);
        assert_eq!(h.outcomes(), [Outcome::Success, Outcome::Reject]);
        assert_eq!(h.admitted, 2);
    }

    #[test]
    fn a_server_syn_after_a_plain_handshake_is_a_new_connection() {
        // Only a side that sent a pure SYN can retransmit one: the
        // server answered with a SYN/ACK, so a SYN from it, even with the
        // same sequence number, is a connection of its own.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), ack(2)]);
        h.feed(&[s2c(S, SYN, S_ISN, 0), c2s(S + 1, RST | ACK, 0, S_ISN + 1)]);
        assert_eq!(h.outcomes(), [Outcome::Success, Outcome::Reject]);
        assert_eq!(h.out[1].conn.client, server());
        assert_eq!(h.admitted, 2);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_finished_session() {
        let c = |p| ep("10.0.0.2", p);
        let mut h = Harness::with(EngineConfig::new(30 * S, 4, false));
        for p in 1..=3u16 {
            h.feed(&[
                seg(0, c(p), server(), SYN, C_ISN, 0),
                seg(0, c(p), server(), RST, C_ISN + 1, 0),
            ]);
        }
        assert_eq!(h.engine.lingering(), 3);
        for p in 4..=6u16 {
            h.feed(&[seg(1, c(p), server(), SYN, C_ISN, 0)]);
            assert!(h.engine.pending() + h.engine.lingering() <= 4);
        }
        assert_eq!((h.engine.pending(), h.engine.lingering()), (3, 1));
        assert_eq!(h.engine.forgotten(), 2, "each eviction is counted");
        // The one kept is the newest: its retransmitted SYN is absorbed.
        h.feed(&[seg(2, c(3), server(), SYN, C_ISN, 0)]);
        assert_eq!(h.admitted, 6);
    }

    #[test]
    fn finished_sessions_are_forgotten_after_the_linger_time() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), ack(2)]);
        assert_eq!(h.engine.lingering(), 1);
        h.expire(EngineConfig::MIN_LINGER_NS + 2);
        assert_eq!(h.engine.lingering(), 0);
        // Now the same SYN is a new connection attempt.
        h.feed(&[syn(EngineConfig::MIN_LINGER_NS + 3)]);
        assert_eq!(h.engine.pending(), 1);
    }
}

mod expiry {
    use super::*;

    #[test]
    fn only_idle_sessions_expire_in_order() {
        let mut h = Harness::new();
        let a = ep("10.0.0.3", 1);
        let b = ep("10.0.0.4", 2);
        h.feed(&[
            seg(0, a, server(), SYN, 1, 0),
            seg(10 * S, b, server(), SYN, 2, 0),
            seg(20 * S, a, server(), SYN, 1, 0),
        ]);
        h.expire(40 * S);
        assert_eq!(h.out.len(), 1);
        assert_eq!(h.out[0].conn.client, b);
        h.expire(50 * S);
        assert_eq!(h.out.len(), 2);
        assert_eq!(h.out[1].conn.client, a);
    }

    #[test]
    fn many_sessions_are_bounded_by_the_table() {
        let mut h = Harness::with(EngineConfig::new(S, 1000, false));
        for i in 0..100_000u32 {
            let c = ep("10.0.0.2", (i % 60000) as u16 + 1);
            let mut e = seg(u64::from(i) * 1000, c, server(), SYN, i, 0);
            e.saddr[3] = (i / 60000) as u8 + 2;
            h.feed(&[e]);
        }
        assert!(h.engine.pending() <= 1000);
        assert_eq!(h.engine.pending() as u64 + h.engine.overflow(), 100_000);
    }
}

/// Counts the bytes each thread holds on the heap, so that the engine's
/// memory figure can be checked against what the allocator handed out.
/// What a finished record says about the handshake's phases and its ICMP
/// error, which the latency histograms and the metrics' ICMP codes read.
mod phases {
    use super::*;

    #[test]
    fn a_success_splits_at_the_first_acknowledgement_of_the_syn() {
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            syn(S),
            synack(S + 3_000_000),
            synack(S + 900_000_000),
            ack(S + 905_000_000),
        ]);
        let f = h.only();
        assert_eq!(
            f.synack_ns,
            Some(S + 3_000_000),
            "the first SYN/ACK, not its retransmission"
        );
        assert_eq!(f.phases_ns(), Some((S + 3_000_000, 902_000_000)));
        assert_eq!(f.icmp_code, None);
    }

    #[test]
    fn the_phase_clock_has_microsecond_resolution() {
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1_234_567), ack(2_000_000)]);
        assert_eq!(h.only().synack_ns, Some(1_234_000));
    }

    #[test]
    fn an_unanswered_handshake_has_no_phases() {
        let mut h = Harness::new();
        h.feed(&[syn(0)]).expire(31 * S);
        assert_eq!((h.only().synack_ns, h.only().phases_ns()), (None, None));
    }

    #[test]
    fn a_listener_that_forgets_its_synack_restarts_the_phase() {
        // tcp_req_err dropped the request: the SYN/ACK that counts is the
        // one answering the retransmitted SYN.
        let mut h = Harness::new();
        h.feed(&[
            syn(0),
            synack(1000),
            unreach(2000, &synack(1000), 1),
            syn(S),
            s2c(S + 5000, SYN | ACK, S_ISN + 64, C_ISN + 1),
            c2s(S + 9000, ACK, C_ISN + 1, S_ISN + 65),
        ]);
        assert_eq!(h.only().synack_ns, Some(S + 5000));
    }

    #[test]
    fn an_unreachable_outcome_keeps_its_icmp_code() {
        for code in [0, 3, 13] {
            let mut h = Harness::new();
            h.feed(&[syn(0), unreach(1, &syn(0), code)]);
            assert_eq!(h.only().icmp_code, Some(code));
        }
        // Decided at the deadline, after the listener dropped its request.
        let mut h = Harness::new();
        h.feed(&[syn(0), synack(1), unreach(2, &synack(1), 1)])
            .expire(31 * S);
        assert_eq!(
            (h.only().outcome, h.only().icmp_code),
            (Outcome::Unreach, Some(1))
        );
        // Other outcomes carry none.
        let mut h = Harness::new();
        h.feed(&[syn(0)]).expire(31 * S);
        assert_eq!(h.only().icmp_code, None);
    }
}

mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: isize) {
        // A thread being torn down has no counter left: nothing to count.
        let _ = HELD.try_with(|h| h.set(h.get() + n));
    }

    struct Counting;

    // SAFETY: every call is forwarded to `System` with the caller's own
    // arguments; the counter is a thread-local `Cell` that allocates
    // nothing.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size as isize - layout.size() as isize);
            // SAFETY: as for `dealloc`, and the caller's `new_size` is
            // valid for `layout`'s alignment.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Bytes the calling thread has allocated and not freed.
    pub(super) fn held() -> isize {
        HELD.with(Cell::get)
    }
}

mod memory {
    use super::*;

    #[test]
    fn heap_bytes_is_what_the_table_allocated() {
        // BENCHMARKS.md's bytes per handshake come from heap_bytes.
        let before_engine = heap::held();
        let mut engine = Engine::new(EngineConfig::new(S, 5000, false));
        let mut out = Vec::with_capacity(10_000);
        let before = heap::held();
        let c = |p| ep("10.0.0.2", p);
        // Handshakes that time out and are forgotten (the free list fills),
        // then new ones that take their slots and more.
        for (t, ports) in [(0, 1..=3000u16), (1000 * S, 1..=4000)] {
            for p in ports {
                engine.process(
                    &seg(t, c(p), server(), SYN, C_ISN, 0),
                    |_| Some(0),
                    &mut out,
                );
            }
            engine.expire(t + 500 * S, &mut out);
        }
        assert_eq!(out.len(), 7000);
        assert_eq!(engine.lingering(), 0);
        assert!(engine.heap_bytes() > 4000 * std::mem::size_of::<Session>());
        assert_eq!(heap::held() - before, engine.heap_bytes() as isize);
        drop(engine);
        drop(out);
        assert_eq!(heap::held(), before_engine, "nothing outlives the engine");
    }
}

mod awaiting_ack_hint {
    use tcpeek_testkit::rng::Rng;

    use super::*;

    /// Random traffic among a few endpoint pairs: the segments of
    /// handshakes (and of simultaneous opens, resets, data) in random
    /// order, a fifth of their fields changed, ICMP errors quoting them,
    /// and times that sometimes run backwards. Handshakes open, complete,
    /// reset, collide, fail and time out, in every order.
    fn random_traffic(rng: &mut Rng, n: usize) -> Vec<Event> {
        // (flags, from the client, seq, ack)
        let steps = [
            (SYN, true, C_ISN, 0),
            (SYN | ACK, false, S_ISN, C_ISN + 1),
            (ACK, true, C_ISN + 1, S_ISN + 1),
            (PSH | ACK, true, C_ISN + 1, S_ISN + 1),
            (PSH | ACK, false, S_ISN + 1, C_ISN + 1),
            (RST | ACK, false, 0, C_ISN + 1),
            (RST, true, C_ISN + 1, 0),
            (SYN, false, S_ISN, 0),
            (SYN | ACK, true, C_ISN, S_ISN + 1),
            (FIN | ACK, true, C_ISN + 1, S_ISN + 1),
        ];
        let flags = [
            SYN,
            SYN | ACK,
            ACK,
            RST,
            RST | ACK,
            SYN | FIN,
            SYN | RST,
            0xff,
        ];
        let pairs = [
            (ep("10.0.0.2", 40000), ep("10.0.0.1", 80)),
            (ep("10.0.0.2", 40001), ep("10.0.0.1", 80)),
            (ep("10.0.0.3", 40000), ep("10.0.0.1", 81)),
            (ep("fd00::2", 40000), ep("fd00::1", 80)),
        ];
        let mut t = 0u64;
        (0..n)
            .map(|_| {
                t = match rng.below(50) {
                    0 => t.saturating_sub(rng.below(3000) as u64 * S / 1000),
                    1 => t + 40 * S,
                    _ => t + rng.below(100) as u64 * S / 1000,
                };
                let (client, server) = rng.pick(&pairs);
                let (mut f, from_client, mut seq, mut ack) = rng.pick(&steps);
                match rng.below(15) {
                    0 => f = rng.pick(&flags),
                    1 => seq = seq.wrapping_add(rng.below(5) as u32).wrapping_sub(2),
                    2 => ack = ack.wrapping_add(rng.below(5) as u32).wrapping_sub(2),
                    _ => {}
                }
                let (src, dst) = if from_client {
                    (client, server)
                } else {
                    (server, client)
                };
                let mut ev = seg(t, src, dst, f, seq, ack);
                ev.payload_len = rng.pick(&[0, 0, 0, 0, 1, 100]);
                if rng.below(15) == 0 {
                    ev = unreach(t, &ev, rng.pick(&[0, 1, 3, 4, 13]));
                }
                ev
            })
            .collect()
    }

    #[test]
    fn answers_are_the_same_with_the_hint_disabled() {
        // The hint only lets a segment skip its table lookup: an engine
        // that looks up every segment must finish the same handshakes the
        // same way. (cargo-mutants' exclusions of hint.rs rest on this.)
        let mut rng = Rng::new(0x41c4_0000_2024_0001);
        let mut seen = Vec::new();
        for _ in 0..40 {
            let traffic = random_traffic(&mut rng, 3000);
            let mut with = Harness::new();
            let mut without = Harness::new();
            without.engine.awaiting_ack = Hint::everywhere();
            with.feed(&traffic).expire(u64::MAX / 2);
            without.feed(&traffic).expire(u64::MAX / 2);
            assert_eq!(with.out, without.out);
            assert_eq!(with.admitted, without.admitted);
            seen.extend(with.outcomes());
            seen.sort_by_key(|o| *o as u8);
            seen.dedup();
        }
        assert_eq!(seen.len(), 5, "the traffic reaches every outcome: {seen:?}");
    }

    fn hint_total(e: &Engine) -> u64 {
        e.awaiting_ack.0.iter().map(|&n| u64::from(n)).sum()
    }

    #[test]
    fn counts_exactly_the_sessions_an_ack_can_move() {
        let mut h = Harness::new();
        h.feed(&[syn(0)]);
        assert_eq!(hint_total(&h.engine), 0, "SYN-SENT: an ACK cannot move it");
        h.feed(&[synack(1)]);
        assert_eq!(hint_total(&h.engine), 1);
        h.feed(&[synack(2)]);
        assert_eq!(
            hint_total(&h.engine),
            1,
            "a retransmission is not a second session"
        );
        h.feed(&[ack(3)]);
        assert_eq!(hint_total(&h.engine), 0);
    }

    #[test]
    fn returns_to_zero_whatever_the_outcome() {
        let mut h = Harness::new();
        let c = |p| ep("10.0.0.2", p);
        let mut evs = Vec::new();
        for p in 1..=4u16 {
            evs.push(seg(0, c(p), server(), SYN, C_ISN, 0));
            evs.push(seg(1, server(), c(p), SYN | ACK, S_ISN, C_ISN + 1));
        }
        evs.push(seg(2, c(1), server(), ACK, C_ISN + 1, S_ISN + 1));
        evs.push(seg(2, c(2), server(), RST, C_ISN + 1, 0));
        // Host unreachable: the listener drops its request (tcp_req_err).
        evs.push(unreach(
            2,
            &seg(1, server(), c(3), SYN | ACK, S_ISN, C_ISN + 1),
            1,
        ));
        // Simultaneous open on port 5.
        evs.push(seg(2, c(5), server(), SYN, C_ISN, 0));
        evs.push(seg(2, server(), c(5), SYN, S_ISN, 0));
        h.feed(&evs);
        assert_eq!(hint_total(&h.engine), 2, "port 4 and the simultaneous open");
        h.expire(100 * S);
        assert_eq!(hint_total(&h.engine), 0);
        assert_eq!(h.out.len(), 5);
    }

    #[test]
    fn is_the_same_for_both_directions() {
        let a = syn(0);
        let b = synack(0);
        assert_eq!(Hint::of_event(&a), Hint::of_event(&b));
        let (key, _) = Key::of(client(), server());
        assert_eq!(Hint::of_event(&a), Hint::of_key(&key));
    }
}

mod clock {
    use super::*;

    #[test]
    fn expiry_follows_deadlines_when_a_record_carries_an_older_time() {
        // Regression: the expiry lists were in arrival order, so a record
        // stamped before the previous one (delivered out of order beyond
        // the reordering window) hid a handshake whose deadline had
        // passed behind one whose deadline had not.
        let a = ep("10.0.0.2", 1);
        let b = ep("10.0.0.2", 2);
        let mut h = Harness::new();
        h.feed(&[
            seg(10 * S, b, server(), SYN, C_ISN, 0),
            seg(5 * S, a, server(), SYN, C_ISN, 0),
        ]);
        // Both handled at the engine's clock (10 s): neither can expire
        // before 40 s, and both do then, in deadline order.
        h.expire(40 * S - 1);
        assert!(h.out.is_empty());
        h.expire(40 * S);
        assert_eq!(h.outcomes(), [Outcome::Timeout, Outcome::Timeout]);
        assert_eq!(h.out[0].conn.client, b);
        assert_eq!(h.out[1].start_ns, 10 * S, "handled at the engine's clock");
    }

    #[test]
    fn time_never_runs_backwards_for_a_session() {
        let mut h = Harness::new();
        h.feed(&[syn(10 * S), synack(2 * S), ack(3 * S)]);
        let f = h.only();
        assert_eq!((f.start_ns, f.end_ns), (10 * S, 10 * S));
    }
}
