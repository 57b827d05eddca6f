//! The command lines: tcpeek's, a clap struct that mirrors the flags, then
//! one conversion into a validated [`Config`] (parsed filters, resolved
//! interface and local addresses) before anything starts; and
//! `tcpeekstat`'s ([`StatArgs`]). Both are here so that their man pages
//! and completions ([`docs`]) are generated from the definitions.

pub mod docs;
pub mod file;

pub use file::{parse_args, ArgsError};

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

use crate::capture::decode::ChecksumMode;
use crate::engine::EngineConfig;
use crate::filter::{FilterError, FilterSet};
use crate::local::{Local, Prefix};
use crate::stats::histogram::Buckets;

use crate::socket::client::DEFAULT_GMETRIC;
/// The original's default socket path.
pub use crate::socket::DEFAULT_SOCKET_PATH as DEFAULT_SOCKET;
use crate::socket::DEFAULT_SOCKET_PATH;

/// Default bound on tracked handshakes. A tracked handshake costs about 145
/// bytes in the table (BENCHMARKS.md), so the table stays under 290 MB even
/// when a SYN flood fills it.
pub const DEFAULT_MAX_SESSIONS: usize = 2_000_000;

/// The longest `-t` the eBPF backend takes: its classifier stops waiting
/// for an ACK 180 s after the handshake's last SYN/ACK.
pub const EBPF_MAX_TIMEOUT_S: u64 = 180;

/// Most interfaces one daemon watches (`-i` repeated): an event names its
/// interface in a byte.
pub const MAX_INTERFACES: usize = 64;

/// libpcap's kernel buffer without `-B`, in MiB (the original's default).
pub const DEFAULT_BUFFER_MB: u32 = 2;

/// The eBPF ring buffer without `-B`, in MiB: 262,144 events, a quarter of
/// a second of a million events a second. The reader drains it every 10 ms
/// and is woken at a quarter full; the rest absorbs the reader losing its
/// CPU to the traffic it watches (a 2 MiB ring lost 0.5% of a 1.1M-packet/s
/// SYN flood on a 2-core machine, `cargo xtask bench-load`).
pub const DEFAULT_RING_MB: u32 = 16;

#[derive(Parser, Debug)]
#[command(
    name = "tcpeek",
    version,
    disable_version_flag = true,
    about = "Passive monitor of TCP three-way handshakes: which connections fail, how, and which needed retransmissions.",
    after_help = "\
expression:
  [NAME]:DIR@ADDR[/PREFIX]:PORT[:PORT...][,ADDR[/PREFIX]:PORT[:PORT...]...]
  DIR is RX or TX; ADDR and PORT may be '%' or '*' (any); IPv6 in brackets.
  An empty NAME excludes matching handshakes from every filter.
  The filters RX:RX@%:% and TX:TX@%:% are always defined first.
examples:
  tcpeek -i eth0 web:RX@%:80:443
  tcpeek -i eth0 -i eth1 db:TX@192.168.0.0/24:5432 web6:RX@[2001:db8::/32]:443 :RX@%:22
  tcpeek -r capture.pcap --local 192.0.2.10
  tcpeek --config /etc/tcpeek/tcpeek.toml -i eth0
signals:
  SIGINT, SIGTERM  print the summary and exit
  SIGUSR1          print the summary so far and go on
  SIGHUP           read the --config file again: filters, local addresses, log level
files:
  /etc/tcpeek/tcpeek.toml   the packaged unit's config file (every key shown)
  /run/tcpeek/IFACE.sock    the packaged unit's socket"
)]
pub struct Args {
    /// Read options and filters from this TOML file (README, "Config
    /// file"); the command line overrides it, and SIGHUP reads it again.
    /// Given twice, the last one is read.
    #[arg(long = "config", value_name = "FILE", overrides_with = "config")]
    pub config: Option<PathBuf>,

    /// Drop privileges to this user once the capture is open.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,

