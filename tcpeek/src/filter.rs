//! Filter expressions: which handshakes are counted, and under which names.
//!
//! Syntax (the original's, plus bracketed IPv6):
//!
//! ```text
//! [NAME]:DIR@ADDR[/PREFIX]:PORT[:PORT...][,ADDR[/PREFIX]:PORT[:PORT...]...]
//! ```
//!
//! - `DIR` is `RX` (the SYN arrives for a local address; `ADDR` is matched
//!   against the remote client) or `TX` (the SYN leaves from a local
//!   address; `ADDR` is matched against the remote server).
//! - `ADDR` is `*` or `%` (any address of either family), an IPv4 address,
//!   or an IPv6 address in brackets: `[2001:db8::1]`, `[2001:db8::/32]`.
//! - `PORT` is `*`, `%` or 1-65535, matched against the server's port.
//! - An empty `NAME` makes an exclusion filter: a handshake matching any
//!   exclusion is not tracked at all, wherever it stands on the line.
//! - A handshake counts in every named filter it matches.
//!
//! `RX:RX@%:%` and `TX:TX@%:%` are always defined first.

use std::net::{IpAddr, Ipv4Addr};

use crate::event::Connection;
use crate::local::{Local, Prefix};

/// The syntax, quoted in every parse error.
pub const SYNTAX: &str = "[NAME]:RX|TX@ADDR[/PREFIX]:PORT[:PORT...][,ADDR[/PREFIX]:PORT...]";

/// The filters every instance has, before the user's.
pub const DEFAULT_FILTERS: [&str; 2] = ["RX:RX@%:%", "TX:TX@%:%"];

/// Which way the handshake goes, seen from this host.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Rx,
    Tx,
}

/// One `ADDR:PORT[:PORT...]` group.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    /// `None`: any address.
    addr: Option<Prefix>,
    /// `None`: any port.
    ports: Option<Vec<u16>>,
}

/// One parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// `None` for an exclusion filter.
    pub name: Option<String>,
    pub dir: Direction,
    groups: Vec<Group>,
}

/// Why a filter expression was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "filter '{expr}': {problem} (expected {SYNTAX}, e.g. web:RX@%:80:443 or :TX@[2001:db8::/32]:%)"
)]
pub struct FilterError {
    pub expr: String,
    pub problem: String,
}

impl Filter {
    /// Parses one expression.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let err = |problem: String| FilterError {
            expr: expr.to_string(),
            problem,
        };
        let (name, rest) = expr
            .split_once(':')
            .ok_or_else(|| err("no ':' after the filter name".into()))?;
        check_name(name).map_err(err)?;
        let (dir, groups) = rest
            .split_once('@')
            .ok_or_else(|| err("no '@' after the direction".into()))?;
        let dir = match dir {
            d if d.eq_ignore_ascii_case("RX") => Direction::Rx,
            d if d.eq_ignore_ascii_case("TX") => Direction::Tx,
            d => return Err(err(format!("direction '{d}' is not RX or TX"))),
        };
        let groups = groups
            .split(',')
            .map(|g| parse_group(g).map_err(&err))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            name: (!name.is_empty()).then(|| name.to_string()),
            dir,
            groups,
        })
    }

    /// Whether the handshake matches, given which of its ends are local.
    fn matches(&self, conn: &Connection, rx: bool, tx: bool) -> bool {
        let remote = match self.dir {
            Direction::Rx if rx => &conn.client,
            Direction::Tx if tx => &conn.server,
            _ => return false,
        };
        self.groups.iter().any(|g| {
            g.addr.is_none_or(|p| p.contains(&remote.addr))
                && g.ports
                    .as_ref()
                    .is_none_or(|ports| ports.contains(&conn.server.port))
        })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ',' | '"' | '\\' | '/'))
    {
        Some(c) => Err(format!(
            "the name '{name}' contains {c:?}; names may not contain spaces, control characters or @ , \" \\ /"
        )),
        None => Ok(()),
    }
}

