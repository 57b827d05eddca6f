//! What the engine hands back: how a handshake ended ([`Outcome`]) and the
//! record of a finished one ([`Finished`]).

use crate::event::Connection;

/// How a handshake ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Success,
    Timeout,
    /// Reset by the server (a refusal).
    Reject,
    /// Reset by the client (a Happy Eyeballs loser, a connect timer that
    /// fired, a port scan). Counted as a reject on the socket, for
    /// compatibility, but reported as the client's doing.
    Aborted,
    Unreach,
}

/// A finished handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Finished {
    pub conn: Connection,
    pub outcome: Outcome,
    /// Time of the first SYN, ns since the epoch.
    pub start_ns: u64,
    /// Time of the segment that decided the outcome; for a timeout, the
    /// moment it expired (last segment + timeout).
    pub end_ns: u64,
    /// SYN retransmissions seen.
    pub dupsyn: u32,
    /// SYN/ACK retransmissions seen.
    pub dupsynack: u32,
    /// What admission returned for it.
    pub tag: u32,
    /// The interface its opening SYN was captured on.
    pub iface: u8,
    /// When the server acknowledged the client's SYN (ns since the epoch):
    /// the SYN/ACK that a success completed with, or the last one a failure
    /// saw. `None` if the server never answered.
    pub synack_ns: Option<u64>,
    /// For [`Outcome::Unreach`], the ICMP (type 3) or ICMPv6 (type 1) code
    /// of the error that decided it.
    pub icmp_code: Option<u8>,
}

impl Finished {
    /// Time the handshake took, ns.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// First SYN to the server's acknowledgement of it, and that to the end,
    /// in ns, if the server answered.
    pub fn phases_ns(&self) -> Option<(u64, u64)> {
        self.synack_ns.map(|a| {
            let a = a.clamp(self.start_ns, self.end_ns);
            (a - self.start_ns, self.end_ns - a)
        })
    }
}
