//! `--config FILE`: a TOML file of the command line's long options, one
//! per line, and the filters:
//!
//! ```toml
//! interface = "eth0"
//! timeout = 30
//! icmp = true
//! metrics = "127.0.0.1:9381"
//! local = ["192.0.2.10", "[2001:db8::/64]"]
//! filters = ["web:RX@%:80:443", ":RX@%:22"]
//! ```
//!
//! Each value goes through the same clap parser as its flag, so the file
//! accepts exactly what the command line does, and a bad value is named
//! with its file, line and key. An option given on the command line
//! replaces the file's (a list entirely: `-i`, `--local`, the filters).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use toml::{Spanned, Value};

use super::Args;

/// The key holding the filter expressions (positional on the command line).
pub const FILTERS_KEY: &str = "filters";

/// Options that make no sense in a file.
const NOT_IN_A_FILE: [&str; 4] = ["config", "check", "help", "version"];

/// Why the command line and its config file do not make one.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The command line itself (clap prints it, with its usage, and exits 2).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("{path}: {line}: {key}: {problem}")]
    Entry {
        path: String,
        line: usize,
        key: String,
        problem: String,
    },
    /// The file's settings conflict with the command line's, or each other.
    #[error("{path} with the command line: {problem}")]
    Merged { path: String, problem: String },
}

/// Parses tcpeek's command line (`argv[0]` included) and, with
/// `--config`, the file under it.
pub fn parse_args(argv: &[OsString]) -> Result<Args, ArgsError> {
    let cmd = Args::command();
    let matches = cmd.clone().try_get_matches_from(argv)?;
    let cli = Args::from_arg_matches(&matches)?;
    let Some(path) = cli.config.clone() else {
        return Ok(cli);
    };
    let entries = read(&path)?;
    let from_cli = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let mut merged: Vec<OsString> = argv[..1].to_vec();
    let mut filters = Vec::new();
    for e in entries {
        if e.id == FILTERS_KEY {
            if !from_cli("expressions") {
                filters = e.args;
            }
        } else if !from_cli(&e.id) {
            merged.extend(e.args);
        }
    }
    merged.extend(argv.iter().skip(1).cloned());
    if !filters.is_empty() {
        if !argv.iter().skip(1).any(|a| a == "--") {
            merged.push("--".into());
        }
        merged.extend(filters);
    }
    let merged_err = |e: clap::Error| ArgsError::Merged {
        path: path.display().to_string(),
        problem: clap_message(&e),
    };
    let matches = cmd.try_get_matches_from(merged).map_err(merged_err)?;
    Args::from_arg_matches(&matches).map_err(merged_err)
}

/// One key of the file, as the command-line words it stands for.
struct Entry {
    /// The clap argument id, or [`FILTERS_KEY`].
    id: String,
    args: Vec<OsString>,
}

/// Reads and checks the file: every key an option, every value one its
/// flag accepts.
fn read(path: &Path) -> Result<Vec<Entry>, ArgsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ArgsError::File {
        path: shown.clone(),
        problem: format!("cannot read it: {e}"),
    })?;
    parse(&shown, &text)
}