fn parse_group(g: &str) -> Result<Group, String> {
    if g.is_empty() {
        return Err("an empty ADDR:PORT group (two commas, or a trailing comma)".into());
    }
    let (addr, ports) = if let Some(rest) = g.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{g}' opens '[' without closing ']'"))?;
        // Both [2001:db8::/32]:80 and [2001:db8::]/32:80 are accepted.
        let (prefix_len, after) = match after.strip_prefix('/') {
            Some(p) => match p.split_once(':') {
                Some((len, ports)) => (Some(len), ports),
                None => (Some(p), ""),
            },
            None => (
                None,
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("no ':PORT' after '[{inside}]'"))?,
            ),
        };
        let (ip, len) = match (inside.split_once('/'), prefix_len) {
            (Some(_), Some(_)) => return Err(format!("'{g}' has two prefix lengths")),
            (Some((ip, len)), None) => (ip, Some(len)),
            (None, len) => (inside, len),
        };
        let ip: IpAddr = ip
            .parse()
            .ok()
            .filter(IpAddr::is_ipv6)
            .ok_or_else(|| format!("'{ip}' in brackets is not an IPv6 address"))?;
        (Some(prefix(ip, len)?), after)
    } else {
        let (addr, ports) = g
            .split_once(':')
            .ok_or_else(|| format!("'{g}' has no ':PORT' (use ':%' for any port)"))?;
        let addr = if addr == "*" || addr == "%" {
            None
        } else {
            let (ip, len) = match addr.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (addr, None),
            };
            let ip: Ipv4Addr = ip.parse().map_err(|_| {
                let looks_v6 =
                    g.matches(':').count() >= 2 && ip.chars().all(|c| c.is_ascii_hexdigit());
                if looks_v6 {
                    format!("'{g}': write an IPv6 address in brackets, e.g. [2001:db8::1]:443")
                } else {
                    format!("'{ip}' is not an IPv4 address, '*' or '%'")
                }
            })?;
            Some(prefix(IpAddr::V4(ip), len)?)
        };
        (addr, ports)
    };
    Ok(Group {
        addr,
        ports: parse_ports(g, ports)?,
    })
}

fn prefix(ip: IpAddr, len: Option<&str>) -> Result<Prefix, String> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match len {
        None => Ok(Prefix::host(ip)),
        Some(len) => len
            .parse::<u8>()
            .ok()
            .and_then(|n| Prefix::new(ip, n))
            .ok_or_else(|| format!("prefix length '/{len}' is not 0-{max}")),
    }
}

fn parse_ports(g: &str, ports: &str) -> Result<Option<Vec<u16>>, String> {
    if ports.is_empty() {
        return Err(format!("'{g}' has no port (use '%' for any port)"));
    }
    let mut list = Vec::new();
    for p in ports.split(':') {
        match p {
            "*" | "%" => return Ok(None),
            p => match p.parse::<u16>() {
                Ok(n) if n > 0 => list.push(n),
                _ => return Err(format!("port '{p}' is not 1-65535, '*' or '%'")),
            },
        }
    }
    Ok(Some(list))
}

/// All filters plus the local addresses they are judged against: one set
/// per interface, in `-i` order ([`tcpeek_common::Event::iface`]).
#[derive(Clone, Debug)]
pub struct FilterSet {
    named: Vec<Filter>,
    exclusions: Vec<Filter>,
    /// Never empty.
    locals: Vec<Local>,
}

impl FilterSet {
    /// The default filters followed by `user`'s expressions, in order.
    pub fn parse<S: AsRef<str>>(user: &[S], local: Local) -> Result<FilterSet, FilterError> {
        let mut named: Vec<Filter> = Vec::new();
        let mut exclusions = Vec::new();
        for expr in DEFAULT_FILTERS
            .iter()
            .copied()
            .chain(user.iter().map(AsRef::as_ref))
        {
            let f = Filter::parse(expr)?;
            match &f.name {
                None => exclusions.push(f),
                Some(name) => {
                    if named.iter().any(|g| g.name.as_ref() == Some(name)) {
                        let why = if DEFAULT_FILTERS
                            .iter()
                            .any(|d| d.split(':').next() == Some(name))
                        {
                            " (RX and TX are always defined)"
                        } else {
                            ""
                        };
                        return Err(FilterError {
                            expr: expr.to_string(),
                            problem: format!("the name '{name}' is already used{why}"),
                        });
                    }
                    named.push(f);
                }
            }
        }
        Ok(FilterSet {
            named,
            exclusions,
            locals: vec![local],
        })
    }

