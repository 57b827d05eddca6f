//! A typed view of [`tcpeek_common::Event`] for the stages after capture.
//!
//! The shared event type is plain bytes so that the kernel can write it; this
//! module gives the rest of the program addresses it can compare and print.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tcpeek_common::{Event, FAMILY_V6};

/// An IPv4 or IPv6 address as stored in an event: 16 bytes in network order,
/// IPv4 in the first four. Cheap to copy, compare and hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Addr {
    bytes: [u8; 16],
    v6: bool,
}

impl Addr {
    /// The source address of `ev`.
    pub fn src(ev: &Event) -> Addr {
        Addr {
            bytes: ev.saddr,
            v6: ev.family == FAMILY_V6,
        }
    }

    /// The destination address of `ev`.
    pub fn dst(ev: &Event) -> Addr {
        Addr {
            bytes: ev.daddr,
            v6: ev.family == FAMILY_V6,
        }
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The address as 16 bytes (IPv4 in the first four).
    pub fn bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    pub fn ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.bytes))
        } else {
            let [a, b, c, d, ..] = self.bytes;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => {
                let mut bytes = [0; 16];
                bytes[..4].copy_from_slice(&v4.octets());
                Addr { bytes, v6: false }
            }
            IpAddr::V6(v6) => Addr {
                bytes: v6.octets(),
                v6: true,
            },
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ip().fmt(f)
    }
}

/// One end of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Endpoint {
    pub addr: Addr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(addr: Addr, port: u16) -> Endpoint {
        Endpoint { addr, port }
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr.ip(), self.port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.socket_addr().fmt(f)
    }
}

/// A handshake's identity: who sent the opening SYN to whom.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Connection {
    pub client: Endpoint,
    pub server: Endpoint,
}

/// The source and destination endpoints of `ev`.
pub fn endpoints(ev: &Event) -> (Endpoint, Endpoint) {
    (
        Endpoint::new(Addr::src(ev), ev.sport),
        Endpoint::new(Addr::dst(ev), ev.dport),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_both_families() {
        for s in ["192.0.2.7", "2001:db8::1"] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(Addr::from(ip).ip(), ip);
            assert_eq!(Addr::from(ip).to_string(), s);
        }
    }

    #[test]
    fn v4_and_v6_with_equal_bytes_differ() {
        let v4 = Addr::from(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let v6 = Addr::from(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_ne!(v4, v6);
    }
}
