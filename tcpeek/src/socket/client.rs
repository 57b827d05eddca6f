//! `tcpeekstat`'s side of the socket: ask a running tcpeek for its counters,
//! check the reply's shape, and render it as a table, as compact JSON or as
//! Ganglia `gmetric` calls.
//!
//! The reply is parsed into ordered lists, not maps, because the order is
//! meaningful (filters in command-line order, `success` before `failure`,
//! `total` first) and serde_json's own maps would sort the keys.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::Request;
use crate::output::latency::human;
use crate::stats::histogram::{Latency, LogHistogram};

/// How long `tcpeekstat` waits for the whole exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where `tcpeekstat -g` finds Ganglia's `gmetric` (the original's path).
pub const DEFAULT_GMETRIC: &str = "/usr/bin/gmetric";

/// Items that `-g` reports, as the original's tcpeekstat does.
pub const GMETRIC_ITEMS: [&str; 4] = ["reject", "timeout", "dupsyn", "dupsynack"];

/// A real reply is a few hundred bytes per filter; anything far larger is
/// not tcpeek, and reading it whole would only waste memory.
const MAX_REPLY: usize = 16 << 20;

/// How much of a bad reply an error message shows.
const PREFIX_CHARS: usize = 80;

/// Why `tcpeekstat` got no usable answer. Every message names the socket.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no tcpeek is listening on {} (connection refused)", path.display())]
    NotListening { path: PathBuf },
    #[error("no tcpeek is listening on {} (no such file; is tcpeek running, and with this -U?)", path.display())]
    NoSocket { path: PathBuf },
    #[error("permission denied connecting to {} (run as root or as the daemon's user or group)", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("tcpeek on {} is too busy to accept a connection", path.display())]
    Busy { path: PathBuf },
    #[error("cannot connect to {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no reply from {} within {} s", path.display(), timeout.as_secs_f64())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("lost the connection to tcpeek on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} closed the connection without replying (too busy, or not a tcpeek socket?)", path.display())]
    EmptyReply { path: PathBuf },
    #[error("the reply from {} is larger than {} MiB; not a tcpeek reply", path.display(), MAX_REPLY >> 20)]
    TooLarge { path: PathBuf },
    #[error("the reply from {} is not the expected JSON array of counters (it starts {prefix:?})", path.display())]
    BadReply {
        path: PathBuf,
        prefix: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    #[error("cannot start the tokio runtime")]
    Runtime(#[source] io::Error),
    #[error("cannot run {}", bin.display())]
    GmetricSpawn {
        bin: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} failed for {failed} of {total} metrics (first: {first}, {status})", bin.display())]
    GmetricFailed {
        bin: PathBuf,
        failed: usize,
        total: usize,
        first: String,
        status: ExitStatus,
    },
}

/// Sends `request` to the tcpeek at `path` and returns its reply, all within
/// `timeout`.
pub async fn query(
    path: &Path,
    request: Request,
    timeout: Duration,
) -> Result<String, ClientError> {
    match tokio::time::timeout(timeout, exchange(path, request)).await {
        Ok(reply) => reply,
        Err(_) => Err(ClientError::Timeout {
            path: path.to_owned(),
            timeout,
        }),
    }
}

/// [`query`] for callers outside a tokio runtime (it starts its own).
pub fn query_blocking(
    path: &Path,
    request: Request,
    timeout: Duration,
) -> Result<String, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ClientError::Runtime)?;
    rt.block_on(query(path, request, timeout))
}

async fn exchange(path: &Path, request: Request) -> Result<String, ClientError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|e| connect_error(path, e))?;
    let io_err = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    stream.write_all(request.wire()).await.map_err(io_err)?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_REPLY as u64 + 1)
        .read_to_end(&mut reply)
        .await
        .map_err(io_err)?;
    if reply.is_empty() {
        return Err(ClientError::EmptyReply {
            path: path.to_owned(),
        });
    }
    if reply.len() > MAX_REPLY {
        return Err(ClientError::TooLarge {
            path: path.to_owned(),
        });
    }
    String::from_utf8(reply).map_err(|e| ClientError::BadReply {
        path: path.to_owned(),
        prefix: prefix(&String::from_utf8_lossy(e.as_bytes())),
        source: None,
    })
}