    /// Interface to watch, repeatable: one daemon for all of them
    /// (default: libpcap's default device).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "DEV",
        conflicts_with = "read"
    )]
    pub interface: Vec<String>,

    /// UNIX socket serving the counters [default: /var/run/tcpeek/tcpeek.sock;
    /// none with -r].
    #[arg(short = 'U', long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Checksum verification: 0 none, 1 IP header, 2 IP and TCP/ICMP.
    #[arg(short = 'c', long = "checksum", value_name = "0|1|2", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub checksum: u8,

    /// Seconds without an acceptable segment after which a handshake times out.
    #[arg(short = 't', long = "timeout", value_name = "SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// libpcap buffer size in MB [default: 2]; for eBPF, the ring buffer
    /// size, rounded up to a power of two [default: 16].
    #[arg(short = 'B', long = "buffer", value_name = "MB",
          value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub buffer: Option<u32>,

    /// Log level, a syslog level name or number (emerg..debug, 0-7).
    #[arg(short = 'l', long = "loglevel", value_name = "LEVEL", default_value = "notice",
          value_parser = parse_loglevel)]
    pub loglevel: log::LevelFilter,

    /// Do not print a line per finished handshake.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Put the interface in promiscuous mode.
    #[arg(long = "promisc")]
    pub promisc: bool,

    /// Count ICMP/ICMPv6 destination-unreachable as a failure (unreach).
    #[arg(long = "icmp")]
    pub icmp: bool,

    /// Read a pcap or pcapng file instead of an interface.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// An address or prefix of this host, for RX/TX (repeatable). Default:
    /// the interface's addresses; with -r: every address (each handshake
    /// counts as both RX and TX).
    #[arg(long = "local", value_name = "ADDR[/PREFIX]")]
    pub local: Vec<Prefix>,

    /// Capture backend.
    #[arg(long = "backend", value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// eBPF backend: watch ingress with XDP instead of TC (egress stays TC).
    #[arg(long = "xdp")]
    pub xdp: bool,

    /// Print JSON Lines on stdout: one object per finished handshake, and at
    /// exit the array the socket's GET returns.
    #[arg(long = "json")]
    pub json: bool,

    /// Most handshakes tracked at once; further SYNs are counted as overflow.
    #[arg(long = "max-sessions", value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS,
          value_parser = parse_max_sessions)]
    pub max_sessions: usize,

    /// Serve Prometheus metrics on this address: GET /metrics (e.g.
    /// 127.0.0.1:9381, [::]:9381).
    #[arg(long = "metrics", value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// Bounds of the latency histograms, in seconds, ascending
    /// [default: 0.0001,0.00025,0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,
    /// 0.1,0.25,0.5,0.9,1.9,3.9,7.9,15.9,31.9,63.9,127.9].
    #[arg(long = "metrics-buckets", value_name = "SEC,SEC,...",
          value_parser = parse_buckets)]
    pub metrics_buckets: Option<Buckets>,

    /// Push the metrics as OTLP (HTTP, protobuf) to this collector every
    /// --otlp-interval and at the end of the run: http://HOST[:PORT][/PATH],
    /// the path defaulting to /v1/metrics.
    #[arg(long = "otlp", value_name = "URL", value_parser = parse_otlp)]
    pub otlp: Option<OtlpTarget>,

    /// Seconds between OTLP pushes.
    #[arg(long = "otlp-interval", value_name = "SEC", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub otlp_interval: u64,

    /// At the end of a capture file (-r), write the metrics to this file
    /// as OpenMetrics with the file's last packet time as the timestamp
    /// (for `promtool tsdb create-blocks-from openmetrics`).
    #[arg(long = "metrics-file", value_name = "PATH", requires = "read")]
    pub metrics_file: Option<PathBuf>,

    /// Validate everything (flags, filters, the file or the interface, the
    /// metrics port) and exit 0, or 1 with the errors, without capturing.
    #[arg(long = "check")]
    pub check: bool,

    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,

    /// Filter expressions.
    #[arg(value_name = "EXPRESSION")]
    pub expressions: Vec<String>,
}

/// Print the handshake counters of a running tcpeek.
///
/// Without options, prints every filter's totals since tcpeek started as a
/// table.
#[derive(Debug, Parser)]
#[command(name = "tcpeekstat", version, disable_version_flag = true)]
pub struct StatArgs {
    /// The daemon's UNIX socket.
    #[arg(short = 'U', long = "socket", value_name = "PATH", default_value = DEFAULT_SOCKET_PATH)]
    pub socket: PathBuf,

