//! Outputs for people and scripts: a line per finished handshake (the
//! original's table on stderr, or JSON Lines on stdout with `--json`) and
//! the summary printed at exit.

pub mod latency;
mod line;
pub mod queue;
mod summary;

use std::io::{self, Write};

pub use line::{format_line, json_line, HEADER};
pub use summary::{format_summary, SummaryInfo};

use crate::engine::Finished;

/// Where finished handshakes are printed.
pub struct SessionPrinter {
    mode: Mode,
    out: Box<dyn Write + Send>,
    header_done: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Quiet,
    Table,
    Json,
}

impl SessionPrinter {
    /// `quiet` suppresses per-handshake output; `json` selects JSON Lines.
    pub fn new(quiet: bool, json: bool, out: Box<dyn Write + Send>) -> SessionPrinter {
        let mode = match (quiet, json) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Json,
            (false, false) => Mode::Table,
        };
        SessionPrinter {
            mode,
            out,
            header_done: false,
        }
    }

    /// The table header (printed once, before the first line; the original
    /// prints it at start-up).
    pub fn header(&mut self) -> io::Result<()> {
        if self.mode == Mode::Table && !self.header_done {
            self.header_done = true;
            self.out.write_all(HEADER.as_bytes())?;
        }
        Ok(())
    }

    /// Prints one finished handshake; `filters` are the named filters it
    /// counted in. Each line is one write, so that an output that drops
    /// writes (output::queue) drops whole lines.
    pub fn session(&mut self, f: &Finished, filters: &[&str]) -> io::Result<()> {
        let mut line = match self.mode {
            Mode::Quiet => return Ok(()),
            Mode::Table => {
                self.header()?;
                format_line(f)
            }
            Mode::Json => json_line(f, filters),
        };
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    /// Whether nothing is printed per handshake (`-q`).
    pub fn is_quiet(&self) -> bool {
        self.mode == Mode::Quiet
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