fn connect_error(path: &Path, source: io::Error) -> ClientError {
    let path = path.to_owned();
    match source.kind() {
        io::ErrorKind::ConnectionRefused => ClientError::NotListening { path },
        io::ErrorKind::NotFound => ClientError::NoSocket { path },
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path },
        // A non-blocking connect to a listener whose backlog is full.
        io::ErrorKind::WouldBlock => ClientError::Busy { path },
        _ => ClientError::Connect { path, source },
    }
}

fn prefix(s: &str) -> String {
    s.chars().take(PREFIX_CHARS).collect()
}

/// Parses a reply, naming `path` in the error.
pub fn parse_reply(path: &Path, reply: &str) -> Result<Stats, ClientError> {
    Stats::parse(reply).map_err(|e| ClientError::BadReply {
        path: path.to_owned(),
        prefix: prefix(reply),
        source: Some(e),
    })
}

/// Parses a `GET_LATENCY` reply: each filter's [`Latency`], in order.
pub fn parse_latency(path: &Path, reply: &str) -> Result<Vec<(String, Latency)>, ClientError> {
    let v: Vec<std::collections::BTreeMap<String, Latency>> =
        serde_json::from_str(reply).map_err(|e| ClientError::BadReply {
            path: path.to_owned(),
            prefix: prefix(reply),
            source: Some(e),
        })?;
    Ok(v.into_iter().flatten().collect())
}

/// One sample of a daemon for `tcpeekstat -w`: its counters and latency.
#[derive(Clone, Debug)]
pub struct Sample {
    pub stats: Stats,
    pub latency: Vec<(String, LogHistogram)>,
}

impl Sample {
    pub fn new(stats: Stats, latency: &[(String, Latency)]) -> Sample {
        Sample {
            stats,
            latency: latency
                .iter()
                .map(|(n, l)| (n.clone(), LogHistogram::from_slots(&l.slots)))
                .collect(),
        }
    }
}

/// The header of `tcpeekstat -w`'s lines.
pub const WATCH_HEADER: &str =
    "FILTER           HS/S   FAIL/S  RESET/S TIMEOUT/S UNREACH/S      P99";

/// One line per filter of what happened between two samples `secs`
/// apart: handshakes finished per second, failures per second in all and
/// by kind, and the p99 latency of the handshakes established in between.
pub fn watch_lines(before: &Sample, now: &Sample, secs: f64) -> Vec<String> {
    let secs = secs.max(1e-3);
    let mut lines = Vec::new();
    for (name, hist) in &now.latency {
        let delta = |section: &str, item: &str| {
            let v = |s: &Stats| s.item(name, section, item).unwrap_or(0);
            v(&now.stats).saturating_sub(v(&before.stats)) as f64 / secs
        };
        let ok = delta("success", "total");
        let failed = delta("failure", "total");
        let p99 = before
            .latency
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| hist.clone(), |(_, h)| hist.since(h))
            .quantile(0.99)
            .map_or_else(|| "-".to_string(), human);
        lines.push(format!(
            "{name:<12} {:>8.1} {failed:>8.1} {:>8.1} {:>9.1} {:>9.1} {p99:>8}",
            ok + failed,
            delta("failure", "reject"),
            delta("failure", "timeout"),
            delta("failure", "unreach"),
        ));
    }
    lines
}

/// A reply: `[{"FILTER":{"SECTION":{"ITEM":N,..},..}},..]`, in wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub filters: Vec<FilterStats>,
}

/// One element of the reply: a named filter (or `pcap`) and its sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterStats {
    pub name: String,
    pub sections: Vec<Section>,
}

/// A section (`success`, `failure`, `stats`) and its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub items: Vec<(String, u64)>,
}

impl Stats {
    /// Parses a `GET` or `REFRESH` reply. Any other shape is an error, so
    /// that a foreign socket is reported rather than half-printed.
    pub fn parse(reply: &str) -> Result<Stats, serde_json::Error> {
        let filters: Vec<FilterStats> = serde_json::from_str(reply)?;
        Ok(Stats { filters })
    }