    /// Print the totals as one line of compact JSON (the socket's reply).
    #[arg(short, long, conflicts_with = "gmetric")]
    pub json: bool,

    /// Send the change since the previous -g (a REFRESH) to Ganglia: run
    /// gmetric for every reject, timeout, dupsyn and dupsynack counter.
    #[arg(short, long)]
    pub gmetric: bool,

    /// Print each filter's handshake latency: p50, p90, p99 and a log2
    /// histogram (GET_LATENCY; with -j, its JSON).
    #[arg(short = 'L', long, conflicts_with = "gmetric")]
    pub latency: bool,

    /// Watch: every SEC seconds, print one line per filter with its
    /// handshakes, failures (in all and by kind) per second and the p99
    /// latency over the interval, until interrupted.
    #[arg(short = 'w', long, value_name = "SEC", conflicts_with_all = ["gmetric", "json", "latency"],
          value_parser = parse_interval)]
    pub watch: Option<f64>,

    /// The gmetric program run by -g.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_GMETRIC)]
    pub gmetric_bin: PathBuf,

    /// Print the version and exit.
    #[arg(short = 'v', long, action = ArgAction::Version)]
    pub version: Option<bool>,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from 0.1 to 86400"
        )),
    }
}

/// Which capture backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The best one available.
    Auto,
    /// libpcap.
    Pcap,
    /// eBPF (TC/XDP).
    Ebpf,
}

fn parse_loglevel(s: &str) -> Result<log::LevelFilter, String> {
    let name = s.to_ascii_lowercase();
    let name = name.strip_prefix("log_").unwrap_or(&name);
    Ok(match name {
        "0" | "emerg" | "1" | "alert" | "2" | "crit" | "3" | "err" | "error" => log::LevelFilter::Error,
        "4" | "warning" | "warn" => log::LevelFilter::Warn,
        "5" | "notice" | "6" | "info" => log::LevelFilter::Info,
        "7" | "debug" => log::LevelFilter::Debug,
        _ => {
            return Err(format!(
                "'{s}' is not a syslog level (emerg, alert, crit, err, warning, notice, info, debug or 0-7)"
            ))
        }
    })
}

/// Where `--otlp` pushes.
#[cfg(feature = "otlp")]
pub type OtlpTarget = crate::metrics::otlp::Target;
/// Where `--otlp` pushes (this build has no OTLP).
#[cfg(not(feature = "otlp"))]
pub type OtlpTarget = String;

fn parse_otlp(s: &str) -> Result<OtlpTarget, String> {
    #[cfg(feature = "otlp")]
    return s.parse();
    #[cfg(not(feature = "otlp"))]
    return Err(format!(
        "'{s}': this tcpeek was built without OTLP (cargo feature 'otlp')"
    ));
}

fn parse_buckets(s: &str) -> Result<Buckets, String> {
    Buckets::parse(s).map_err(|e| e.to_string())
}

fn parse_max_sessions(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=u32::MAX as usize - 1).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a number from 1 to {}", u32::MAX - 1)),
    }
}

/// Where packets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Live interfaces, in `-i` order (an event's `iface` indexes them).
    Live { interfaces: Vec<String> },
    /// A capture file.
    File(PathBuf),
}

/// The validated configuration the daemon runs with.
#[derive(Debug)]
pub struct Config {
    pub source: Source,
    pub backend: Backend,
    pub filters: FilterSet,
    pub engine: EngineConfig,
    pub checksum: ChecksumMode,
    pub buffer_mb: u32,
    /// eBPF ring buffer size from `-B`: a power of two of at least 1 MiB.
    pub ring_bytes: u32,
    pub promisc: bool,
    /// eBPF: XDP for ingress.
    pub xdp: bool,
    /// `None`: no socket (capture files, unless `-U` is given).
    pub socket: Option<PathBuf>,
    pub user: Option<String>,
    /// `-u`'s uid and gid, looked up before anything starts.
    pub user_ids: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
    pub quiet: bool,
    pub json: bool,
    /// `--check`: validate and exit.
    pub check: bool,
    /// `--metrics`: where to serve them.
    pub metrics: Option<SocketAddr>,
    /// `--otlp` and its interval.
    pub otlp: Option<(OtlpTarget, std::time::Duration)>,
    /// `--metrics-file`: where to write them at the end of a file.
    pub metrics_file: Option<PathBuf>,
    /// The latency histograms' bounds.
    pub buckets: Buckets,
    /// Set when the local addresses were not given and had to be guessed;
    /// printed at start-up.
    pub local_note: Option<String>,
    /// Why `--backend auto` will not try eBPF (a libpcap-only option),
    /// printed at start-up.
    pub backend_note: Option<&'static str>,
    pub loglevel: log::LevelFilter,
    /// With `--config`: the whole command line, which a reload parses
    /// again with the file as it is then ([`Config::reread`]).
    pub argv: Option<Vec<std::ffi::OsString>>,
}

