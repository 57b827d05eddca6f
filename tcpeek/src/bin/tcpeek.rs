//! `tcpeek`: the daemon. Parses the command line, validates it, runs.

use std::io::Write;
use std::process::ExitCode;

use tcpeek::cli::{parse_args, ArgsError, Config};

/// Diagnostics on stderr, at the `-l` level.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let level = r.level().as_str().to_ascii_lowercase();
            let _ = writeln!(std::io::stderr(), "tcpeek: {level}: {}", r.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        // Usage, help and version, as clap prints them (exit 2 or 0).
        Err(ArgsError::Cli(e)) => e.exit(),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tcpeek: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::set_max_level(args.loglevel);
    let _ = log::set_logger(&LOGGER);
    let reloadable = args.config.is_some();
    let result = Config::from_args(args)
        .map(|c| if reloadable { c.with_argv(&argv) } else { c })
        .map_err(anyhow::Error::from)
        .and_then(tcpeek::daemon::run);
    match result {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!, which panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "tcpeek: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
