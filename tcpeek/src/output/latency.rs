//! A filter's handshake latency drawn as bcc's tools draw a histogram:
//! log2 rows of microseconds with bars, under a line with p50, p90 and
//! p99. Used by the exit summary and by `tcpeekstat -L`.

use std::fmt::Write;

use crate::stats::histogram::Latency;

/// Width of the longest bar.
const BAR: u64 = 30;

/// A duration in seconds, in the unit that reads best.
pub fn human(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.0} us", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// `name: N established, p50 .., p90 .., p99 ..` and the rows, each line
/// indented by `indent`.
pub fn render(name: &str, l: &Latency, indent: &str) -> String {
    let mut s = String::new();
    let q = |v: Option<f64>| v.map_or_else(|| "-".to_string(), human);
    // Writing to a String cannot fail.
    let _ = write!(s, "{indent}{name}: {} established", l.count);
    if l.count > 0 {
        let _ = write!(s, ", p50 {}, p90 {}, p99 {}", q(l.p50), q(l.p90), q(l.p99));
    }
    s.push('\n');
    if l.rows.is_empty() {
        return s;
    }
    let max = l.rows.iter().map(|r| r.count).max().unwrap_or(0).max(1);
    let _ = writeln!(s, "{indent}  {:>20} : {:<8} distribution", "usecs", "count");
    for r in &l.rows {
        let stars = (r.count * BAR).div_ceil(max) as usize;
        let _ = writeln!(
            s,
            "{indent}  {:>9} -> {:<7} : {:<8} |{:<width$}|",
            r.lo,
            r.hi,
            r.count,
            "*".repeat(stars),
            width = BAR as usize
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram::LogHistogram;

    #[test]
    fn rows_draw_bars_scaled_to_the_largest() {
        let mut h = LogHistogram::default();
        for us in [600, 700, 800, 900, 1500] {
            h.observe_ns(us * 1000);
        }
        let text = render("RX", &h.latency(), "   ");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("   RX: 5 established, p50 "), "{text}");
        assert!(
            lines[0].contains(" ms") || lines[0].contains(" us"),
            "{text}"
        );
        assert!(lines[1].contains("usecs") && lines[1].contains("distribution"));
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[2].contains("512 -> 1023") && lines[2].contains(&format!("|{}|", "*".repeat(30))),
            "{text}"
        );
        assert!(
            lines[3].contains("1024 -> 2047") && lines[3].contains("|********      "),
            "{text}"
        );
    }

    #[test]
    fn an_empty_filter_is_one_line() {
        let text = render("TX", &LogHistogram::default().latency(), "");
        assert_eq!(text, "TX: 0 established\n");
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(human(0.000845), "845 us");
        assert_eq!(human(0.0123), "12.3 ms");
        assert_eq!(human(3.1), "3.10 s");
    }
}