/// Why the command line cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("no interface given (-i) and libpcap found no default device: {0}")]
    NoDefaultDevice(String),
    #[error("cannot list network interfaces: {0}")]
    ListInterfaces(String),
    #[error("-i {0}: no such interface (see `ip link`)")]
    NoSuchInterface(String),
    #[error("-i {0} is given twice")]
    InterfaceTwice(String),
    #[error("-i any already watches every interface: give it alone")]
    AnyWithOthers,
    #[error("{0} interfaces given: at most {MAX_INTERFACES} in one daemon")]
    TooManyInterfaces(usize),
    #[error("--backend ebpf: {0}; use --backend pcap or auto")]
    EbpfCannot(&'static str),
    #[error(transparent)]
    User(#[from] crate::socket::SocketError),
    #[error("-U {path}: a UNIX socket path can be at most {max} bytes (sun_path, unix(7)); this one has {len}")]
    SocketPathTooLong {
        path: String,
        len: usize,
        max: usize,
    },
}

impl Config {
    /// Validates `args`, resolving the interface and its addresses.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        // Each interface's own addresses, when --local does not say.
        let mut per_interface = Vec::new();
        let (source, local, local_note) = match (&args.read, &args.interface) {
            (Some(path), _) => {
                let (local, note) = if args.local.is_empty() {
                    (
                        Local::Everything,
                        Some(
                            "no --local given: every address counts as local, so each handshake counts as both RX and TX"
                                .to_string(),
                        ),
                    )
                } else {
                    (Local::Prefixes(args.local.clone()), None)
                };
                (Source::File(path.clone()), local, note)
            }
            (None, given) => {
                let interfaces = if given.is_empty() {
                    vec![
                        pcap::Device::lookup()
                            .map_err(|e| ConfigError::NoDefaultDevice(e.to_string()))?
                            .ok_or_else(|| ConfigError::NoDefaultDevice("none found".into()))?
                            .name,
                    ]
                } else {
                    given.clone()
                };
                for (n, i) in interfaces.iter().enumerate() {
                    // Named now, not when the capture fails to open it.
                    if i != "any" && nix::net::if_::if_nametoindex(i.as_str()).is_err() {
                        return Err(ConfigError::NoSuchInterface(i.clone()));
                    }
                    if interfaces[..n].contains(i) {
                        return Err(ConfigError::InterfaceTwice(i.clone()));
                    }
                }
                if interfaces.len() > 1 && interfaces.iter().any(|i| i == "any") {
                    return Err(ConfigError::AnyWithOthers);
                }
                if interfaces.len() > MAX_INTERFACES {
                    return Err(ConfigError::TooManyInterfaces(interfaces.len()));
                }
                let (local, note) = if args.local.is_empty() {
                    let mut notes = Vec::new();
                    for i in &interfaces {
                        let addrs = interface_addrs(i)?;
                        if addrs.is_empty() {
                            notes.push(format!(
                                "{i} has no IP address: every address counts as local on it (give --local to choose)"
                            ));
                            per_interface.push(Local::Everything);
                        } else {
                            per_interface.push(Local::Prefixes(
                                addrs.into_iter().map(Prefix::host).collect(),
                            ));
                        }
                    }
                    let first = per_interface[0].clone();
                    (first, (!notes.is_empty()).then(|| notes.join("; ")))
                } else {
                    (Local::Prefixes(args.local.clone()), None)
                };
                (Source::Live { interfaces }, local, note)
            }
        };
        let filters =
            FilterSet::parse(&args.expressions, local)?.with_interface_locals(per_interface);
        let socket = match (&source, args.socket) {
            (_, Some(p)) => Some(p),
            (Source::Live { .. }, None) => Some(PathBuf::from(DEFAULT_SOCKET)),
            (Source::File(_), None) => None,
        };
        if let Some(path) = &socket {
            // Checked before anything is created for it.
            const MAX: usize = 107;
            let len = path.as_os_str().len();
            if len > MAX {
                return Err(ConfigError::SocketPathTooLong {
                    path: path.display().to_string(),
                    len,
                    max: MAX,
                });
            }
        }
        // Options only libpcap has: eBPF cannot honour them.
        let ebpf_blocker = if args.checksum != 0 {
            Some("-c verifies checksums, which only libpcap can do")
        } else if args.promisc {
            Some("--promisc is a libpcap option")
        } else if args.timeout > EBPF_MAX_TIMEOUT_S {
            // The classifier's hint array ignores a slot with no SYN/ACK for
            // 180 s (tcpeek-ebpf/src/maps.rs): an ACK later than that would
            // be filtered out unseen.
            Some("-t above 180 s: the eBPF classifier stops waiting for a handshake's ACK 180 s after its SYN/ACK")
        } else {
            None
        };
        let (backend, backend_note) = match (args.backend, ebpf_blocker) {
            (Backend::Ebpf, Some(why)) => return Err(ConfigError::EbpfCannot(why)),
            (Backend::Auto, Some(why)) => (Backend::Pcap, Some(why)),
            (b, _) => (b, None),
        };
        let user_ids = args
            .user
            .as_deref()
            .map(crate::socket::lookup_user)
            .transpose()?;
        // -B sizes the eBPF ring buffer too: a power of two of at least one
        // MiB (a multiple of the page size).
        let ring_bytes = args.buffer.map_or(DEFAULT_RING_MB << 20, |mb| {
            (mb.max(1) << 20)
                .checked_next_power_of_two()
                .unwrap_or(1 << 30)
        });
        Ok(Config {
            source,
            backend,
            filters,
            engine: EngineConfig::new(args.timeout * 1_000_000_000, args.max_sessions, args.icmp),
            checksum: ChecksumMode::from_level(args.checksum).unwrap_or_default(),
            buffer_mb: args.buffer.unwrap_or(DEFAULT_BUFFER_MB),
            ring_bytes,
            promisc: args.promisc,
            xdp: args.xdp,
            socket,
            user: args.user,
            user_ids,
            quiet: args.quiet,
            json: args.json,
            check: args.check,
            metrics: args.metrics,
            otlp: args
                .otlp
                .map(|t| (t, std::time::Duration::from_secs(args.otlp_interval))),
            metrics_file: args.metrics_file,
            buckets: args.metrics_buckets.unwrap_or_default(),
            local_note,
            backend_note,
            loglevel: args.loglevel,
            argv: None,
        })
    }

    /// Keeps the command line for [`Config::reread`] (with `--config`).
    pub fn with_argv(mut self, argv: &[std::ffi::OsString]) -> Config {
        self.argv = Some(argv.to_vec());
        self
    }

    /// The configuration the command line and its `--config` file give
    /// now (SIGHUP): the file read again, the interface's addresses looked
    /// up again.
    pub fn reread(&self) -> anyhow::Result<Option<Config>> {
        let Some(argv) = &self.argv else {
            return Ok(None);
        };
        let args = file::parse_args(argv)?;
        Ok(Some(Config::from_args(args)?.with_argv(argv)))
    }

    /// The options `new` changes that only a restart applies: all but the
    /// filters, the local addresses and the log level.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        fn fixed(c: &Config) -> [(&'static str, String); 13] {
            [
                ("interface or read", format!("{:?}", c.source)),
                ("backend", format!("{:?}", c.backend)),
                ("timeout, max-sessions or icmp", format!("{:?}", c.engine)),
                ("checksum", format!("{:?}", c.checksum)),
                ("buffer", format!("{:?}", (c.buffer_mb, c.ring_bytes))),
                ("promisc", format!("{:?}", c.promisc)),
                ("xdp", format!("{:?}", c.xdp)),
                ("socket", format!("{:?}", c.socket)),
                ("user", format!("{:?}", c.user)),
                ("quiet or json", format!("{:?}", (c.quiet, c.json))),
                ("metrics", format!("{:?}", c.metrics)),
                ("otlp or otlp-interval", format!("{:?}", c.otlp)),
                ("metrics-buckets", format!("{:?}", c.buckets)),
            ]
        }
        fixed(self)
            .into_iter()
            .zip(fixed(new))
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect()
    }
}

