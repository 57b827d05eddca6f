//! `tcpeekstat`: print the counters of a running tcpeek, read from its UNIX
//! socket, as a table (default), as JSON (`-j`), or feed them to Ganglia
//! (`-g`). The work is done in `tcpeek::socket::client`; this is the command
//! line around it.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tcpeek::cli::StatArgs as Args;
use tcpeek::socket::client::{self, DEFAULT_TIMEOUT};
use tcpeek::socket::Request;

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
