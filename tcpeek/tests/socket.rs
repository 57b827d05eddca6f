//! The UNIX-socket server and `tcpeekstat`, end to end: a `SocketServer`
//! runs in-process on a private temporary path with counters the test
//! fills, and real clients (raw sockets, or the `tcpeekstat` binary) talk to
//! it. Waits are bounded polls with generous limits; no assertion depends on
//! a fixed sleep.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tcpeek::socket::client::Stats;
use tcpeek::socket::{prepare_dir, ServerLimits, SocketError, SocketServer};
use tcpeek::stats::{Counters, SharedCounters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Upper bound for anything that should happen "soon"; only reached when a
/// test is about to fail.
const PATIENCE: Duration = Duration::from_secs(20);

/// A private directory for one test's socket, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tcpeek-socket-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn sock(&self) -> PathBuf {
        self.0.join("tcpeek.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Counters with something in every filter and in the capture element.
fn sample() -> Counters {
    let mut c = Counters::new(["RX", "TX", "web"]);
    let rx = &mut c.filters[0].1;
    rx.success.total = 12;
    rx.success.dupsyn = 2;
    rx.success.dupsynack = 1;
    rx.failure.total = 4;
    rx.failure.timeout = 1;
    rx.failure.reject = 2;
    rx.failure.unreach = 1;
    c.filters[1].1.success.total = 7;
    c.filters[2].1.failure.total = 1;
    c.filters[2].1.failure.reject = 1;
    c.capture.recv = 1234;
    c.capture.drop = 5;
    // RX's 12 successes: 10 fast, 2 after a retransmitted SYN.
    for us in [
        800, 850, 900, 900, 950, 1000, 1100, 1200, 1300, 1400, 1_001_000, 1_002_000,
    ] {
        c.detail[0].latency.observe_ns(us * 1000);
    }
    c
}

fn shared(c: &Counters) -> SharedCounters {
    let s = SharedCounters::new(Counters::new(c.filters.iter().map(|(n, _)| n.clone())));
    s.publish(c);
    s
}

fn fast_limits() -> ServerLimits {
    ServerLimits {
        read_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
        ..ServerLimits::default()
    }
}

/// A server task in the test's runtime.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), SocketError>>,
}

impl Running {
    fn start(server: SocketServer, counters: &SharedCounters) -> Running {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(server.serve(counters.clone(), rx));
        Running { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("server stops")
            .expect("server task")
            .expect("server ran");
    }
}

/// Sends `request` and reads until the server closes. `None`: the server
/// closed (or reset) the connection without replying.
async fn ask(path: &Path, request: &[u8]) -> Option<String> {
    let exchange = async {
        let mut s = UnixStream::connect(path).await.expect("connect");
        // The server may already have closed on an over-long line.
        let _ = s.write_all(request).await;
        let mut reply = Vec::new();
        match s.read_to_end(&mut reply).await {
            Ok(_) if reply.is_empty() => None,
            Ok(_) => Some(String::from_utf8(reply).expect("utf-8 reply")),
            // Closing with our unread bytes queued resets the connection.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("the server answers or closes in time")
}

#[tokio::test]
async fn get_replies_with_the_counters_get_json() {
    let dir = TempDir::new("get");
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    let reply = ask(&dir.sock(), b"GET\r\n").await;
    assert_eq!(reply.as_deref(), Some(counters.get_json().as_str()));
    assert!(reply
        .unwrap()
        .starts_with(r#"[{"RX":{"success":{"total":12,"dupsyn":2"#));
    server.stop().await;
}

#[tokio::test]
async fn refresh_replies_with_the_change_and_moves_the_baseline() {
    let dir = TempDir::new("refresh");
    let mut now = sample();
    let counters = shared(&now);
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);

    let first = ask(&dir.sock(), b"REFRESH\r\n").await.unwrap();
    assert_eq!(
        first,
        now.to_refresh_json(&Counters::new(["RX", "TX", "web"]))
    );
    // REFRESH has no capture element and folds unreach into reject.
    assert!(!first.contains("pcap"));
    assert!(first.contains(r#""failure":{"total":4,"timeout":1,"reject":3}"#));

    let before = now.clone();
    now.filters[1].1.success.total += 5;
    counters.publish(&now);
    let second = ask(&dir.sock(), b"REFRESH\r\n").await.unwrap();
    assert_eq!(second, now.to_refresh_json(&before));
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(v[0]["RX"]["success"]["total"], 0);
    assert_eq!(v[1]["TX"]["success"]["total"], 5);

    // GET still reports totals since start.
    let get = ask(&dir.sock(), b"GET\r\n").await.unwrap();
    assert_eq!(get, now.to_get_json());
    server.stop().await;
}

#[tokio::test]
async fn lf_and_crlf_terminated_lines_are_both_understood() {
    let dir = TempDir::new("eol");
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    let get = counters.get_json();
    assert_eq!(ask(&dir.sock(), b"GET\n").await.unwrap(), get);
    assert_eq!(ask(&dir.sock(), b"GET\r\n").await.unwrap(), get);
    for refresh in [&b"REFRESH\n"[..], b"REFRESH\r\n"] {
        let reply = ask(&dir.sock(), refresh).await.unwrap();
        assert!(!reply.contains("pcap"), "not a REFRESH reply: {reply}");
    }
    // A last line without newline, then half-close: still a request.
    let mut s = UnixStream::connect(dir.sock()).await.unwrap();
    s.write_all(b"GET").await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, get);
    server.stop().await;
}

#[tokio::test]
async fn any_line_other_than_refresh_acts_as_get() {
    let dir = TempDir::new("unknown");
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    let get = counters.get_json();
    for line in [
        &b"HELLO\r\n"[..],
        b"refresh\r\n",
        b"REFRESH now\r\n",
        b"\r\n",
        b"\xff\xfe\n",
    ] {
        assert_eq!(ask(&dir.sock(), line).await.unwrap(), get, "{line:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_ends_its_line_is_cut_off_while_others_are_served() {
    let dir = TempDir::new("stuck");
    let counters = shared(&sample());
    let limits = ServerLimits {
        read_timeout: Duration::from_secs(3),
        ..fast_limits()
    };
    let server = Running::start(
        SocketServer::bind_with(&dir.sock(), limits).unwrap(),
        &counters,
    );
    let mut stuck = UnixStream::connect(dir.sock()).await.unwrap();
    stuck.write_all(b"GE").await.unwrap();

    // Served while the stuck client is still connected...
    assert_eq!(
        ask(&dir.sock(), b"GET\r\n").await.unwrap(),
        counters.get_json()
    );
    let mut probe = [0u8; 1];
    match stuck.try_read(&mut probe) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the stuck client was cut off too early: {other:?}"),
    }
    // ...and the stuck client is then closed without a reply.
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, stuck.read_to_end(&mut rest))
        .await
        .expect("the stuck client is cut off")
        .unwrap();
    assert!(rest.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_over_long_line_is_cut_off_without_a_reply() {
    let dir = TempDir::new("long");
    let counters = shared(&sample());
    let limits = ServerLimits {
        max_line: 16,
        ..fast_limits()
    };
    let server = Running::start(
        SocketServer::bind_with(&dir.sock(), limits).unwrap(),
        &counters,
    );
    let mut huge = vec![b'G'; 64 * 1024];
    huge.extend_from_slice(b"\r\n");
    assert_eq!(ask(&dir.sock(), &huge).await, None);
    // Just over the limit, with its newline: still too long.
    assert_eq!(ask(&dir.sock(), &[b'G'; 17]).await, None);
    let mut seventeen = vec![b'G'; 17];
    seventeen.push(b'\n');
    assert_eq!(ask(&dir.sock(), &seventeen).await, None);
    // At the limit (the CR not counted): served.
    let mut sixteen = vec![b'G'; 16];
    sixteen.extend_from_slice(b"\r\n");
    assert_eq!(
        ask(&dir.sock(), &sixteen).await.unwrap(),
        counters.get_json()
    );
    server.stop().await;
}

#[tokio::test]
async fn two_hundred_concurrent_clients_are_all_served_or_cleanly_refused() {
    let dir = TempDir::new("many");
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    let get = counters.get_json();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let path = dir.sock();
            tokio::spawn(async move {
                let exchange = async {
                    let mut s = UnixStream::connect(&path).await?;
                    s.write_all(b"GET\r\n").await?;
                    let mut reply = String::new();
                    s.read_to_string(&mut reply).await?;
                    Ok::<_, std::io::Error>(reply)
                };
                tokio::time::timeout(PATIENCE, exchange).await
            })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for c in clients {
        match c.await.unwrap().expect("no client hangs") {
            Ok(reply) if reply == get => served += 1,
            Ok(reply) if reply.is_empty() => refused += 1,
            Ok(reply) => panic!("wrong reply {reply:?}"),
            // A full listen backlog refuses a connection outright.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::ConnectionReset) => {
                refused += 1
            }
            Err(e) => panic!("unexpected client error: {e}"),
        }
    }
    assert_eq!(served + refused, 200);
    // Clients beyond max_clients wait for a slot rather than being turned
    // away, so with the kernel's backlog none should be refused.
    assert_eq!(served, 200, "{refused} refused");
    assert_eq!(ask(&dir.sock(), b"GET\n").await.unwrap(), get);
    server.stop().await;
}

#[tokio::test]
async fn a_client_beyond_the_limit_closes_the_one_idle_the_longest() {
    let dir = TempDir::new("slots");
    let counters = shared(&sample());
    let limits = ServerLimits {
        max_clients: 1,
        read_timeout: PATIENCE,
        ..fast_limits()
    };
    let server = Running::start(
        SocketServer::bind_with(&dir.sock(), limits).unwrap(),
        &counters,
    );
    // Holds the only connection, sending nothing.
    let mut stuck = UnixStream::connect(dir.sock()).await.unwrap();
    let asked = std::time::Instant::now();
    let waiting = ask(&dir.sock(), b"GET\r\n").await;
    assert_eq!(waiting.unwrap(), counters.get_json());
    assert!(
        asked.elapsed() < PATIENCE / 2,
        "it did not wait for the read timeout"
    );
    // The idle one was closed, unanswered, and counted.
    let mut rest = Vec::new();
    let _ = stuck.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
    assert_eq!(counters.server_stats().socket_dropped, 1);
    server.stop().await;
}

/// Connects `n` clients that send nothing.
async fn idle_clients(path: &Path, n: usize) -> Vec<UnixStream> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(
            UnixStream::connect(path)
                .await
                .expect("connect an idle client"),
        );
    }
    v
}

/// How long a `GET` takes to be answered, checking the answer.
async fn timed_get(path: &Path, counters: &SharedCounters) -> Duration {
    let t = std::time::Instant::now();
    assert_eq!(ask(path, b"GET\r\n").await.unwrap(), counters.get_json());
    t.elapsed()
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Raises this process's descriptor limit for the tests that hold a
/// thousand connections (both ends are here).
fn enough_fds() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = 8192.min(hard);
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard).unwrap();
    }
}

#[tokio::test]
async fn a_get_is_answered_within_a_second_with_a_thousand_idle_clients() {
    enough_fds();
    let dir = TempDir::new("idle");
    let counters = shared(&sample());
    let before = open_fds();
    // The defaults: what the daemon runs with.
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    let idle = idle_clients(&dir.sock(), 1000).await;
    // A client reading its reply a byte a second, meanwhile.
    let mut slow = UnixStream::connect(dir.sock()).await.unwrap();
    slow.write_all(b"GET\r\n").await.unwrap();
    let mut first = [0u8; 1];
    slow.read_exact(&mut first).await.unwrap();
    for _ in 0..3 {
        let took = timed_get(&dir.sock(), &counters).await;
        assert!(
            took < Duration::from_secs(1),
            "GET took {took:?} with 1000 idle clients"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        slow.read_exact(&mut first).await.unwrap();
    }
    // The idle ones are cut off at the request deadline, unanswered.
    for mut c in idle {
        let mut rest = Vec::new();
        let r = tokio::time::timeout(PATIENCE, c.read_to_end(&mut rest)).await;
        assert!(r.expect("closed by the server").is_err() || rest.is_empty());
    }
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).await.unwrap();
    assert_eq!(
        format!("{}{}", first[0] as char, String::from_utf8(rest).unwrap()).len(),
        counters.get_json().len() - 3,
        "the slow reader got its whole reply"
    );
    assert_eq!(
        counters.server_stats().socket_dropped,
        0,
        "1000 fit: none dropped"
    );
    server.stop().await;
    assert!(
        open_fds() <= before + 2,
        "descriptors left: {} then {}",
        before,
        open_fds()
    );
}

#[tokio::test]
async fn beyond_the_limit_idle_clients_make_room_and_are_counted() {
    enough_fds();
    let dir = TempDir::new("crowd");
    let counters = shared(&sample());
    let limits = ServerLimits {
        max_clients: 64,
        read_timeout: PATIENCE,
        ..fast_limits()
    };
    let server = Running::start(
        SocketServer::bind_with(&dir.sock(), limits).unwrap(),
        &counters,
    );
    let before = open_fds();
    let idle = idle_clients(&dir.sock(), 300).await;
    let took = timed_get(&dir.sock(), &counters).await;
    assert!(took < Duration::from_secs(1), "GET took {took:?}");
    // 300 idle and one GET through 64 connections: 237 closed to make room.
    wait_until("the drops counted", || {
        counters.server_stats().socket_dropped == 237
    })
    .await;
    // The server holds at most 64 of them.
    let held = open_fds() - before - idle.len();
    assert!(
        held <= 64,
        "{held} server-side descriptors for 64 connections"
    );
    drop(idle);
    server.stop().await;
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    // A crashed daemon leaves its socket file behind, nobody listening.
    drop(StdUnixListener::bind(dir.sock()).unwrap());
    assert!(fs::symlink_metadata(dir.sock())
        .unwrap()
        .file_type()
        .is_socket());
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    assert_eq!(
        ask(&dir.sock(), b"GET\r\n").await.unwrap(),
        counters.get_json()
    );
    server.stop().await;
}

#[test]
fn a_live_instance_is_not_replaced() {
    let dir = TempDir::new("live");
    let first = SocketServer::bind(&dir.sock()).unwrap();
    let err = SocketServer::bind(&dir.sock()).unwrap_err();
    assert!(matches!(err, SocketError::AlreadyServing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "another tcpeek is already serving on {}",
            dir.sock().display()
        )
    );
    // The first instance's socket is untouched.
    assert!(dir.sock().exists());
    drop(first);
    assert!(!dir.sock().exists());
}

#[test]
fn a_file_that_is_not_a_socket_is_never_removed() {
    let dir = TempDir::new("regular");
    fs::write(dir.sock(), "precious").unwrap();
    let err = SocketServer::bind(&dir.sock()).unwrap_err();
    assert!(matches!(err, SocketError::NotASocket { .. }), "{err:?}");
    assert!(err.to_string().contains(&dir.sock().display().to_string()));
    assert_eq!(fs::read_to_string(dir.sock()).unwrap(), "precious");
    // A directory in the way is not a socket either.
    fs::remove_file(dir.sock()).unwrap();
    fs::create_dir(dir.sock()).unwrap();
    let err = SocketServer::bind(&dir.sock()).unwrap_err();
    assert!(matches!(err, SocketError::NotASocket { .. }), "{err:?}");
    assert!(dir.sock().is_dir());
}

#[tokio::test]
async fn the_socket_file_is_removed_on_shutdown() {
    let dir = TempDir::new("shutdown");
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    // A client still connected does not hold up the shutdown.
    let _idle = UnixStream::connect(dir.sock()).await.unwrap();
    assert!(ask(&dir.sock(), b"GET\n").await.is_some());
    server.stop().await;
    assert!(!dir.sock().exists());
}

#[tokio::test]
async fn a_dropped_sender_also_stops_the_server() {
    let dir = TempDir::new("sender");
    let counters = shared(&sample());
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(SocketServer::bind(&dir.sock()).unwrap().serve(counters, rx));
    drop(stop);
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!dir.sock().exists());
}

#[test]
fn cleanup_leaves_a_successors_socket_alone() {
    let dir = TempDir::new("successor");
    let old = SocketServer::bind(&dir.sock()).unwrap();
    // Someone removed our file and a new instance bound the same path.
    fs::remove_file(dir.sock()).unwrap();
    let new = SocketServer::bind(&dir.sock()).unwrap();
    drop(old);
    assert!(
        dir.sock().exists(),
        "the old server removed its successor's socket"
    );
    drop(new);
    assert!(!dir.sock().exists());
}

#[test]
fn the_directory_is_created_0750_and_the_socket_0660() {
    let dir = TempDir::new("modes");
    let sock = dir.0.join("run").join("tcpeek").join("tcpeek.sock");
    let me = (nix::unistd::getuid(), nix::unistd::getgid());
    prepare_dir(&sock, Some(me)).unwrap();
    let parent = sock.parent().unwrap();
    assert_eq!(
        fs::metadata(parent).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    // Calling it again (a restart) is fine and changes nothing.
    prepare_dir(&sock, Some(me)).unwrap();
    let server = SocketServer::bind(&sock).unwrap();
    let mode = fs::symlink_metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    drop(server);
    // A file where the directory should be is an error, and is kept.
    let blocked = dir.0.join("file");
    fs::write(&blocked, "x").unwrap();
    let err = prepare_dir(&blocked.join("tcpeek.sock"), None).unwrap_err();
    assert!(err
        .to_string()
        .contains("cannot create the socket directory"));
    assert_eq!(fs::read_to_string(&blocked).unwrap(), "x");
}

/// Dropping privileges changes the whole process, so it runs in a child:
/// this test binary again, running only `drop_privileges_child`.
#[test]
fn drop_privileges_cannot_regain_root() {
    if !nix::unistd::geteuid().is_root() {
        tcpeek_testkit::skip("dropping privileges needs root");
        return;
    }
    if tcpeek::socket::lookup_user("nobody").is_err() {
        tcpeek_testkit::skip("no user 'nobody'");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "drop_privileges_child", "--nocapture"])
        .env("TCPEEK_DROP_PRIVILEGES_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn drop_privileges_child() {
    if std::env::var_os("TCPEEK_DROP_PRIVILEGES_CHILD").is_none() {
        return; // Only meaningful when run by drop_privileges_cannot_regain_root.
    }
    let (uid, gid) = tcpeek::socket::lookup_user("nobody").unwrap();
    tcpeek::socket::drop_privileges("nobody").unwrap();
    assert_eq!(nix::unistd::geteuid(), uid);
    assert_eq!(nix::unistd::getegid(), gid);
    assert_eq!(nix::unistd::getgroups().unwrap(), vec![gid]);
    assert!(nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_err());
}

#[test]
fn an_unknown_user_is_named() {
    let err = tcpeek::socket::drop_privileges("no-such-tcpeek-user").unwrap_err();
    assert_eq!(err.to_string(), "no such user 'no-such-tcpeek-user'");
}

// ---- tcpeekstat, end to end ----

/// A server on its own thread and runtime, so the test can run the
/// `tcpeekstat` binary synchronously.
struct Background {
    stop: watch::Sender<bool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Background {
    fn start(path: &Path, counters: &SharedCounters) -> Background {
        let server = SocketServer::bind_with(path, fast_limits()).unwrap();
        let (stop, rx) = watch::channel(false);
        let counters = counters.clone();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(server.serve(counters, rx)).unwrap();
        });
        Background {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tcpeekstat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpeekstat"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn tcpeekstat_prints_every_counter_as_a_table() {
    let dir = TempDir::new("table");
    let counters = shared(&sample());
    let _server = Background::start(&dir.sock(), &counters);
    let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let expected = Stats::parse(&counters.get_json()).unwrap().render_table();
    assert_eq!(table, expected);
    assert!(
        table.starts_with("RX\n  success  total        12\n"),
        "{table}"
    );
    assert!(
        table.contains("\npcap\n  stats    recv       1234\n"),
        "{table}"
    );
    assert!(table.contains("\nweb\n"));
}

#[tokio::test]
async fn get_latency_replies_with_each_filters_latency() {
    let dir = TempDir::new("latency");
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&dir.sock()).unwrap(), &counters);
    let reply = ask(&dir.sock(), b"GET_LATENCY\r\n").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(names, ["RX", "TX", "web"]);
    let rx = &v[0]["RX"];
    assert_eq!(rx["count"], 12);
    let p50 = rx["p50"].as_f64().unwrap();
    assert!((0.00095..0.00105).contains(&p50), "{rx}");
    assert!(rx["p99"].as_f64().unwrap() > 0.95, "{rx}");
    assert!(v[1]["TX"]["p99"].is_null(), "no latency recorded for TX");
    // GET is unchanged by it.
    assert_eq!(
        ask(&dir.sock(), b"GET\r\n").await.unwrap(),
        counters.get_json()
    );
    server.stop().await;
}

#[test]
fn tcpeekstat_latency_draws_each_filter() {
    let dir = TempDir::new("latency-draw");
    let counters = shared(&sample());
    let _server = Background::start(&dir.sock(), &counters);
    let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap(), "-L"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.starts_with("RX: 12 established, p50 "), "{t}");
    assert!(t.contains("512 -> 1023    : 6 "), "{t}");
    assert!(t.contains("\nTX: 0 established\n"), "{t}");
    let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap(), "-L", "-j"]);
    assert_eq!(text(&out.stdout), format!("{}\n", counters.latency_json()));
}

