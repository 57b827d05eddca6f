//! The engine's settings: the handshake timeout, how long finished
//! handshakes are remembered, the size of the session table, and whether
//! ICMP errors end handshakes.

/// Engine settings.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// A handshake with no acceptable segment for this long times out.
    pub timeout_ns: u64,
    /// How long a finished handshake is remembered to recognise late
    /// retransmissions of its SYN.
    pub linger_ns: u64,
    /// At most this many handshakes are tracked; further opening SYNs are
    /// counted as overflow.
    pub max_sessions: usize,
    /// Whether ICMP destination-unreachable ends a handshake.
    pub icmp: bool,
}

impl EngineConfig {
    /// A Linux client gives up a connect() after 6 SYN retransmissions, the
    /// last gap being 64 s (net.ipv4.tcp_syn_retries, RFC 6298 back-off), so
    /// retransmitted SYNs can follow each other up to ~2 minutes apart.
    pub const MIN_LINGER_NS: u64 = 130 * 1_000_000_000;

    pub fn new(timeout_ns: u64, max_sessions: usize, icmp: bool) -> EngineConfig {
        EngineConfig {
            timeout_ns,
            linger_ns: timeout_ns.max(Self::MIN_LINGER_NS),
            max_sessions,
            icmp,
        }
    }
}
