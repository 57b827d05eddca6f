//! `tcpeekstat`: print the counters of a running tcpeek, read from its UNIX
//! socket, as a table (default), as JSON (`-j`), or feed them to Ganglia
//! (`-g`). The work is done in `tcpeek::socket::client`; this is the command
//! line around it.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser};
use tcpeek::socket::client::{self, DEFAULT_GMETRIC, DEFAULT_TIMEOUT};
use tcpeek::socket::{Request, DEFAULT_SOCKET_PATH};

/// Print the handshake counters of a running tcpeek.
///
/// Without options, prints every filter's totals since tcpeek started as a
/// table.
#[derive(Debug, Parser)]
#[command(name = "tcpeekstat", version, disable_version_flag = true)]
struct Args {
    /// The daemon's UNIX socket.
    #[arg(short = 'U', long = "socket", value_name = "PATH", default_value = DEFAULT_SOCKET_PATH)]
    socket: PathBuf,

    /// Print the totals as one line of compact JSON (the socket's reply).
    #[arg(short, long, conflicts_with = "gmetric")]
    json: bool,

    /// Send the change since the previous -g (a REFRESH) to Ganglia: run
    /// gmetric for every reject, timeout, dupsyn and dupsynack counter.
    #[arg(short, long)]
    gmetric: bool,

    /// Print each filter's handshake latency: p50, p90, p99 and a log2
    /// histogram (GET_LATENCY; with -j, its JSON).
    #[arg(short = 'L', long, conflicts_with = "gmetric")]
    latency: bool,

    /// Watch: every SEC seconds, print one line per filter with its
    /// handshakes, failures (in all and by kind) per second and the p99
    /// latency over the interval, until interrupted.
    #[arg(short = 'w', long, value_name = "SEC", conflicts_with_all = ["gmetric", "json", "latency"],
          value_parser = parse_interval)]
    watch: Option<f64>,

    /// The gmetric program run by -g.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_GMETRIC)]
    gmetric_bin: PathBuf,

    /// Print the version and exit.
    #[arg(short = 'v', long, action = ArgAction::Version)]
    version: Option<bool>,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; everything else is 1.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        // `tcpeekstat | head` is a normal way to use it.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpeekstat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from 0.1 to 86400"
        )),
    }
}

fn sample(args: &Args) -> anyhow::Result<client::Sample> {
    let reply = client::query_blocking(&args.socket, Request::Get, DEFAULT_TIMEOUT)?;
    let stats = client::parse_reply(&args.socket, &reply)?;
    let reply = client::query_blocking(&args.socket, Request::Latency, DEFAULT_TIMEOUT)?;
    let latency = client::parse_latency(&args.socket, &reply)?;
    Ok(client::Sample::new(stats, &latency))
}

/// `-w`: GET (not REFRESH, which would move a `-g` user's baseline) and
/// GET_LATENCY every interval; rates are the differences.
fn watch(args: &Args, every: f64) -> anyhow::Result<()> {
    let mut out = io::stdout();
    let mut before = sample(args)?;
    let mut at = Instant::now();
    let mut n = 0u64;
    loop {
        std::thread::sleep(Duration::from_secs_f64(every));
        let now = sample(args)?;
        let t = Instant::now();
        if n.is_multiple_of(20) {
            writeln!(out, "{}", client::WATCH_HEADER)?;
        }
        n += 1;
        for line in client::watch_lines(&before, &now, (t - at).as_secs_f64()) {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        (before, at) = (now, t);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if let Some(every) = args.watch {
        return watch(args, every);
    }
    if args.latency {
        let reply = client::query_blocking(&args.socket, Request::Latency, DEFAULT_TIMEOUT)?;
        let latency = client::parse_latency(&args.socket, &reply)?;
        let mut out = io::stdout().lock();
        if args.json {
            writeln!(out, "{}", reply.trim_end())?;
        } else {
            for (name, l) in &latency {
                out.write_all(tcpeek::output::latency::render(name, l, "").as_bytes())?;
            }
        }
        out.flush()?;
        return Ok(());
    }
    let request = if args.gmetric {
        Request::Refresh
    } else {
        Request::Get
    };
    let reply = client::query_blocking(&args.socket, request, DEFAULT_TIMEOUT)?;
    let stats = client::parse_reply(&args.socket, &reply)?;
    if args.gmetric {
        client::send_gmetrics(&args.gmetric_bin, &stats)?;
        return Ok(());
    }
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", stats.to_json())?;
    } else {
        out.write_all(stats.render_table().as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
