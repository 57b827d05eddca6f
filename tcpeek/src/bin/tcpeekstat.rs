//! `tcpeekstat`: print the counters of a running tcpeek, read from its UNIX
//! socket, as a table (default), as JSON (`-j`), or feed them to Ganglia
//! (`-g`). The work is done in `tcpeek::socket::client`; this is the command
//! line around it.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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

fn run(args: &Args) -> anyhow::Result<()> {
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