#[test]
fn tcpeekstat_watch_prints_each_intervals_rates() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("watch");
    let mut c = sample();
    let counters = shared(&c);
    let _server = Background::start(&dir.sock(), &counters);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpeekstat"))
        .args(["-U", dir.sock().to_str().unwrap(), "-w", "0.5"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Between samples: 10 more successes in RX, 5 of them slow, and a reset.
    let bump = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        c.filters[0].1.success.total += 10;
        c.filters[0].1.failure.total += 1;
        c.filters[0].1.failure.reject += 1;
        for i in 0..10 {
            c.detail[0]
                .latency
                .observe_ns(if i < 5 { 3_000_000_000 } else { 500_000 });
        }
        counters.publish(&c);
    });
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        seen.push(line.clone());
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"RX") && cols[1] != "0.0" {
            // 11 handshakes and 1 reset in about half a second; the
            // interval's p99 is one of the slow ones, not the old total's.
            let hs: f64 = cols[1].parse().unwrap();
            assert!((11.0..=44.0).contains(&hs), "{line}");
            assert_eq!(cols[2], cols[3], "every failure a reset: {line}");
            assert_eq!(&cols[4..6], ["0.0", "0.0"], "{line}");
            assert_eq!(cols[6..].join(" "), "3.01 s", "{line}");
            break;
        }
        assert!(seen.len() < 200, "no interval with RX traffic: {seen:?}");
    }
    assert_eq!(seen[0], tcpeek::socket::client::WATCH_HEADER);
    let _ = child.kill();
    let _ = child.wait();
    bump.join().unwrap();
}

