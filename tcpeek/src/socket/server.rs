//! The daemon's side of the UNIX socket: bind (replacing a stale socket file
//! left by a crash), then answer each client in its own tokio task.
//!
//! The original wrote replies while holding the counters' lock, so one slow
//! client stalled capture, and a stale socket file made the next start fail.
//! Here a client only ever sees a copy of the counters
//! ([`SharedCounters`] locks for the copy alone), every read and write has a
//! deadline, request lines are bounded, and so is the number of clients
//! connected at once ([`ServerLimits`]): at the limit, the client idle the
//! longest is closed to make room ([`Clients`]), so idle or stuck clients
//! never make a well-behaved one wait.

use std::fs::{self, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Request, SocketError};
use crate::clients::{is_out_of_fds, Activity, Clients};
use crate::stats::SharedCounters;

/// The socket file's mode: the daemon's user and group may connect, nobody
/// else. (Connecting to a UNIX socket needs write permission on it.)
pub const SOCKET_MODE: u32 = 0o660;

/// How long to wait before accepting again after `accept` failed (typically
/// EMFILE: out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Bounds on what one client may cost the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// The request line must have arrived this long after the connection
    /// was accepted, or the client is dropped without a reply.
    pub read_timeout: Duration,
    /// The reply must have been written this long after it was ready, or the
    /// client (one that never reads) is dropped.
    pub write_timeout: Duration,
    /// Longest request line accepted, terminator excluded. A longer line is
    /// dropped without a reply (the protocol's lines are 3 and 7 bytes).
    pub max_line: usize,
    /// Clients connected at once. A new one beyond that closes the one
    /// idle the longest (connected, its request not in yet), or is closed
    /// itself if every other is being answered; either is counted
    /// ([`crate::stats::ServerStats`]). Each costs a task, a descriptor and
    /// a `max_line` buffer.
    pub max_clients: usize,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            // Clients send their line at once (tcpeekstat, the original's
            // scripts): a client silent this long is stuck or hostile.
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            max_line: 1024,
            max_clients: 1024,
        }
    }
}

/// A bound, listening socket. Dropping it (or the end of [`serve`]) removes
/// the socket file, unless another process has put its own file there since.
///
/// [`serve`]: SocketServer::serve
#[derive(Debug)]
pub struct SocketServer {
    listener: StdUnixListener,
    file: SocketFile,
    limits: ServerLimits,
}

/// The socket file this process created, identified by device and inode so
/// that cleanup never removes a successor's socket.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino {
                // Nothing useful to do if this fails while shutting down.
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

impl SocketServer {
    /// Binds `path` with the default [`ServerLimits`]; see [`bind_with`].
    ///
    /// [`bind_with`]: SocketServer::bind_with
    pub fn bind(path: &Path) -> Result<SocketServer, SocketError> {
        SocketServer::bind_with(path, ServerLimits::default())
    }

