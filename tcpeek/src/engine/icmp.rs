//! ICMP and ICMPv6 destination-unreachable: which errors make an endpoint
//! give up a handshake, judged as Linux judges them (tcp_v4_err,
//! tcp_v6_err, tcp_req_err).

use tcpeek_common::{Event, FAMILY_V4};

use super::session::{Key, State, NO_SYNACK};
use super::table::ListId;
use super::{Engine, Finished, Hint, Outcome};
use crate::event::endpoints;

impl Engine {
    /// An ICMP/ICMPv6 destination-unreachable quoting a segment of the
    /// handshake, judged by the endpoint it is addressed to, the sender of
    /// the quoted segment, as Linux judges it:
    /// - a connecting socket (the client in SYN-SENT, either side of a
    ///   simultaneous open) gives up on any code but IPv4's 4
    ///   ("fragmentation needed", path MTU discovery) and the unassigned
    ///   ones above 15, if the quoted sequence number is one it sent
    ///   (tcp_v4_err, tcp_v6_err: `between(seq, snd_una, snd_nxt)`). Once
    ///   the server answered, the client has (or will have) its SYN/ACK
    ///   and is no longer in SYN-SENT: the error changes nothing;
    /// - a listener (the server in SYN-RECEIVED) drops its request only
    ///   for a quote of its SYN/ACK's own sequence number and a fatal code
    ///   (tcp_req_err): IPv4 network or host unreachable (codes 0 and 1,
    ///   tcp_v4_err), ICMPv6 codes that `icmpv6_err_convert` calls fatal
    ///   (1, 4, 5, 6 and unassigned ones, not 0, 2 or 3). The client is
    ///   still trying: its retransmitted SYN gets a new SYN/ACK and the
    ///   handshake can still succeed. If nothing completes it, it failed
    ///   as unreachable.
    pub(super) fn unreachable(&mut self, ev: &Event, out: &mut Vec<Finished>) {
        let (src, dst) = endpoints(ev);
        let (key, src_is_lo) = Key::of(src, dst);
        let Some(i) = self.table.find(&key) else {
            return;
        };
        if self.table.list_of(i) == ListId::Closed {
            return;
        }
        self.now = self.now.max(ev.ts_ns);
        let now = self.now;
        let v4 = ev.family == FAMILY_V4;
        let s = self.table.get_mut(i);
        let quoted_client = s.client_is_lo == src_is_lo;
        let connecting_gives_up = if v4 {
            ev.icmp_code != 4 && ev.icmp_code <= 15
        } else {
            true
        };
        let aborts = match (quoted_client, s.state) {
            (true, State::SynSent | State::SimultaneousOpen) => {
                connecting_gives_up && s.client.sent(ev.seq)
            }
            (false, State::SimultaneousOpen) => connecting_gives_up && s.server.sent(ev.seq),
            (false, State::SynReceived) => {
                let fatal = if v4 {
                    matches!(ev.icmp_code, 0 | 1)
                } else {
                    !matches!(ev.icmp_code, 0 | 2 | 3)
                };
                if fatal && ev.seq == s.server.isn {
                    // The listener forgets its request; the client goes on.
                    s.state = State::SynSent;
                    s.server_acked = false;
                    s.has_server_prev = false;
                    s.icmp_dropped = true;
                    s.icmp_code = ev.icmp_code;
                    s.synack_us = NO_SYNACK;
                    let key = s.key;
                    self.awaiting_ack.remove(Hint::of_key(&key));
                }
                false
            }
            _ => false,
        };
        if aborts {
            s.icmp_code = ev.icmp_code;
            self.finish(i, Outcome::Unreach, now, out);
        }
    }
}
