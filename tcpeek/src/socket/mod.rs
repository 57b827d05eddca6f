//! The UNIX-socket interface: the daemon serves its counters there and
//! `tcpeekstat` (or any third-party exporter) reads them.
//!
//! The protocol is the original tcpeek's and must stay wire-compatible: a
//! client connects, sends one line (`GET` or `REFRESH`, CRLF- or
//! LF-terminated; any line other than exactly `REFRESH` acts as `GET`), the
//! server writes one JSON array ([`crate::stats::SharedCounters::get_json`] or
//! [`crate::stats::SharedCounters::refresh_json`]) and closes.
//!
//! - [`server`] binds the socket (replacing a stale file left by a crash) and
//!   answers clients as tokio tasks, never holding up capture;
//! - [`privs`] prepares the socket's directory as root and drops privileges
//!   (`-u USER`) before the socket is bound, in the original's order;
//! - [`client`] is `tcpeekstat`'s side: request, parse, render.

use std::path::PathBuf;

pub mod client;
pub mod privs;
pub mod server;

pub use privs::{drop_capabilities, drop_privileges, lookup_user, prepare_dir};
pub use server::{ServerLimits, SocketServer};

/// What a client asks for. The original compares the whole line with
/// `REFRESH`; anything else, including an empty line, is a `GET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Totals since start (plus the capture's counters).
    Get,
    /// The change since the previous `REFRESH`; moves the baseline.
    Refresh,
    /// Each filter's latency histogram and percentiles (not in the
    /// original).
    Latency,
}

impl Request {
    /// Reads a request line without its terminator (a trailing CR is
    /// dropped, so CRLF and LF clients are both understood).
    pub fn from_line(line: &[u8]) -> Request {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line {
            b"REFRESH" => Request::Refresh,
            b"GET_LATENCY" => Request::Latency,
            _ => Request::Get,
        }
    }

    /// The line a client sends, CRLF-terminated as the original client does.
    pub fn wire(self) -> &'static [u8] {
        match self {
            Request::Get => b"GET\r\n",
            Request::Refresh => b"REFRESH\r\n",
            Request::Latency => b"GET_LATENCY\r\n",
        }
    }
}

/// Where the daemon serves and `tcpeekstat` asks by default (the original's
/// default, kept so existing exporters and scripts find it).
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/tcpeek/tcpeek.sock";

/// Why the daemon's side of the socket could not be set up. Every message
/// names the path or user involved and the cause.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the socket directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot give the socket directory {} to uid {uid} gid {gid}", path.display())]
    ChownDir {
        path: PathBuf,
        uid: u32,
        gid: u32,
        #[source]
        source: nix::Error,
    },
    #[error("{} exists and is not a socket; refusing to replace it (remove it or choose another path with -U)", path.display())]
    NotASocket { path: PathBuf },
    #[error("another tcpeek is already serving on {}", path.display())]
    AlreadyServing { path: PathBuf },
    #[error("cannot tell whether the existing socket {} is still in use", path.display())]
    Probe {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the stale socket {} left by an earlier tcpeek", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind the UNIX socket {}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot restrict the permissions of the socket {}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve on {}", path.display())]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no such user '{user}'")]
    NoSuchUser { user: String },
    #[error("cannot look up user '{user}'")]
    LookupUser {
        user: String,
        #[source]
        source: nix::Error,
    },
    #[error("cannot drop the capabilities the capture no longer needs: {0}")]
    DropCapabilities(String),
    #[error("cannot drop privileges to user '{user}': {step} failed")]
    DropPrivileges {
        user: String,
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("dropped privileges to user '{user}' but the process could still regain root")]
    StillPrivileged { user: String },
}