#[test]
fn tcpeekstat_json_prints_the_get_reply_on_one_line() {
    let dir = TempDir::new("json");
    let counters = shared(&sample());
    let _server = Background::start(&dir.sock(), &counters);
    for flag in ["-j", "--json"] {
        let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap(), flag]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{}\n", counters.get_json()));
    }
}

#[test]
fn tcpeekstat_gmetric_sends_the_change_since_the_last_run() {
    let dir = TempDir::new("gmetric");
    let log = dir.0.join("gmetric.log");
    let fake = dir.0.join("gmetric");
    fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let counters = shared(&sample());
    let _server = Background::start(&dir.sock(), &counters);
    let run = || {
        let out = tcpeekstat(&[
            "-U",
            dir.sock().to_str().unwrap(),
            "-g",
            "--gmetric-bin",
            fake.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
        let calls = fs::read_to_string(&log).unwrap();
        fs::remove_file(&log).unwrap();
        calls
    };
    let first = run();
    let expected: String = [
        ("RX_success_dupsyn", 2),
        ("RX_success_dupsynack", 1),
        ("RX_failure_timeout", 1),
        ("RX_failure_reject", 3), // reject + unreach, as the original
        ("TX_success_dupsyn", 0),
        ("TX_success_dupsynack", 0),
        ("TX_failure_timeout", 0),
        ("TX_failure_reject", 0),
        ("web_success_dupsyn", 0),
        ("web_success_dupsynack", 0),
        ("web_failure_timeout", 0),
        ("web_failure_reject", 1),
    ]
    .iter()
    .map(|(m, v)| format!("-n tcpeek_{m} -v {v} -t uint32\n"))
    .collect();
    assert_eq!(first, expected);
    // The REFRESH moved the baseline: nothing happened since.
    let second = run();
    assert_eq!(second.lines().count(), 12);
    assert!(second.lines().all(|l| l.contains(" -v 0 ")), "{second}");
}

#[test]
fn tcpeekstat_reports_a_failing_gmetric() {
    let dir = TempDir::new("gmetric-fail");
    let counters = shared(&sample());
    let _server = Background::start(&dir.sock(), &counters);
    let out = tcpeekstat(&[
        "-U",
        dir.sock().to_str().unwrap(),
        "-g",
        "--gmetric-bin",
        "/bin/false",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("/bin/false failed for 12 of 12 metrics"),
        "{err}"
    );
    let missing = dir.0.join("no-gmetric");
    let out = tcpeekstat(&[
        "-U",
        dir.sock().to_str().unwrap(),
        "-g",
        "--gmetric-bin",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot run"), "{err}");
    assert!(err.contains("No such file"), "cause chain missing: {err}");
}

#[test]
fn tcpeekstat_without_a_daemon_says_so_and_exits_1() {
    let dir = TempDir::new("nodaemon");
    let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "tcpeekstat: no tcpeek is listening on {} (no such file",
            dir.sock().display()
        )),
        "{err}"
    );
    // A stale socket file: connection refused.
    drop(StdUnixListener::bind(dir.sock()).unwrap());
    let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap(), "-j"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "tcpeekstat: no tcpeek is listening on {} (connection refused)\n",
            dir.sock().display()
        )
    );
}

