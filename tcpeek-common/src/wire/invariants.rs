//! What must hold of any walk, whatever the bytes: the fuzz target
//! (`tcpeek/fuzz`, feature `invariants`) and the randomized test below run
//! [`check`] on arbitrary input, and any violation panics.

use super::{ethernet, from_ethertype, raw_ip, Found, Ip, Packet, Stop, TCP_VERDICT_LEN};

/// Walks `frame` (of `wire_len` bytes on the wire, at least its length) as
/// `framing` says: 0 Ethernet, 1 raw IP, else a cooked header of 16 bytes
/// that announced `ethertype`. Panics if the outcome breaks a rule.
pub fn check(frame: &[u8], wire_len: usize, framing: u8, ethertype: u16) {
    let wire_len = wire_len.max(frame.len());
    let pkt = Packet::new(frame);
    let walked = match framing {
        0 => ethernet(&pkt, wire_len),
        1 => raw_ip(&pkt, wire_len),
        _ => from_ethertype(&pkt, ethertype, 16, wire_len),
    };
    match walked {
        Ok(found) => {
            let ev = found
                .event(&pkt, 0)
                .expect("a found segment can be described");
            match found {
                Found::Tcp(t) => {
                    ip_holds(&t.ip, frame.len(), wire_len);
                    assert!(
                        t.ip.l4 + TCP_VERDICT_LEN <= frame.len(),
                        "TCP read in bounds"
                    );
                    assert!(
                        t.doff >= 20 && t.doff <= t.ip.l4_len,
                        "data offset in the segment"
                    );
                    assert_eq!(t.cut, t.ip.l4 + t.doff as usize > frame.len());
                    assert_eq!(u32::from(ev.payload_len), t.payload_len().min(0xffff));
                }
                Found::Unreachable(u) => {
                    ip_holds(&u.ip, frame.len(), wire_len);
                    assert!(
                        u.quoted.l3 >= u.ip.l4 + 8,
                        "the quote follows the ICMP header"
                    );
                    assert!(u.quoted.l4 + 8 <= u.ip.end(), "the quote is in the message");
                    assert!(u.quoted.l4 + 8 <= frame.len(), "and readable");
                    assert_eq!((ev.ack, ev.payload_len), (0, 0));
                }
            }
        }
        Err(Stop::Short {
            needed, available, ..
        }) => assert!(available < needed, "short: {available} < {needed}"),
        Err(Stop::Truncated {
            needed, available, ..
        }) => assert!(available < needed, "truncated: {available} < {needed}"),
        Err(Stop::Ignored | Stop::Malformed { .. } | Stop::Unsupported(_)) => {}
    }
}

fn ip_holds(ip: &Ip, readable: usize, wire_len: usize) {
    assert!(
        ip.l3 + ip.header_len <= ip.l4,
        "layer 4 after the IP header"
    );
    assert!(ip.end() <= wire_len, "the IP length fits the wire");
    assert_eq!(ip.complete, ip.end() <= readable);
    assert!(!ip.routed || ip.v6, "routing headers are IPv6's");
}

#[cfg(test)]
mod tests {
    use super::check;

    /// A fixed-seed xorshift generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random frames that often look like IP: the walk's rules hold on a
    /// million of them (the fuzz target explores further).
    #[test]
    fn rules_hold_on_random_frames() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut frame = [0u8; 160];
        for _ in 0..1_000_000 {
            let r = rng.next();
            let len = (r % 160) as usize;
            for b in frame[..len].iter_mut() {
                *b = rng.next() as u8;
            }
            // Steer: an IP EtherType, a plausible version, TCP or ICMP.
            if r & 0x100 != 0 && len > 14 {
                frame[12..14].copy_from_slice(&[0x86, 0xdd][..]);
                if r & 0x200 != 0 {
                    frame[12] = 0x08;
                    frame[13] = 0;
                    frame[14] = 0x45;
                } else {
                    frame[14] = 0x60;
                }
            }
            if r & 0x400 != 0 && len > 24 {
                frame[23] = [6, 1, 58, 51, 0, 44][(r >> 11) as usize % 6];
                frame[20] = [6, 58, 0, 60, 43, 44][(r >> 14) as usize % 6];
            }
            let lost = if r & 0x800 != 0 {
                (r >> 20) as usize % 64
            } else {
                0
            };
            check(&frame[..len], len + lost, (r >> 30) as u8 % 3, 0x0800);
        }
    }
}
