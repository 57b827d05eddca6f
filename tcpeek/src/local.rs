//! Which addresses are "this host": the basis of RX (a SYN arriving for a
//! local address) and TX (a SYN sent from one).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::event::Addr;

/// An address prefix, IPv4 or IPv6: `192.0.2.0/24`, `2001:db8::/32`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Prefix {
    addr: Addr,
    len: u8,
}

impl Prefix {
    /// A prefix of `len` bits; host bits of `ip` are cleared. `None` when
    /// `len` is longer than the address.
    pub fn new(ip: IpAddr, len: u8) -> Option<Prefix> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return None;
        }
        let addr = Addr::from(ip);
        let mut bytes = *addr.bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            let keep = u32::from(len).saturating_sub(i as u32 * 8).min(8);
            *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        }
        let addr = Addr::from(match ip {
            IpAddr::V4(_) => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
            IpAddr::V6(_) => IpAddr::from(bytes),
        });
        Some(Prefix { addr, len })
    }

    /// A single host.
    pub fn host(ip: IpAddr) -> Prefix {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        Prefix {
            addr: Addr::from(ip),
            len,
        }
    }

    pub fn contains(&self, addr: &Addr) -> bool {
        if addr.is_v6() != self.addr.is_v6() {
            return false;
        }
        let (a, p) = (addr.bytes(), self.addr.bytes());
        let full = usize::from(self.len / 8);
        if a[..full] != p[..full] {
            return false;
        }
        let rest = self.len % 8;
        rest == 0 || (a[full] ^ p[full]) & (0xffu8 << (8 - rest)) == 0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Error parsing a `--local` value.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not an address or prefix (expected e.g. 192.0.2.1, 192.0.2.0/24, 2001:db8::1 or 2001:db8::/64)")]
pub struct BadPrefix(String);

impl FromStr for Prefix {
    type Err = BadPrefix;

    fn from_str(s: &str) -> Result<Prefix, BadPrefix> {
        let bad = || BadPrefix(s.to_string());
        let t = s.trim_start_matches('[');
        let (ip, len) = match t.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (t, None),
        };
        let ip: IpAddr = ip.trim_end_matches(']').parse().map_err(|_| bad())?;
        match len {
            None => Ok(Prefix::host(ip)),
            Some(len) => {
                let len: u8 = len.trim_end_matches(']').parse().map_err(|_| bad())?;
                Prefix::new(ip, len).ok_or_else(bad)
            }
        }
    }
}

/// The local side of the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// Every address counts as local: each handshake is seen from both of
    /// its ends (RX as the server's view, TX as the client's). Used for
    /// capture files read without `--local`.
    Everything,
    /// These prefixes are local.
    Prefixes(Vec<Prefix>),
}

impl Local {
    pub fn contains(&self, addr: &Addr) -> bool {
        match self {
            Local::Everything => true,
            Local::Prefixes(p) => p.iter().any(|p| p.contains(addr)),
        }
    }
}

impl fmt::Display for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Local::Everything => f.write_str("every address"),
            Local::Prefixes(p) if p.is_empty() => f.write_str("no address"),
            Local::Prefixes(p) => {
                for (i, p) in p.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn prefixes_match_their_family_only() {
        let p: Prefix = "192.168.0.0/24".parse().unwrap();
        assert!(p.contains(&a("192.168.0.77")));
        assert!(!p.contains(&a("192.168.1.1")));
        assert!(!p.contains(&a("c0a8::")));
        let p: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(p.contains(&a("2001:db8:ffff::1")));
        assert!(!p.contains(&a("2001:db9::1")));
    }

    #[test]
    fn odd_prefix_lengths_and_host_bits() {
        let p: Prefix = "10.1.2.3/9".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/9");
        assert!(p.contains(&a("10.127.0.1")));
        assert!(!p.contains(&a("10.128.0.1")));
        let zero: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(zero.contains(&a("203.0.113.9")));
        assert!(!zero.contains(&a("::1")));
    }

    #[test]
    fn parse_errors_name_the_input() {
        for bad in [
            "",
            "10.0.0.256",
            "10.0.0.0/33",
            "::/129",
            "host",
            "10.0.0.0/x",
        ] {
            let e = bad.parse::<Prefix>().unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
        assert!("[2001:db8::1]".parse::<Prefix>().is_ok());
        assert!("[2001:db8::/48]".parse::<Prefix>().is_ok());
    }
}