    /// The value of `filter`'s `section`.`item`.
    pub fn item(&self, filter: &str, section: &str, item: &str) -> Option<u64> {
        let f = self.filters.iter().find(|f| f.name == filter)?;
        let s = f.sections.iter().find(|s| s.name == section)?;
        s.items.iter().find(|(n, _)| n == item).map(|(_, v)| *v)
    }

    /// The reply as compact JSON on one line, in the server's order.
    pub fn to_json(&self) -> String {
        // Serializing strings and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A human-readable table: each filter's name on its own line, then one
    /// indented line per counter, the columns aligned across the table.
    ///
    /// ```text
    /// RX
    ///   success  total        12
    ///            dupsyn        0
    /// ```
    pub fn render_table(&self) -> String {
        let sections = || self.filters.iter().flat_map(|f| &f.sections);
        let items = || sections().flat_map(|s| &s.items);
        let sw = sections()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let iw = items().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
        let vw = items().map(|(_, v)| v.to_string().len()).max().unwrap_or(0);
        let mut out = String::new();
        for filter in &self.filters {
            out.push_str(&filter.name);
            out.push('\n');
            for section in &filter.sections {
                for (i, (item, value)) in section.items.iter().enumerate() {
                    let label = if i == 0 { section.name.as_str() } else { "" };
                    out.push_str(&format!("  {label:<sw$}  {item:<iw$}  {value:>vw$}\n"));
                }
            }
        }
        out
    }

    /// The `(metric name, value)` pairs `-g` reports:
    /// `tcpeek_<filter>_<section>_<item>` for every item in [`GMETRIC_ITEMS`].
    pub fn gmetrics(&self) -> Vec<(String, u64)> {
        let mut metrics = Vec::new();
        for filter in &self.filters {
            for section in &filter.sections {
                for (item, value) in &section.items {
                    if GMETRIC_ITEMS.contains(&item.as_str()) {
                        let name = format!("tcpeek_{}_{}_{}", filter.name, section.name, item);
                        metrics.push((name, *value));
                    }
                }
            }
        }
        metrics
    }
}

/// Runs `BIN -n NAME -v VALUE -t uint32` for each metric of
/// [`Stats::gmetrics`] (the original's invocation). A metric that gmetric
/// rejects does not stop the others; it is reported at the end. Returns how
/// many metrics were sent.
pub fn send_gmetrics(bin: &Path, stats: &Stats) -> Result<usize, ClientError> {
    let metrics = stats.gmetrics();
    let mut failed: Vec<(String, ExitStatus)> = Vec::new();
    for (name, value) in &metrics {
        let status = Command::new(bin)
            .args(["-n", name, "-v", &value.to_string(), "-t", "uint32"])
            .status()
            .map_err(|source| ClientError::GmetricSpawn {
                bin: bin.to_owned(),
                source,
            })?;
        if !status.success() {
            failed.push((name.clone(), status));
        }
    }
    match failed.first() {
        None => Ok(metrics.len()),
        Some((first, status)) => Err(ClientError::GmetricFailed {
            bin: bin.to_owned(),
            failed: failed.len(),
            total: metrics.len(),
            first: first.clone(),
            status: *status,
        }),
    }
}

/// A JSON object read as `(key, value)` pairs in document order.
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }

        d.deserialize_map(OrderedVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for FilterStats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Ordered(mut entries) = Ordered::<Ordered<Ordered<u64>>>::deserialize(d)?;
        if entries.len() != 1 {
            return Err(de::Error::custom(format_args!(
                "expected an object with exactly one filter name, found {} keys",
                entries.len()
            )));
        }
        let Some((name, Ordered(sections))) = entries.pop() else {
            return Err(de::Error::custom("empty filter object"));
        };
        Ok(FilterStats {
            name,
            sections: sections
                .into_iter()
                .map(|(name, Ordered(items))| Section { name, items })
                .collect(),
        })
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.filters.len()))?;
        for f in &self.filters {
            seq.serialize_element(f)?;
        }
        seq.end()
    }
}