/// Checks `text`, the contents of the file `shown`.
fn parse(shown: &str, text: &str) -> Result<Vec<Entry>, ArgsError> {
    let table: BTreeMap<String, Spanned<Value>> =
        toml::from_str(text).map_err(|e| ArgsError::File {
            path: shown.to_string(),
            problem: toml_message(&e, text),
        })?;
    let cmd = Args::command();
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in &table {
        let line = text[..value.span().start.min(text.len())]
            .matches('\n')
            .count()
            + 1;
        let entry = entry(&cmd, key, value.get_ref()).map_err(|problem| ArgsError::Entry {
            path: shown.to_string(),
            line,
            key: key.clone(),
            problem,
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// The command-line words for `key = value`.
fn entry(cmd: &clap::Command, key: &str, value: &Value) -> Result<Entry, String> {
    if key == FILTERS_KEY {
        let args = list(value)?
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(OsString::from(s)),
                other => Err(format!(
                    "a filter is a string, e.g. \"web:RX@%:80\", not {}",
                    other.type_str()
                )),
            })
            .collect::<Result<_, _>>()?;
        return Ok(Entry {
            id: FILTERS_KEY.to_string(),
            args,
        });
    }
    if NOT_IN_A_FILE.contains(&key) {
        return Err(format!("--{key} is a command-line option only"));
    }
    let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(key)) else {
        return Err(format!("unknown key; expected one of {}", known_keys(cmd)));
    };
    let flag = format!("--{key}");
    let id = arg.get_id().to_string();
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match value {
            Value::Boolean(true) => Ok(Entry {
                id,
                args: vec![flag.into()],
            }),
            Value::Boolean(false) => Ok(Entry { id, args: vec![] }),
            other => Err(format!("expected true or false, not {}", other.type_str())),
        };
    }
    let words: Vec<String> = match (arg.get_action(), value) {
        (ArgAction::Append, v) => list(v)?.into_iter().map(scalar).collect::<Result<_, _>>()?,
        // A list for a single value (--metrics-buckets): comma-separated.
        (_, Value::Array(items)) => vec![items
            .iter()
            .map(scalar)
            .collect::<Result<Vec<_>, _>>()?
            .join(",")],
        (_, v) => vec![scalar(v)?],
    };
    // The flag alone, with its own value parser: what it accepts here is
    // what it accepts on the command line (the whole line is checked
    // again once merged, for conflicts).
    let mut alone = clap::Arg::new(arg.get_id().clone())
        .long(key.to_string())
        .action(ArgAction::Append)
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        alone = alone.value_names(names.iter().cloned());
    }
    let check = clap::Command::new("tcpeek").arg(alone);
    let mut args = Vec::with_capacity(words.len());
    for w in words {
        let word = OsString::from(format!("{flag}={w}"));
        check
            .clone()
            .try_get_matches_from([OsString::from("tcpeek"), word.clone()])
            .map_err(|e| clap_message(&e))?;
        args.push(word);
    }
    Ok(Entry { id, args })
}

/// A value, or each of a list's.
fn list(value: &Value) -> Result<Vec<&Value>, String> {
    Ok(match value {
        Value::Array(items) => items.iter().collect(),
        Value::Table(_) => return Err("expected a value or a list, not a table".into()),
        v => vec![v],
    })
}

/// A string, number or boolean as its command-line word.
fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string or a number, not {}",
            other.type_str()
        )),
    }
}

/// Every key a file may hold, for an unknown key's message.
fn known_keys(cmd: &clap::Command) -> String {
    let mut keys: Vec<&str> = cmd
        .get_arguments()
        .filter_map(clap::Arg::get_long)
        .filter(|k| !NOT_IN_A_FILE.contains(k))
        .collect();
    keys.push(FILTERS_KEY);
    keys.sort_unstable();
    keys.join(", ")
}

/// A clap error as one line, without its "error: " and usage hint.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut out = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("For more information") || line.starts_with("Usage:")
        {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line.strip_prefix("error: ").unwrap_or(line));
    }
    out
}

