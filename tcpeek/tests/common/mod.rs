//! Harness for privileged tests against real kernel TCP: a pair of network
//! namespaces joined by a veth pair, sockets opened inside them, and tcpeek
//! daemons run inside them.
//!
//! Every namespace is created by the test and removed by a guard's `Drop`,
//! also when the test fails. Traffic only ever flows between the two
//! namespaces of one pair. Waits poll for a condition with a generous limit;
//! nothing relies on a fixed sleep.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary includes this module and uses only part of it"
)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;
pub use tcpeek_testkit::{run, wait_for, Netns, TempDir, PATIENCE};

/// Skips the calling test (returns) with a printed reason when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            tcpeek_testkit::skip("needs root (network namespaces, packet capture)");
            return;
        }
    };
}

pub fn is_root() -> bool {
    tcpeek_testkit::is_root()
}

#[cfg(feature = "otlp")]
pub mod collector;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A number of this test process's own, and the name stem made of it.
fn next_id() -> (u32, String) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (n, format!("{}{}", std::process::id() % 100_000, n))
}

/// A new client namespace `tpk{id}c` joined to `server` by a veth pair
/// (`tpk{id}c` there, `tpk{id}s` in `server`); created in the client
/// namespace so that nothing ever appears in the host's.
fn veth_to(server: &Netns, id: &str) -> (Netns, String, String) {
    let client = Netns::new(format!("tpk{id}c"));
    let (client_if, server_if) = (format!("tpk{id}c"), format!("tpk{id}s"));
    client.ip(&[
        "link",
        "add",
        &client_if,
        "type",
        "veth",
        "peer",
        "name",
        &server_if,
        "netns",
        &server.name,
    ]);
    (client, client_if, server_if)
}

/// Two namespaces, `client` and `server`, joined by a veth pair, with IPv4
/// and IPv6 addresses of their own.
pub struct Pair {
    pub client: Netns,
    pub server: Netns,
    pub client_if: String,
    pub server_if: String,
    pub client4: IpAddr,
    pub server4: IpAddr,
    pub client6: IpAddr,
    pub server6: IpAddr,
}

impl Pair {
    pub fn new() -> Pair {
        let (n, id) = next_id();
        let server = Netns::new(format!("tpk{id}s"));
        let (client, client_if, server_if) = veth_to(&server, &id);
        let net = n % 250 + 1;
        let client4: IpAddr = format!("10.213.{net}.2").parse().unwrap();
        let server4: IpAddr = format!("10.213.{net}.1").parse().unwrap();
        let client6: IpAddr = format!("fd00:213:{net}::2").parse().unwrap();
        let server6: IpAddr = format!("fd00:213:{net}::1").parse().unwrap();
        for (ns, ifname, v4, v6) in [
            (&client, &client_if, client4, client6),
            (&server, &server_if, server4, server6),
        ] {
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", ifname]);
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"]);
            ns.ip(&["link", "set", ifname, "up"]);
        }
        let pair = Pair {
            client,
            server,
            client_if,
            server_if,
            client4,
            server4,
            client6,
            server6,
        };
        // The link is usable once the peer answers.
        wait_for("veth link up", || {
            pair.client
                .enter(|| std::net::UdpSocket::bind(SocketAddr::new(pair.client4, 0)).ok())
                .filter(|_| {
                    pair.server
                        .ip(&["-br", "link", "show", &pair.server_if])
                        .contains("UP")
                })
        });
        pair
    }
}

/// A second client namespace joined to a [`Pair`]'s server by a veth pair
/// of its own, on another subnet: the server then has two interfaces.
pub struct Link {
    pub client: Netns,
    pub client_if: String,
    pub server_if: String,
    pub client4: IpAddr,
    pub server4: IpAddr,
}

impl Pair {
    /// Adds a [`Link`] to the server; the new client also routes to the
    /// server's first subnet through it.
    pub fn second_link(&self) -> Link {
        let (n, id) = next_id();
        let (client, client_if, server_if) = veth_to(&self.server, &id);
        let net = n % 250 + 1;
        let client4: IpAddr = format!("10.214.{net}.2").parse().unwrap();
        let server4: IpAddr = format!("10.214.{net}.1").parse().unwrap();
        for (ns, ifname, v4) in [
            (&client, &client_if, client4),
            (&self.server, &server_if, server4),
        ] {
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", ifname]);
            ns.ip(&["link", "set", ifname, "up"]);
        }
        let first = match self.server4 {
            IpAddr::V4(a) => {
                let [a, b, c, _] = a.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(_) => unreachable!(),
        };
        client.ip(&["route", "add", &first, "via", &server4.to_string()]);
        wait_for("second veth link up", || {
            client
                .enter(|| std::net::UdpSocket::bind(SocketAddr::new(client4, 0)).ok())
                .filter(|_| {
                    self.server
                        .ip(&["-br", "link", "show", &server_if])
                        .contains("UP")
                })
        });
        Link {
            client,
            client_if,
            server_if,
            client4,
            server4,
        }
    }
}

/// The tcpeek binary under test.
pub fn tcpeek_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tcpeek"))
}

pub fn tcpeekstat_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tcpeekstat"))
}