impl Serialize for FilterStats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Sections<'a>(&'a [Section]);
        struct Items<'a>(&'a [(String, u64)]);

        impl Serialize for Sections<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for section in self.0 {
                    m.serialize_entry(&section.name, &Items(&section.items))?;
                }
                m.end()
            }
        }

        impl Serialize for Items<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }

        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&self.name, &Sections(&self.sections))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = concat!(
        r#"[{"RX":{"success":{"total":12,"dupsyn":0,"dupsynack":1},"#,
        r#""failure":{"total":3,"timeout":1,"reject":2,"unreach":0}}},"#,
        r#"{"pcap":{"stats":{"recv":1234,"drop":0,"ifdrop":0}}}]"#
    );

    #[test]
    fn a_reply_keeps_the_servers_order() {
        let stats = Stats::parse(GET).unwrap();
        assert_eq!(stats.filters.len(), 2);
        assert_eq!(stats.filters[0].name, "RX");
        assert_eq!(stats.filters[0].sections[0].name, "success");
        assert_eq!(stats.filters[0].sections[1].items[0], ("total".into(), 3));
        assert_eq!(stats.to_json(), GET);
    }

    #[test]
    fn the_table_is_aligned() {
        let table = Stats::parse(GET).unwrap().render_table();
        assert_eq!(
            table,
            concat!(
                "RX\n",
                "  success  total        12\n",
                "           dupsyn        0\n",
                "           dupsynack     1\n",
                "  failure  total         3\n",
                "           timeout       1\n",
                "           reject        2\n",
                "           unreach       0\n",
                "pcap\n",
                "  stats    recv       1234\n",
                "           drop          0\n",
                "           ifdrop        0\n",
            )
        );
    }

    #[test]
    fn gmetric_names_follow_the_original() {
        let refresh = concat!(
            r#"[{"RX":{"success":{"total":1,"dupsyn":2,"dupsynack":3},"#,
            r#""failure":{"total":4,"timeout":5,"reject":6}}}]"#
        );
        let metrics = Stats::parse(refresh).unwrap().gmetrics();
        let expected = [
            ("tcpeek_RX_success_dupsyn", 2),
            ("tcpeek_RX_success_dupsynack", 3),
            ("tcpeek_RX_failure_timeout", 5),
            ("tcpeek_RX_failure_reject", 6),
        ];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        assert_eq!(metrics, expected);
    }

    #[test]
    fn foreign_replies_are_rejected() {
        for bad in [
            "",
            "HTTP/1.0 400 Bad Request\r\n",
            "{}",
            r#"[{"RX":1}]"#,
            r#"[{"RX":{"success":{"total":-1}}}]"#,
            r#"[{"RX":{},"TX":{}}]"#,
            r#"[{}]"#,
            r#"[] trailing"#,
        ] {
            assert!(Stats::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(Stats::parse("[]\n").unwrap().filters, vec![]);
    }

    #[test]
    fn a_bad_reply_error_shows_its_start() {
        let long = "x".repeat(500);
        let err = parse_reply(Path::new("/s.sock"), &long).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("the reply from /s.sock is not the expected JSON"),
            "{msg}"
        );
        assert!(msg.contains(&"x".repeat(PREFIX_CHARS)));
        assert!(!msg.contains(&"x".repeat(PREFIX_CHARS + 1)));
    }

    #[test]
    fn connect_errors_say_what_to_check() {
        let p = Path::new("/run/t.sock");
        let refused = connect_error(p, io::ErrorKind::ConnectionRefused.into());
        assert_eq!(
            refused.to_string(),
            "no tcpeek is listening on /run/t.sock (connection refused)"
        );
        let missing = connect_error(p, io::ErrorKind::NotFound.into()).to_string();
        assert!(missing.contains("(no such file"), "{missing}");
        let denied = connect_error(p, io::ErrorKind::PermissionDenied.into()).to_string();
        assert!(denied.starts_with("permission denied connecting to /run/t.sock"));
    }
}
