//! The closing tables: per stream and mode, min/median/max over the
//! repetitions, and each mode's median rate as a percentage of the median
//! rate with no monitor.

use super::monitor::ctxt_total;
use super::run::Run;
use super::storm::StormRun;
use super::streams::Stream;

/// (min, median, max); the median of an even count is the mean of the two
/// middle values.
pub fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], med, v[n - 1]))
}

fn fmt3(s: Option<(f64, f64, f64)>, scale: f64, prec: usize) -> String {
    match s {
        Some((a, b, c)) => format!(
            "{:.p$}/{:.p$}/{:.p$}",
            a / scale,
            b / scale,
            c / scale,
            p = prec
        ),
        None => "-".into(),
    }
}

/// A mode's median rate as a percentage of `none`, the median rate with
/// no monitor.
fn percent_of_none(rate: Option<(f64, f64, f64)>, none: Option<f64>) -> String {
    match (rate, none) {
        (Some((_, m, _)), Some(n)) if n > 0.0 => format!("{:.1}%", 100.0 * m / n),
        _ => "-".into(),
    }
}

/// A peak resident set size in KiB, in MiB.
fn megabytes(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The median of a spread, to three decimals.
fn median3(s: Option<(f64, f64, f64)>) -> String {
    s.map_or("-".into(), |(_, m, _)| format!("{m:.3}"))
}

/// The drops column: nothing to count where no run had a monitor.
fn drops_cell(monitored: bool, drops: u64) -> String {
    if monitored {
        drops.to_string()
    } else {
        "-".into()
    }
}

/// The table of one replay stream. `none_rate` is the median rate of the
/// same capture with no monitor, `none_machine` its median machine ns per
/// packet (the `+machine` column: what the monitor adds to the host).
pub fn stream_table(
    stream: &Stream,
    runs: &[Run],
    modes: &[String],
    none_rate: Option<f64>,
    none_machine: Option<f64>,
) {
    println!();
    println!(
        "== {}: {} ({} packets, {} events)",
        stream.name, stream.about, stream.packets, stream.events
    );
    println!(
        "{:<16} {:>3} {:>20} {:>7} {:>17} {:>17} {:>17} {:>9} {:>8} {:>12} {:>10}",
        "mode",
        "n",
        "rate kpps",
        "%none",
        "monitor ns/pkt",
        "monitor ns/ev",
        "machine ns/pkt",
        "+machine",
        "hwm MB",
        "ctxt/ev",
        "drops"
    );
    for mode in modes {
        let rs: Vec<&Run> = runs
            .iter()
            .filter(|r| r.stream == stream.name && &r.mode == mode)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let rate = spread(rs.iter().map(|r| r.replay.pps).collect());
        let pct = percent_of_none(rate, none_rate);
        let mon: Vec<_> = rs
            .iter()
            .filter_map(|r| r.monitor.as_ref().map(|m| (r, m)))
            .collect();
        let per = |f: &dyn Fn(&Run, &super::run::Watched) -> f64| {
            spread(mon.iter().map(|(r, m)| f(r, m)).collect())
        };
        let ns_pkt = per(&|r, m| m.cpu_ns as f64 / r.packets.max(1) as f64);
        let ns_ev = per(&|r, m| m.cpu_ns as f64 / r.events.max(1) as f64);
        let machine = spread(
            rs.iter()
                .map(|r| r.machine_ns as f64 / r.packets.max(1) as f64)
                .collect(),
        );
        let hwm = megabytes(mon.iter().map(|(_, m)| m.hwm_kb).max());
        let ctxt = per(&|r, m| {
            let (v, i) = ctxt_total(&m.ctxt);
            (v + i) as f64 / r.events.max(1) as f64
        });
        let drops: u64 = mon
            .iter()
            .map(|(r, m)| m.counts.drop + m.counts.ifdrop + r.lost.0 + r.lost.1 + r.lost.2)
            .sum();
        let added = match (machine, none_machine) {
            (Some((_, m, _)), Some(n)) if !mon.is_empty() => format!("{:+.0}", m - n),
            _ => "-".into(),
        };
        println!(
            "{:<16} {:>3} {:>20} {:>7} {:>17} {:>17} {:>17} {:>9} {:>8} {:>12} {:>10}",
            mode,
            rs.len(),
            fmt3(rate, 1e3, 0),
            pct,
            fmt3(ns_pkt, 1.0, 0),
            fmt3(ns_ev, 1.0, 0),
            fmt3(machine, 1.0, 0),
            added,
            hwm,
            median3(ctxt),
            drops_cell(!mon.is_empty(), drops),
        );
    }
}

/// The storm's table.
pub fn storm_table(runs: &[StormRun], modes: &[String]) {
    println!();
    println!("== storm: connect/accept/close, 1 in 20 refused");
    println!(
        "{:<16} {:>3} {:>22} {:>7} {:>17} {:>17} {:>8} {:>10} {:>7}",
        "mode",
        "n",
        "conn/s",
        "%none",
        "monitor ns/conn",
        "machine ns/conn",
        "hwm MB",
        "ctxt/conn",
        "drops"
    );
    let none = spread(
        runs.iter()
            .filter(|r| r.monitor.is_none())
            .map(StormRun::rate)
            .collect(),
    )
    .map(|s| s.1);
    for mode in modes {
        let rs: Vec<&StormRun> = runs.iter().filter(|r| &r.mode == mode).collect();
        if rs.is_empty() {
            continue;
        }
        let rate = spread(rs.iter().map(|r| r.rate()).collect());
        let pct = percent_of_none(rate, none);
        let mon: Vec<_> = rs
            .iter()
            .filter_map(|r| r.monitor.as_ref().map(|m| (r, m)))
            .collect();
        let ns_conn = spread(
            mon.iter()
                .map(|(r, m)| m.0 as f64 / r.conns().max(1) as f64)
                .collect(),
        );
        let machine = spread(
            rs.iter()
                .map(|r| r.machine_ns as f64 / r.in_window.max(1) as f64)
                .collect(),
        );
        let hwm = megabytes(mon.iter().map(|(_, m)| m.1).max());
        let ctxt = spread(
            mon.iter()
                .map(|(r, m)| (m.3 .0 + m.3 .1) as f64 / r.conns().max(1) as f64)
                .collect(),
        );
        let drops: u64 = mon.iter().map(|(_, m)| m.2.drop + m.2.ifdrop).sum();
        println!(
            "{:<16} {:>3} {:>22} {:>7} {:>17} {:>17} {:>8} {:>10} {:>7}",
            mode,
            rs.len(),
            fmt3(rate, 1.0, 0),
            pct,
            fmt3(ns_conn, 1.0, 0),
            fmt3(machine, 1.0, 0),
            hwm,
            median3(ctxt),
            drops_cell(!mon.is_empty(), drops),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{drops_cell, median3, megabytes, percent_of_none, spread};

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(spread(Vec::new()), None);
    }

    #[test]
    fn cells_without_a_value_are_dashes() {
        assert_eq!(
            percent_of_none(Some((1.0, 50.0, 90.0)), Some(200.0)),
            "25.0%"
        );
        assert_eq!(percent_of_none(Some((1.0, 50.0, 90.0)), Some(0.0)), "-");
        assert_eq!(percent_of_none(None, Some(200.0)), "-");
        assert_eq!(megabytes(Some(1536)), "1.5");
        assert_eq!(megabytes(None), "-");
        assert_eq!(median3(Some((0.0, 0.12345, 1.0))), "0.123");
        assert_eq!(median3(None), "-");
        assert_eq!(
            (drops_cell(true, 0), drops_cell(false, 7)),
            ("0".into(), "-".into())
        );
    }
}