/// A running `tcpeek --json` whose output is collected as it comes.
pub struct Daemon {
    child: Option<Child>,
    pub backend: String,
    pub socket: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// What a daemon printed by the time it exited.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    /// The finished-handshake objects.
    pub sessions: Vec<Value>,
    /// The final line: the GET array.
    pub counters: Value,
    pub stderr: String,
}

impl Daemon {
    /// Starts `tcpeek --json -U SOCKET ARGS...` in `ns` and waits until it
    /// captures.
    pub fn start(ns: &Netns, backend: &str, socket: &Path, args: &[&str]) -> Daemon {
        Daemon::start_command(ns.command(&tcpeek_bin()), backend, socket, args)
    }

    /// [`Daemon::start`] as user `nobody` holding only the capabilities
    /// `caps` (setpriv's syntax, `+bpf,+perfmon`), as ambient ones.
    pub fn start_with_caps(
        ns: &Netns,
        caps: &str,
        backend: &str,
        socket: &Path,
        args: &[&str],
    ) -> Daemon {
        let mut cmd = ns.command(Path::new("setpriv"));
        cmd.args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .args(["--inh-caps", caps, "--ambient-caps", caps])
            .arg(tcpeek_bin());
        Daemon::start_command(cmd, backend, socket, args)
    }

    fn start_command(
        mut cmd: std::process::Command,
        backend: &str,
        socket: &Path,
        args: &[&str],
    ) -> Daemon {
        let mut child = cmd
            .args(["--json", "--backend", backend, "-U"])
            .arg(socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpeek");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let o = stdout.clone();
        let e = stderr.clone();
        let readers = vec![
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    o.lock().unwrap().push(line);
                }
            }),
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = e.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            }),
        ];
        let mut d = Daemon {
            child: Some(child),
            backend: backend.to_string(),
            socket: socket.to_path_buf(),
            stdout,
            stderr,
            readers,
        };
        wait_for("tcpeek to start capturing", || {
            let err = d.stderr();
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tcpeek ({backend}) exited early ({status}):\n{err}");
            }
            (err.contains("listening on") && socket.exists()).then_some(())
        });
        d
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Finished-handshake objects printed so far.
    pub fn sessions(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Waits until at least `n` handshakes have finished.
    pub fn wait_sessions(&self, n: usize) -> Vec<Value> {
        wait_for(
            &format!(
                "{n} finished handshakes from {} (stderr: {})",
                self.backend,
                self.stderr()
            ),
            || {
                let s = self.sessions();
                (s.len() >= n).then_some(s)
            },
        )
    }

    /// The exit status, once it has exited on its own.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal`, waits for the exit and parses the output.
    pub fn stop_with(mut self, signal: i32) -> Exited {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = wait_for("tcpeek to exit", || child.try_wait().unwrap());
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let lines = self.stdout.lock().unwrap().clone();
        let counters = lines
            .iter()
            .rev()
            .find_map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .filter(Value::is_array)
            })
            .unwrap_or(Value::Null);
        Exited {
            status,
            sessions: self.sessions(),
            counters,
            stderr: self.stderr(),
        }
    }

    /// SIGINT, as an operator's Ctrl-C.
    pub fn stop(self) -> Exited {
        self.stop_with(libc::SIGINT)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The counters of filter `name` in a GET array.
pub fn filter<'a>(counters: &'a Value, name: &str) -> &'a Value {
    counters
        .as_array()
        .and_then(|a| a.iter().find_map(|e| e.get(name)))
        .unwrap_or_else(|| panic!("no filter {name} in {counters}"))
}

/// `(success.total, dupsyn, dupsynack, failure.total, timeout, reject, unreach)`
pub fn counts(counters: &Value, name: &str) -> [u64; 7] {
    let f = filter(counters, name);
    let g = |s: &str, k: &str| {
        f[s][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}.{s}.{k} in {counters}"))
    };
    [
        g("success", "total"),
        g("success", "dupsyn"),
        g("success", "dupsynack"),
        g("failure", "total"),
        g("failure", "timeout"),
        g("failure", "reject"),
        g("failure", "unreach"),
    ]
}

/// The GET array without the capture element (which differs by backend).
pub fn filter_counters(counters: &Value) -> Vec<Value> {
    counters
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e.get("pcap").is_none())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The backends to run every live test with.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["pcap"];
    if ebpf_available() {
        b.push("ebpf");
    }
    b
}

/// Whether this kernel lets the eBPF backend run: it loads on the loopback
/// interface of a namespace of its own. When it cannot, the reason is
/// printed and the tests run with libpcap only.
pub fn ebpf_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ns = Netns::new(format!("tpk{}probe", std::process::id() % 100_000));
        let dir = TempDir::new("probe");
        let mut child = ns
            .command(&tcpeek_bin())
            .args(["--backend", "ebpf", "-i", "lo", "-q", "-U"])
            .arg(dir.path("s"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn tcpeek");
        let err = child.stderr.take().unwrap();
        let mut lines = BufReader::new(err).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let ok = first.contains("listening on");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        if !ok {
            eprintln!("eBPF backend unavailable, testing libpcap only: {first}");
        }
        ok
    })
}

/// Sends one request line on the socket at `path` and returns the whole
/// reply (the server closes when done).
pub fn request(path: &Path, line: &str) -> String {
    try_request(path, line).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// [`request`], or why it failed (no socket yet, no answer within 10 s).
pub fn try_request(path: &Path, line: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(line.as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}