    /// Binds `path` and sets the socket file to mode 0660.
    ///
    /// If a socket file is already there, it is probed: a live tcpeek
    /// answering on it is an error ([`SocketError::AlreadyServing`]); a file
    /// nobody listens on (left by a crash) is removed first. Anything at
    /// `path` that is not a socket is an error and is never removed.
    ///
    /// Needs no tokio runtime (the listener joins the runtime in
    /// [`serve`](SocketServer::serve)), so the daemon can report bind errors
    /// before it starts capturing.
    pub fn bind_with(path: &Path, limits: ServerLimits) -> Result<SocketServer, SocketError> {
        clear_stale(path)?;
        let bind_err = |source| SocketError::Bind {
            path: path.to_owned(),
            source,
        };
        let listener = StdUnixListener::bind(path).map_err(bind_err)?;
        let meta = fs::symlink_metadata(path).map_err(bind_err)?;
        // From here on, an error drops `file` and so removes the socket.
        let file = SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        // Not umask: it is process-wide and other threads may be creating
        // files. The window before this chmod is harmless: under the usual
        // umask (022) others have no write permission, and the directory
        // from `prepare_dir` is 0750.
        fs::set_permissions(path, Permissions::from_mode(SOCKET_MODE)).map_err(|source| {
            SocketError::Permissions {
                path: path.to_owned(),
                source,
            }
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| SocketError::Listen {
                path: path.to_owned(),
                source,
            })?;
        Ok(SocketServer {
            listener,
            file,
            limits,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The limits this server applies to its clients.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }

    /// Answers clients until `shutdown` becomes true (or its sender is
    /// dropped), then aborts the clients still connected and removes the
    /// socket file. Must run inside a tokio runtime with I/O and time enabled.
    ///
    /// Only fails at the start, if the listener cannot join the runtime;
    /// failures to accept (e.g. out of file descriptors) are retried.
    pub async fn serve(
        self,
        counters: SharedCounters,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), SocketError> {
        let SocketServer {
            listener,
            file,
            limits,
        } = self;
        let mut listener =
            UnixListener::from_std(listener).map_err(|source| SocketError::Listen {
                path: file.path.clone(),
                source,
            })?;
        let mut file = file;
        // Whether the socket file is still ours, checked now and then.
        let mut check = tokio::time::interval(FILE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut file_lost = false;
        let mut clients = Clients::new(limits.max_clients, counters.socket_dropped());
        let mut tasks = JoinSet::new();
        // Report an accept failure once, not every ACCEPT_BACKOFF.
        let mut failing = false;
        loop {
            tokio::select! {
                () = stopped(&mut shutdown) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        failing = false;
                        if !clients.make_room() {
                            // Every client is being answered: this one is
                            // closed, and counted.
                            counters
                                .socket_dropped()
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        let activity = clients.activity();
                        let task = tasks.spawn(serve_client(
                            stream,
                            counters.clone(),
                            limits,
                            activity.clone(),
                        ));
                        clients.started(activity, task);
                    }
                    // Out of descriptors: an idle client gives its up.
                    Err(e) if is_out_of_fds(&e) && clients.evict_idlest() => {}
                    Err(e) => {
                        if !failing {
                            // Through the logger: eprintln! would panic
                            // with stderr closed.
                            log::warn!(
                                "cannot accept a client on {}: {e} (retrying)",
                                file.path.display()
                            );
                            failing = true;
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                _ = check.tick(), if !file_lost => {
                    if let Err(why) = keep_file(&mut listener, &mut file) {
                        log::error!(
                            "the socket {} was removed and is not re-created: {why}; the counters stay in the summary and the metrics",
                            file.path.display()
                        );
                        file_lost = true;
                    }
                }
                // Reap finished (and closed) clients so the set does not
                // grow.
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    clients.joined(done);
                }
            }
        }
        tasks.shutdown().await;
        drop(listener);
        drop(file);
        Ok(())
    }
}

/// How often the server checks that its socket file is still there.
const FILE_CHECK: Duration = Duration::from_secs(1);

/// Re-creates the socket file (and its directory) if someone removed it,
/// as `tmpfiles` cleaning or an operator's `rm -r` may. A file of
/// someone else's at the path (a successor tcpeek) is left alone: an
/// error, and the check stops.
fn keep_file(listener: &mut UnixListener, file: &mut SocketFile) -> Result<(), String> {
    match fs::symlink_metadata(&file.path) {
        Ok(m) if m.file_type().is_socket() && m.dev() == file.dev && m.ino() == file.ino => {
            return Ok(())
        }
        Ok(_) => return Err("another file is at its path now".into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.to_string()),
    }
    if let Some(dir) = file.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            fs::set_permissions(dir, Permissions::from_mode(0o750)).map_err(|e| e.to_string())?;
        }
    }
    let fresh = UnixListener::bind(&file.path).map_err(|e| e.to_string())?;
    let meta = fs::symlink_metadata(&file.path).map_err(|e| e.to_string())?;
    fs::set_permissions(&file.path, Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| e.to_string())?;
    *listener = fresh;
    // The old file is gone: nothing for its Drop to remove.
    file.dev = meta.dev();
    file.ino = meta.ino();
    log::warn!(
        "the socket {} was removed; re-created it",
        file.path.display()
    );
    Ok(())
}

/// Resolves once `shutdown` is true or its sender is gone (the daemon is
/// exiting either way). A function of its own so that the value's read guard
/// (not `Send`) is dropped before anything is awaited, keeping `serve` `Send`.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One client: read the request line, write the reply, close. Every failure
/// (timeout, over-long line, I/O error) just ends the connection.
async fn serve_client(
    mut stream: UnixStream,
    counters: SharedCounters,
    limits: ServerLimits,
    activity: Activity,
) {
    let read = read_request(&mut stream, limits.max_line);
    let request = match tokio::time::timeout(limits.read_timeout, read).await {
        Ok(Ok(Some(request))) => request,
        _ => return,
    };
    // Being answered: not closed to make room for another.
    activity.busy();
    // As in the original, REFRESH moves the baseline even if the client
    // then fails to read the reply.
    let reply = match request {
        Request::Get => counters.get_json(),
        Request::Refresh => counters.refresh_json(),
        Request::Latency => counters.latency_json(),
    };
    let write = async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(limits.write_timeout, write).await;
}

/// Reads one request line of at most `max_line` bytes (terminator
/// excluded). `None`: the line was too long, or the client closed without
/// sending anything (a liveness probe). A last line without its newline
/// still counts, for clients that half-close instead of sending one.
async fn read_request(stream: &mut UnixStream, max_line: usize) -> io::Result<Option<Request>> {
    // Room for the longest line plus CRLF; bytes after the newline are
    // ignored.
    let mut buf = vec![0u8; max_line.saturating_add(2)];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].iter().position(|&b| b == b'\n') {
            return Ok(parse_line(&buf[..end], max_line));
        }
        if len == buf.len() {
            return Ok(None);
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok((len > 0)
                .then(|| parse_line(&buf[..len], max_line))
                .flatten());
        }
        len += n;
    }
}

/// A request line without its LF; `None` if longer than `max_line`.
fn parse_line(line: &[u8], max_line: usize) -> Option<Request> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (line.len() <= max_line).then(|| Request::from_line(line))
}