    /// Judges each interface's traffic against its own local addresses:
    /// `locals[i]` for interface `i`. Empty leaves them as they were.
    pub fn with_interface_locals(mut self, locals: Vec<Local>) -> FilterSet {
        if !locals.is_empty() {
            self.locals = locals;
        }
        self
    }

    /// Named filters' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.iter().filter_map(|f| f.name.as_deref())
    }

    /// The local addresses of the first interface (of all, unless they
    /// were given per interface).
    pub fn local(&self) -> &Local {
        &self.locals[0]
    }

    /// Each interface's local addresses.
    pub fn locals(&self) -> &[Local] {
        &self.locals
    }

    /// Whether `conn`, captured on interface `iface`, is RX, TX (or both,
    /// when both ends are local).
    fn sides(&self, conn: &Connection, iface: u8) -> (bool, bool) {
        let local = self
            .locals
            .get(usize::from(iface))
            .unwrap_or(&self.locals[0]);
        (
            local.contains(&conn.server.addr),
            local.contains(&conn.client.addr),
        )
    }

    /// Whether the handshake should be tracked (it matches a named filter
    /// and no exclusion), as an admission tag for the engine: the set of
    /// named filters it matches, to be read back by
    /// [`FilterSet::for_each_in`] when it finishes.
    pub fn admit(&self, conn: &Connection, iface: u8) -> Option<u32> {
        let (rx, tx) = self.sides(conn, iface);
        if (!rx && !tx) || self.exclusions.iter().any(|f| f.matches(conn, rx, tx)) {
            return None;
        }
        if self.named.len() > 32 {
            // Too many for a bit set: recomputed at the end.
            return self
                .named
                .iter()
                .any(|f| f.matches(conn, rx, tx))
                .then_some(u32::MAX);
        }
        let mut set = 0u32;
        for (i, f) in self.named.iter().enumerate() {
            if f.matches(conn, rx, tx) {
                set |= 1 << i;
            }
        }
        (set != 0).then_some(set)
    }

    /// For each of this set's named filters (in [`FilterSet::names`]
    /// order), its index in `new` if `new` has it with the same name and
    /// definition: a reload keeps its counters.
    pub fn carried_into(&self, new: &FilterSet) -> Vec<Option<usize>> {
        self.named
            .iter()
            .map(|f| new.named.iter().position(|g| g == f))
            .collect()
    }

    /// The admission tag in `new` of a handshake admitted under this set
    /// with `tag`: the filters it was admitted under that `new` still has
    /// (`carried`, from [`FilterSet::carried_into`]). A handshake keeps
    /// the filters it was admitted under: it joins none of the new ones.
    /// (Beyond 32 named filters in `new`, tags are not kept and the
    /// filters are matched again when it ends.)
    pub fn retag(
        &self,
        new: &FilterSet,
        carried: &[Option<usize>],
        tag: u32,
        conn: &Connection,
        iface: u8,
    ) -> u32 {
        if new.named.len() > 32 {
            return u32::MAX;
        }
        let mut out = 0u32;
        self.for_each_in(tag, conn, iface, |i| {
            if let Some(j) = carried[i] {
                out |= 1 << j;
            }
        });
        out
    }

    /// Whether the handshake should be tracked.
    pub fn admits(&self, conn: &Connection, iface: u8) -> bool {
        self.admit(conn, iface).is_some()
    }

    /// Calls `each` with the index (in [`FilterSet::names`] order) of every
    /// named filter in `tag`, the handshake's admission tag.
    pub fn for_each_in(&self, tag: u32, conn: &Connection, iface: u8, mut each: impl FnMut(usize)) {
        if self.named.len() > 32 {
            return self.for_each_match(conn, iface, each);
        }
        let mut set = tag;
        while set != 0 {
            each(set.trailing_zeros() as usize);
            set &= set - 1;
        }
    }

    /// Calls `each` with the index (in [`FilterSet::names`] order) of every
    /// named filter the handshake counts in.
    pub fn for_each_match(&self, conn: &Connection, iface: u8, mut each: impl FnMut(usize)) {
        let (rx, tx) = self.sides(conn, iface);
        if (!rx && !tx) || self.exclusions.iter().any(|f| f.matches(conn, rx, tx)) {
            return;
        }
        for (i, f) in self.named.iter().enumerate() {
            if f.matches(conn, rx, tx) {
                each(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Addr, Endpoint};

    fn conn(client: &str, cport: u16, server: &str, sport: u16) -> Connection {
        let ep = |s: &str, p| Endpoint::new(Addr::from(s.parse::<IpAddr>().unwrap()), p);
        Connection {
            client: ep(client, cport),
            server: ep(server, sport),
        }
    }

    fn local(s: &[&str]) -> Local {
        Local::Prefixes(s.iter().map(|p| p.parse().unwrap()).collect())
    }

    fn matches(set: &FilterSet, c: &Connection) -> Vec<String> {
        let names: Vec<&str> = set.names().collect();
        let mut v = Vec::new();
        set.for_each_match(c, 0, |i| v.push(names[i].to_string()));
        // The admission tag read back names the same filters.
        let mut w = Vec::new();
        if let Some(tag) = set.admit(c, 0) {
            set.for_each_in(tag, c, 0, |i| w.push(names[i].to_string()));
        }
        assert_eq!(v, w);
        v
    }

    #[test]
    fn each_interface_is_judged_by_its_own_local_addresses() {
        let set = FilterSet::parse(&["web:RX@%:80"], local(&["10.0.0.1"]))
            .unwrap()
            .with_interface_locals(vec![local(&["10.0.0.1"]), local(&["10.1.0.1"])]);
        let to_first = conn("192.0.2.9", 40000, "10.0.0.1", 80);
        let to_second = conn("192.0.2.9", 40000, "10.1.0.1", 80);
        let names = |c: &Connection, iface: u8| {
            let n: Vec<&str> = set.names().collect();
            let mut v = Vec::new();
            set.for_each_match(c, iface, |i| v.push(n[i]));
            v
        };
        assert_eq!(names(&to_first, 0), ["RX", "web"]);
        assert_eq!(names(&to_second, 1), ["RX", "web"]);
        // An address of the other interface is not local on this one.
        assert!(names(&to_second, 0).is_empty());
        assert!(!set.admits(&to_first, 1));
        assert_eq!(set.locals().len(), 2);
    }

    fn problem(expr: &str) -> String {
        let e = Filter::parse(expr).unwrap_err();
        assert_eq!(e.expr, expr);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("'{expr}'")) && msg.contains(SYNTAX),
            "{msg}"
        );
        e.problem
    }

    mod parse {
        use super::*;

        #[test]
        fn the_originals_examples() {
            for e in [
                "filter:RX@%:80:443",
                "filter:TX@192.168.0.0/24:%",
                "filter1:RX@192.168.0.1:80",
                "filter:TX@192.168.0.1:80:443:8080,192.168.0.2:80,192.168.0.3:80:8080",
                ":RX@*:22",
                ":TX@*:22",
            ] {
                Filter::parse(e).unwrap_or_else(|err| panic!("{e}: {err}"));
            }
            assert_eq!(Filter::parse(":RX@*:22").unwrap().name, None);
        }

        #[test]
        fn ipv6_in_brackets() {
            let f = Filter::parse("web6:RX@[2001:db8::/32]:443:8443").unwrap();
            assert_eq!(f.groups[0].ports, Some(vec![443, 8443]));
            assert_eq!(f.groups[0].addr.unwrap().to_string(), "2001:db8::/32");
            let g = Filter::parse("web6:RX@[2001:db8::]/32:443").unwrap();
            assert_eq!(f.groups[0].addr, g.groups[0].addr);
            Filter::parse("a:TX@[::1]:%,10.0.0.0/8:22").unwrap();
        }

        #[test]
        fn every_error_names_the_problem() {
            let cases = [
                ("RX", "no ':' after the filter name"),
                ("x:RX", "no '@'"),
                ("x:UP@%:80", "direction 'UP' is not RX or TX"),
                ("x:RX@%", "has no ':PORT'"),
                ("x:RX@%:", "has no port"),
                ("x:RX@%:0", "port '0' is not 1-65535"),
                ("x:RX@%:65536", "port '65536'"),
                ("x:RX@%:http", "port 'http'"),
                ("x:RX@%:80,", "empty ADDR:PORT group"),
                ("x:RX@,%:80", "empty ADDR:PORT group"),
                ("x:RX@10.0.0.256:80", "'10.0.0.256' is not an IPv4 address"),
                ("x:RX@10.0.0.0/33:80", "'/33' is not 0-32"),
                ("x:RX@10.0.0.0/:80", "'/' is not 0-32"),
                ("x:RX@2001:db8::1:80", "write an IPv6 address in brackets"),
                // Hex digits but one colon: a bad IPv4 address, not IPv6.
                ("x:RX@abc:80", "'abc' is not an IPv4 address"),
                // Two colons but not hex: not IPv6 either.
                ("x:RX@host:80:443", "'host' is not an IPv4 address"),
                ("x:RX@[2001:db8::1:80", "without closing ']'"),
                ("x:RX@[10.0.0.1]:80", "is not an IPv6 address"),
                ("x:RX@[::1]", "no ':PORT' after '[::1]'"),
                ("x:RX@[::/129]:80", "'/129' is not 0-128"),
                ("x:RX@[::/64]/64:80", "two prefix lengths"),
                ("a b:RX@%:80", "contains ' '"),
                ("a/b:RX@%:80", "contains '/'"),
            ];
            for (expr, want) in cases {
                let p = problem(expr);
                assert!(p.contains(want), "{expr}: got {p:?}, want {want:?}");
            }
        }

        #[test]
        fn duplicate_names_are_refused() {
            let e = FilterSet::parse(&["RX:RX@%:80"], Local::Everything).unwrap_err();
            assert!(e.problem.contains("RX and TX are always defined"), "{e}");
            let e = FilterSet::parse(&["a:RX@%:80", "a:TX@%:80"], Local::Everything).unwrap_err();
            assert_eq!(e.expr, "a:TX@%:80");
            assert_eq!(e.problem, "the name 'a' is already used");
        }

        #[test]
        fn defaults_come_first() {
            let set = FilterSet::parse(&["web:RX@%:80", ":RX@%:22"], Local::Everything).unwrap();
            assert_eq!(set.names().collect::<Vec<_>>(), ["RX", "TX", "web"]);
        }
    }

    mod matching {
        use super::*;

        #[test]
        fn rx_matches_the_client_and_server_port() {
            let set = FilterSet::parse(
                &["lan:RX@192.168.0.0/24:80:443", "other:RX@10.0.0.9:%"],
                local(&["192.168.0.1"]),
            )
            .unwrap();
            let c = conn("192.168.0.7", 50000, "192.168.0.1", 443);
            assert_eq!(matches(&set, &c), ["RX", "lan"]);
            assert!(set.admits(&c, 0));
            let c = conn("192.168.0.7", 50000, "192.168.0.1", 22);
            assert_eq!(matches(&set, &c), ["RX"]);
            let c = conn("10.0.0.9", 80, "192.168.0.1", 8080);
            assert_eq!(matches(&set, &c), ["RX", "other"]);
        }

        #[test]
        fn tx_matches_the_server() {
            let set =
                FilterSet::parse(&["out:TX@203.0.113.0/24:%"], local(&["192.168.0.1"])).unwrap();
            let c = conn("192.168.0.1", 40000, "203.0.113.5", 5432);
            assert_eq!(matches(&set, &c), ["TX", "out"]);
            // Not local at all: nothing.
            let c = conn("198.51.100.1", 40000, "203.0.113.5", 5432);
            assert!(matches(&set, &c).is_empty());
            assert!(!set.admits(&c, 0));
        }

        #[test]
        fn exclusions_win_whatever_their_position() {
            let set = FilterSet::parse(
                &[":RX@*:22", "ssh:RX@%:22", ":TX@*:22"],
                local(&["10.0.0.1"]),
            )
            .unwrap();
            let c = conn("10.0.0.2", 40000, "10.0.0.1", 22);
            assert!(!set.admits(&c, 0));
            assert!(matches(&set, &c).is_empty());
            let c = conn("10.0.0.2", 40000, "10.0.0.1", 80);
            assert!(set.admits(&c, 0));
        }

        #[test]
        fn several_groups() {
            let set = FilterSet::parse(
                &["f:TX@192.168.0.1:80:443:8080,192.168.0.2:80,192.168.0.3:80:8080"],
                local(&["10.0.0.1"]),
            )
            .unwrap();
            let m = |server, port| {
                matches(&set, &conn("10.0.0.1", 1, server, port)).contains(&"f".to_string())
            };
            assert!(m("192.168.0.1", 8080));
            assert!(m("192.168.0.2", 80));
            assert!(!m("192.168.0.2", 443));
            assert!(m("192.168.0.3", 8080));
            assert!(!m("192.168.0.4", 80));
        }

        #[test]
        fn wildcards_match_both_families_prefixes_only_their_own() {
            let set = FilterSet::parse(
                &["v6:RX@[2001:db8::/32]:443", "v4:RX@0.0.0.0/0:443"],
                local(&["2001:db8::1", "10.0.0.1"]),
            )
            .unwrap();
            assert_eq!(
                matches(&set, &conn("2001:db8:1::5", 1, "2001:db8::1", 443)),
                ["RX", "v6"]
            );
            assert_eq!(
                matches(&set, &conn("10.9.9.9", 1, "10.0.0.1", 443)),
                ["RX", "v4"]
            );
        }

        #[test]
        fn everything_local_counts_both_ways() {
            let set = FilterSet::parse::<&str>(&[], Local::Everything).unwrap();
            assert_eq!(
                matches(&set, &conn("10.0.0.2", 1, "10.0.0.1", 80)),
                ["RX", "TX"]
            );
        }

        #[test]
        fn exactly_32_named_filters_fit_the_admission_tag() {
            // RX, TX and 30 more: the largest set a 32-bit tag holds. A
            // handshake must count in the filters it matches, not all 32.
            let exprs: Vec<String> = (1..=30).map(|p| format!("f{p}:RX@%:{p}")).collect();
            let set = FilterSet::parse(&exprs, local(&["10.0.0.1"])).unwrap();
            assert_eq!(set.names().count(), 32);
            assert_eq!(
                matches(&set, &conn("10.0.0.2", 1, "10.0.0.1", 30)),
                ["RX", "f30"]
            );
        }

        #[test]
        fn more_than_32_filters_are_recomputed() {
            let exprs: Vec<String> = (1..=40).map(|p| format!("f{p}:RX@%:{p}")).collect();
            let set = FilterSet::parse(&exprs, local(&["10.0.0.1"])).unwrap();
            assert_eq!(
                matches(&set, &conn("10.0.0.2", 1, "10.0.0.1", 39)),
                ["RX", "f39"]
            );
        }

        #[test]
        fn a_connection_between_two_local_addresses_is_both() {
            let set = FilterSet::parse::<&str>(&[], local(&["10.0.0.0/24"])).unwrap();
            assert_eq!(
                matches(&set, &conn("10.0.0.2", 1, "10.0.0.1", 80)),
                ["RX", "TX"]
            );
        }
    }
}