/// A TOML syntax error as "N: what (at `text`)", N the line.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let mut out = String::new();
    let at = e.span().and_then(|s| {
        let line = text.get(..s.start)?.matches('\n').count() + 1;
        let _ = write!(out, "{line}: ");
        let what = text.get(s)?.trim();
        (!what.is_empty() && what.len() <= 60 && !what.contains('\n')).then_some(what)
    });
    out.push_str(e.message().trim());
    if let Some(what) = at {
        let _ = write!(out, " (at `{what}`)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("tcpeek")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn with_file(text: &str, args: &[&str]) -> Result<Args, ArgsError> {
        let dir = std::env::temp_dir().join(format!(
            "tcpeek-cli-file-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tcpeek.toml");
        std::fs::write(&path, text).unwrap();
        let mut a = vec!["--config", path.to_str().unwrap()];
        a.extend_from_slice(args);
        let r = parse_args(&argv(&a));
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    fn problem(text: &str) -> String {
        match parse("t.toml", text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{text:?} was accepted"),
        }
    }

    #[test]
    fn every_option_can_be_set_from_the_file() {
        let a = with_file(
            r#"
read = "x.pcap"
timeout = 9
checksum = 2
quiet = true
icmp = true
local = ["10.0.0.1", "[fd00::/64]"]
backend = "pcap"
max-sessions = 500
metrics-buckets = [0.001, 0.5]
loglevel = "debug"
filters = ["web:RX@%:80", ":RX@%:22"]
"#,
            &[],
        )
        .unwrap();
        assert_eq!(a.read.as_deref(), Some(Path::new("x.pcap")));
        assert_eq!((a.timeout, a.checksum, a.max_sessions), (9, 2, 500));
        assert!(a.quiet && a.icmp && !a.promisc);
        assert_eq!(a.local.len(), 2);
        assert_eq!(a.backend, super::super::Backend::Pcap);
        assert_eq!(a.loglevel, log::LevelFilter::Debug);
        assert_eq!(a.metrics_buckets.unwrap().secs(), [0.001, 0.5]);
        assert_eq!(a.expressions, ["web:RX@%:80", ":RX@%:22"]);
    }

    #[test]
    fn the_command_line_overrides_the_file() {
        let file = "read = \"x.pcap\"\ntimeout = 9\nlocal = [\"10.0.0.1\", \"10.0.0.2\"]\nfilters = [\"web:RX@%:80\"]\nquiet = true\n";
        let a = with_file(file, &["-t", "5", "--local", "10.0.0.3", "db:TX@%:5432"]).unwrap();
        assert_eq!(a.timeout, 5);
        assert_eq!(a.local.len(), 1, "a list is replaced, not extended");
        assert_eq!(a.expressions, ["db:TX@%:5432"]);
        assert!(a.quiet, "the file's own settings stay");
        let a = with_file(file, &[]).unwrap();
        assert_eq!((a.timeout, a.local.len()), (9, 2));
        // Filters after the command line's own "--".
        let a = with_file(file, &["--"]).unwrap();
        assert_eq!(a.expressions, ["web:RX@%:80"]);
    }

    #[test]
    fn bad_entries_name_the_file_the_line_and_the_key() {
        for (text, want) in [
            (
                "timeout = 5\n\ntimout = 5\n",
                "t.toml: 3: timout: unknown key; expected one of ",
            ),
            ("\ntimeout = 0\n", "t.toml: 2: timeout: invalid value '0'"),
            (
                "timeout = \"soon\"\n",
                "t.toml: 1: timeout: invalid value 'soon'",
            ),
            (
                "quiet = \"yes\"\n",
                "t.toml: 1: quiet: expected true or false, not string",
            ),
            (
                "backend = \"dpdk\"\n",
                "t.toml: 1: backend: invalid value 'dpdk'",
            ),
            (
                "filters = [80]\n",
                "t.toml: 1: filters: a filter is a string",
            ),
            (
                "local = [\"10.0.0.300\"]\n",
                "'10.0.0.300' is not an address or prefix",
            ),
            (
                "check = true\n",
                "t.toml: 1: check: --check is a command-line option only",
            ),
            (
                "[metrics]\nport = 1\n",
                "t.toml: 1: metrics: expected a string or a number, not table",
            ),
            (
                "metrics-buckets = \"0.1,0.01\"\n",
                "'0.01' does not follow '0.1'",
            ),
            (
                "timeout = 5\ntimeout = 6\n",
                "t.toml: 2: duplicate key (at `timeout`)",
            ),
            ("timeout = \n", "t.toml: 1: "),
        ] {
            let e = problem(text);
            assert!(e.starts_with(want) || e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_conflict_with_the_command_line_names_both() {
        let e = with_file("read = \"x.pcap\"\n", &["-i", "lo"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("with the command line") && e.contains("cannot be used with"),
            "{e}"
        );
        let e = with_file("", &[]).map(|a| a.expressions);
        assert!(e.unwrap().is_empty(), "an empty file is no settings");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = parse_args(&argv(&["--config", "/nonexistent/tcpeek.toml"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/tcpeek.toml: cannot read it: "),
            "{e}"
        );
    }
}
