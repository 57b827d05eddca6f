//! What the endpoints of a handshake accept, in sequence-number arithmetic
//! (RFC 9293 section 3.4: modulo 2^32). The userspace engine and the eBPF
//! classifier both decide with these, so that the kernel forwards exactly
//! the segments the engine would act on.

/// One side's opening: its initial sequence number and how many bytes it
/// has sent after it so far: data on its SYN (TCP Fast Open, RFC 7413
/// section 4.2), and for a server also data sent after its SYN/ACK and
/// before the handshake completed (RFC 7413 section 4.2.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
#[repr(C)]
pub struct Opening {
    pub isn: u32,
    /// Bytes sent after the SYN: SND.NXT = ISN + 1 + len.
    pub len: u32,
}

impl Opening {
    #[inline(always)]
    pub const fn new(isn: u32, len: u32) -> Opening {
        Opening { isn, len }
    }

    /// `n - (ISN + 1)` in sequence space: how far past the SYN `n` is.
    #[inline(always)]
    pub fn offset(&self, n: u32) -> u32 {
        n.wrapping_sub(self.isn.wrapping_add(1))
    }

    /// Whether `ack` acknowledges this SYN and nothing this side has not
    /// sent: SND.UNA < SEG.ACK =< SND.NXT (RFC 9293 section 3.10.7.3). The
    /// peer may accept or ignore Fast Open data, so anything from ISN+1 to
    /// the end of what was sent is acceptable.
    #[inline(always)]
    pub fn acked_by(&self, ack: u32) -> bool {
        self.offset(ack) <= self.len
    }

    /// Whether `seq` is where this side's next segment after its SYN may
    /// start: at or after ISN+1, and not beyond what it has sent.
    #[inline(always)]
    pub fn next_seq(&self, seq: u32) -> bool {
        self.acked_by(seq)
    }

    /// A segment of `len` bytes at `seq` from this side, contiguous with
    /// what it sent before: extends what it has sent (the server's data
    /// before the completing ACK, RFC 7413 section 4.2.2). Returns whether
    /// it did.
    #[inline(always)]
    pub fn extend(&mut self, seq: u32, len: u32) -> bool {
        let off = self.offset(seq);
        if len == 0 || off > self.len {
            return false;
        }
        self.len = self.len.max(off.saturating_add(len));
        true
    }

    /// Whether `seq` lies in `[from, ISN + 1 + len]`, `from` being an
    /// offset past the SYN.
    #[inline(always)]
    pub fn seq_from(&self, seq: u32, from: u32) -> bool {
        let off = self.offset(seq);
        off >= from && off <= self.len
    }

    /// Whether `seq` is a sequence number this side has used: ISN to
    /// SND.NXT (Linux's tcp_v4_err checks an ICMP quote against
    /// [SND.UNA, SND.NXT], RFC 5927 section 4.1).
    #[inline(always)]
    pub fn sent(&self, seq: u32) -> bool {
        seq.wrapping_sub(self.isn) <= self.len.saturating_add(1)
    }
}

/// A server's opening as the client's completing ACK may acknowledge it:
/// its latest SYN/ACK, and the one before if that had another ISN (SYN
/// cookies across a time slot, a listener that rebuilt its request: the
/// client may answer either).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "user", derive(bytemuck::Pod, bytemuck::Zeroable))]
#[repr(C)]
pub struct ServerOpening {
    pub latest: Opening,
    /// Equal to `latest` while the server used one ISN.
    pub previous: Opening,
}

impl ServerOpening {
    /// A first SYN/ACK.
    #[inline(always)]
    pub const fn new(first: Opening) -> ServerOpening {
        ServerOpening {
            latest: first,
            previous: first,
        }
    }

    /// After another SYN/ACK `next`: a retransmission (same ISN) widens
    /// what was sent if it carried more data; a new ISN becomes the latest
    /// and the latest the previous.
    #[inline(always)]
    pub fn then(self, next: Opening) -> ServerOpening {
        if next.isn == self.latest.isn {
            let latest = Opening {
                len: self.latest.len.max(next.len),
                ..self.latest
            };
            ServerOpening { latest, ..self }
        } else {
            ServerOpening {
                latest: next,
                previous: self.latest,
            }
        }
    }

    /// Whether the client's `ack` acknowledges the server's SYN (either).
    #[inline(always)]
    pub fn acked_by(&self, ack: u32) -> bool {
        self.latest.acked_by(ack) || self.previous.acked_by(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_of_the_syn_up_to_what_was_sent() {
        let o = Opening::new(u32::MAX, 3);
        // ISN + 1 wraps to 0.
        assert!(!o.acked_by(u32::MAX));
        assert!(o.acked_by(0));
        assert!(o.acked_by(3));
        assert!(!o.acked_by(4));
    }

    #[test]
    fn extend_only_from_inside_what_was_sent() {
        let mut o = Opening::new(100, 0);
        assert!(!o.extend(101, 0), "no data");
        assert!(!o.extend(102, 10), "a gap after ISN + 1");
        assert!(o.extend(101, 10));
        assert_eq!(o.len, 10);
        assert!(o.extend(105, 2), "inside: no change");
        assert_eq!(o.len, 10);
        assert!(o.extend(111, 5), "contiguous");
        assert_eq!(o.len, 15);
    }

    #[test]
    fn seq_from_and_sent_bounds() {
        let o = Opening::new(1000, 5);
        assert!(o.seq_from(1003, 2));
        assert!(!o.seq_from(1002, 2));
        assert!(o.seq_from(1006, 0));
        assert!(!o.seq_from(1007, 0));
        assert!(o.sent(1000) && o.sent(1006));
        assert!(!o.sent(999) && !o.sent(1007));
    }

    #[test]
    fn a_new_isn_keeps_the_previous_one_acceptable() {
        let s = ServerOpening::new(Opening::new(10, 0));
        assert!(s.acked_by(11) && !s.acked_by(21));
        let s = s.then(Opening::new(20, 0));
        assert!(s.acked_by(11) && s.acked_by(21));
        assert_eq!(s.previous, Opening::new(10, 0));
        let s = s.then(Opening::new(30, 0));
        assert!(!s.acked_by(11), "only one previous ISN is kept");
    }

    #[test]
    fn a_retransmission_widens_only() {
        let s = ServerOpening::new(Opening::new(10, 5)).then(Opening::new(10, 2));
        assert_eq!(s.latest.len, 5);
        assert_eq!(s.previous, Opening::new(10, 5));
        let s = s.then(Opening::new(10, 9));
        assert_eq!(s.latest.len, 9);
    }
}

#[cfg(test)]
mod next_seq_tests {
    use super::Opening;

    #[test]
    fn next_segment_starts_after_the_syn_within_what_was_sent() {
        let o = Opening::new(1000, 2);
        assert!(!o.next_seq(1000), "the SYN's own number");
        assert!(o.next_seq(1001) && o.next_seq(1003));
        assert!(!o.next_seq(1004));
    }
}
