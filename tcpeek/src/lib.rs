//! tcpeek: a passive monitor of TCP three-way handshakes.
//!
//! The data's path, one module per stage, dependencies pointing one way:
//!
//! ```text
//! capture (libpcap | eBPF) -> event -> engine -> filter + stats -> output | socket | metrics
//! ```
//!
//! - [`capture`] turns frames (libpcap) or ring-buffer records (eBPF) into
//!   [`tcpeek_common::Event`]s;
//! - [`event`] gives the engine a typed view of an event;
//! - [`engine`] runs the per-handshake state machine and reports finished
//!   handshakes; it has no I/O and takes time as an argument;
//! - [`filter`] parses the filter expressions and decides which named filters
//!   a handshake belongs to; [`stats`] keeps the counters;
//! - [`output`] prints real-time lines, JSON Lines and the exit summary;
//!   [`socket`] serves the counters on a UNIX socket; [`metrics`] serves
//!   them to Prometheus;
//! - [`cli`] turns the command line into a validated [`cli::Config`] and
//!   [`daemon`] wires the stages together.

pub mod capture;
pub mod cli;
pub mod clients;
pub mod daemon;
pub mod engine;
pub mod event;
pub mod filter;
pub mod local;
pub mod metrics;
pub mod output;
pub mod socket;
pub mod stats;