/// Makes room for a new socket at `path`: nothing there is fine; a socket
/// nobody listens on is removed; anything else is an error.
fn clear_stale(path: &Path) -> Result<(), SocketError> {
    let probe_err = |source| SocketError::Probe {
        path: path.to_owned(),
        source,
    };
    // symlink_metadata: a symlink, even to a socket, is not ours to remove.
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(probe_err(e)),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(SocketError::NotASocket {
                path: path.to_owned(),
            })
        }
        Ok(_) => {}
    }
    if is_listening(path).map_err(probe_err)? {
        return Err(SocketError::AlreadyServing {
            path: path.to_owned(),
        });
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SocketError::RemoveStale {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether some process accepts connections on the socket at `path`.
///
/// The connect is non-blocking: a blocking connect to a live listener whose
/// backlog is full would wait indefinitely (unix(7): the wait is bounded only
/// by SO_SNDTIMEO), whereas here that case is EAGAIN, which means alive.
/// The live server sees a connection that closes without a request and
/// answers nothing.
fn is_listening(path: &Path) -> io::Result<bool> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    match socket::connect(fd.as_raw_fd(), &addr) {
        Ok(()) | Err(Errno::EAGAIN) => Ok(true),
        Err(Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_as_the_original_reads_them() {
        assert_eq!(parse_line(b"REFRESH", 1024), Some(Request::Refresh));
        assert_eq!(parse_line(b"REFRESH\r", 1024), Some(Request::Refresh));
        assert_eq!(parse_line(b"GET\r", 1024), Some(Request::Get));
        assert_eq!(parse_line(b"GET_LATENCY\r", 1024), Some(Request::Latency));
        assert_eq!(parse_line(b"GET_LATENCY", 1024), Some(Request::Latency));
        assert_eq!(parse_line(b"get_latency", 1024), Some(Request::Get));
        assert_eq!(parse_line(b"refresh", 1024), Some(Request::Get));
        assert_eq!(parse_line(b"REFRESH ", 1024), Some(Request::Get));
        assert_eq!(parse_line(b"", 1024), Some(Request::Get));
        assert_eq!(parse_line(b"\xff\xfe", 1024), Some(Request::Get));
    }

    #[test]
    fn a_line_over_the_limit_gets_no_reply() {
        assert_eq!(parse_line(&[b'G'; 8], 8), Some(Request::Get));
        assert_eq!(parse_line(&[b'G'; 9], 8), None);
        // The CR of a CRLF does not count against the limit.
        assert_eq!(parse_line(b"GETGETGE\r", 8), Some(Request::Get));
    }
}