#[test]
fn tcpeekstat_rejects_a_reply_that_is_not_tcpeeks() {
    let dir = TempDir::new("foreign");
    let listener = StdUnixListener::bind(dir.sock()).unwrap();
    let server = thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut line = [0u8; 16];
        let _ = s.read(&mut line);
        s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
    });
    let out = tcpeekstat(&["-U", dir.sock().to_str().unwrap()]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "is not the expected JSON array of counters (it starts \"SSH-2.0-OpenSSH_9.2\\r\\n\")"
        ),
        "{err}"
    );
}

#[test]
fn tcpeekstat_usage_errors_exit_1_and_help_exits_0() {
    let out = tcpeekstat(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(1));
    let out = tcpeekstat(&["-j", "-g"]);
    assert_eq!(out.status.code(), Some(1));
    let out = tcpeekstat(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--gmetric"));
    let out = tcpeekstat(&["-v"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("tcpeekstat "));
}

/// Polls `cond` until it holds, within [`PATIENCE`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_removed_socket_and_directory_are_re_created() {
    let dir = TempDir::new("removed");
    let sub = dir.0.join("run");
    let path = sub.join("tcpeek.sock");
    fs::create_dir_all(&sub).unwrap();
    let counters = shared(&sample());
    let server = Running::start(SocketServer::bind(&path).unwrap(), &counters);
    assert_eq!(ask(&path, b"GET\r\n").await.unwrap(), counters.get_json());
    for remove in [
        |p: &Path| fs::remove_file(p).unwrap(),
        |p: &Path| fs::remove_dir_all(p.parent().unwrap()).unwrap(),
    ] {
        remove(&path);
        wait_until("the socket back", || path.exists()).await;
        assert_eq!(ask(&path, b"GET\r\n").await.unwrap(), counters.get_json());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
    }
    // A file someone else put there is never replaced.
    // (Renamed over it: the server may re-create it at any moment.)
    let theirs = dir.0.join("theirs");
    fs::write(&theirs, "not ours").unwrap();
    fs::rename(&theirs, &path).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fs::read_to_string(&path).unwrap(), "not ours");
    server.stop().await;
    assert!(path.exists(), "not ours to remove at the end either");
}