/// The IP addresses of `name` (of every interface for libpcap's `any`).
fn interface_addrs(name: &str) -> Result<Vec<IpAddr>, ConfigError> {
    let devices = pcap::Device::list().map_err(|e| ConfigError::ListInterfaces(e.to_string()))?;
    let mut found = false;
    let mut addrs = Vec::new();
    for d in devices {
        if name == "any" || d.name == name {
            found = true;
            addrs.extend(d.addresses.iter().map(|a| a.addr));
        }
    }
    if !found {
        return Err(ConfigError::NoSuchInterface(name.to_string()));
    }
    addrs.sort();
    addrs.dedup();
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("tcpeek").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = parse(&["-r", "x.pcap"]).unwrap();
        assert_eq!((a.timeout, a.checksum, a.buffer), (60, 0, None));
        assert_eq!(a.loglevel, log::LevelFilter::Info);
        assert_eq!(a.backend, Backend::Auto);
        let c = Config::from_args(a).unwrap();
        assert_eq!(c.socket, None);
        assert_eq!(c.filters.local(), &Local::Everything);
        assert!(c.local_note.is_some());
        assert_eq!(c.filters.names().collect::<Vec<_>>(), ["RX", "TX"]);
    }

    #[test]
    fn original_spellings_are_accepted() {
        let a = parse(&[
            "-u",
            "nobody",
            "-i",
            "lo",
            "-U",
            "/tmp/s",
            "-c",
            "2",
            "-t",
            "5",
            "-B",
            "8",
            "-l",
            "LOG_DEBUG",
            "-q",
            "--promisc",
            "--icmp",
            "web:RX@%:80",
        ])
        .unwrap();
        assert_eq!(a.user.as_deref(), Some("nobody"));
        assert_eq!((a.checksum, a.timeout, a.buffer), (2, 5, Some(8)));
        assert_eq!(a.loglevel, log::LevelFilter::Debug);
        assert!(a.quiet && a.promisc && a.icmp);
        assert_eq!(a.expressions, ["web:RX@%:80"]);
        let a = parse(&[
            "--user=nobody",
            "--interface=lo",
            "--socket=/tmp/s",
            "--checksum=1",
            "--timeout=9",
        ])
        .unwrap();
        assert_eq!(a.timeout, 9);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, want) in [
            (&["-c", "3"][..], "--checksum"),
            (&["-t", "0"][..], "--timeout"),
            (&["-t", "soon"][..], "--timeout"),
            (&["-l", "loud"][..], "'loud' is not a syslog level"),
            (&["--backend", "dpdk"][..], "--backend"),
            (&["--max-sessions", "0"][..], "--max-sessions"),
            (
                &["--local", "10.0.0.300"][..],
                "'10.0.0.300' is not an address or prefix",
            ),
            (&["-i", "lo", "-r", "x.pcap"][..], "cannot be used with"),
            (&["--metrics", "localhost"][..], "--metrics"),
            (&["--metrics", "127.0.0.1"][..], "--metrics"),
            (
                &["--metrics-buckets", "0.1,0.01"][..],
                "'0.01' does not follow '0.1'",
            ),
            (
                &["--metrics-buckets", "1,soon"][..],
                "'soon' is not a number",
            ),
            (&["--metrics-file", "m.om"][..], "--read"),
            (&["--otlp", "https://c:4318"][..], "https is not supported"),
            (&["--otlp", "ftp://c"][..], "is not an http:// URL"),
            (&["--otlp", "http://"][..], "--otlp"),
            (&["--otlp-interval", "0"][..], "--otlp-interval"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn bad_filter_is_reported_with_its_text() {
        let a = parse(&["-r", "x.pcap", "web:RX@%:99999"]).unwrap();
        let e = Config::from_args(a).unwrap_err().to_string();
        assert!(
            e.contains("filter 'web:RX@%:99999'") && e.contains("port '99999'"),
            "{e}"
        );
    }

    #[test]
    fn libpcap_only_options_decide_the_backend() {
        for (flags, why) in [
            (&["-c", "2"][..], "-c verifies checksums"),
            (&["--promisc"][..], "--promisc is a libpcap option"),
            (&["-t", "181"][..], "-t above 180 s"),
        ] {
            let with = |backend: &str| {
                let mut a = vec!["-r", "x.pcap", "--backend", backend];
                a.extend_from_slice(flags);
                Config::from_args(parse(&a).unwrap())
            };
            let e = with("ebpf").unwrap_err().to_string();
            assert!(e.starts_with("--backend ebpf: ") && e.contains(why), "{e}");
            let c = with("auto").unwrap();
            assert_eq!((c.backend, c.backend_note.is_some()), (Backend::Pcap, true));
            let c = with("pcap").unwrap();
            assert_eq!((c.backend, c.backend_note), (Backend::Pcap, None));
        }
        let c = Config::from_args(parse(&["-r", "x.pcap"]).unwrap()).unwrap();
        assert_eq!((c.backend, c.backend_note), (Backend::Auto, None));
    }

    #[test]
    fn without_b_each_backend_gets_its_own_default() {
        let c = Config::from_args(parse(&["-r", "x.pcap"]).unwrap()).unwrap();
        assert_eq!((c.buffer_mb, c.ring_bytes), (2, 16 << 20));
    }

    #[test]
    fn buffer_size_gives_a_power_of_two_ring() {
        for (mb, ring) in [
            ("1", 1 << 20),
            ("2", 2 << 20),
            ("3", 4 << 20),
            ("100", 128 << 20),
        ] {
            let c = Config::from_args(parse(&["-r", "x.pcap", "-B", mb]).unwrap()).unwrap();
            assert_eq!(c.ring_bytes, ring, "-B {mb}");
        }
    }

    #[test]
    fn unknown_user_is_an_error_before_anything_starts() {
        let a = parse(&["-r", "x.pcap", "-u", "no-such-user-tcpeek-cli"]).unwrap();
        let e = Config::from_args(a).unwrap_err().to_string();
        assert!(e.contains("no such user 'no-such-user-tcpeek-cli'"), "{e}");
    }

    #[test]
    fn unknown_interface_is_an_error() {
        for args in [
            &["-i", "no-such-if0"][..],
            &["-i", "no-such-if0", "--local", "10.0.0.1"],
        ] {
            let e = Config::from_args(parse(args).unwrap())
                .unwrap_err()
                .to_string();
            assert_eq!(
                e, "-i no-such-if0: no such interface (see `ip link`)",
                "{args:?}"
            );
        }
    }

    #[test]
    fn several_interfaces_each_bring_their_own_addresses() {
        let c = Config::from_args(parse(&["-i", "lo", "--check"]).unwrap()).unwrap();
        assert_eq!(
            c.source,
            Source::Live {
                interfaces: vec!["lo".into()]
            }
        );
        assert_eq!(c.filters.locals().len(), 1);
        for (args, want) in [
            (&["-i", "lo", "-i", "lo"][..], "-i lo is given twice"),
            (
                &["-i", "any", "-i", "lo"][..],
                "-i any already watches every interface: give it alone",
            ),
            (
                &["-i", "lo", "-i", "no-such-if0"][..],
                "-i no-such-if0: no such interface (see `ip link`)",
            ),
        ] {
            let e = Config::from_args(parse(args).unwrap())
                .unwrap_err()
                .to_string();
            assert_eq!(e, want, "{args:?}");
        }
    }

    #[test]
    fn local_flags_replace_the_guess() {
        let a = parse(&[
            "-r",
            "x.pcap",
            "--local",
            "10.0.0.1",
            "--local",
            "[fd00::/64]",
        ])
        .unwrap();
        let c = Config::from_args(a).unwrap();
        assert_eq!(c.filters.local().to_string(), "10.0.0.1/32, fd00::/64");
        assert!(c.local_note.is_none());
    }
}
