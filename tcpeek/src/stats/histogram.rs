//! Latency histograms.
//!
//! - [`Histogram`] counts durations into fixed buckets ([`Buckets`], the
//!   `le` bounds of Prometheus: a bucket holds the durations up to and
//!   including its bound), for the metrics.
//! - [`LogHistogram`] counts them in rows of powers of two, each split into
//!   eight steps: what the summary draws (bcc's log2 rows) and where the
//!   percentiles come from, within 1/16 of the true value.
//!
//! Durations are integer nanoseconds (microseconds for [`LogHistogram`]),
//! so where a duration lands never depends on floating-point rounding.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The default bucket bounds, in seconds. Up to half a second they follow
/// the usual latency series; above it each bound sits just below a SYN
/// retransmission epoch (Linux's initial RTO of 1 s, doubling: 1, 2, 4 ..
/// 128 s after the first SYN), so that a handshake slowed by one lost SYN
/// lands in a bucket of its own.
pub const DEFAULT_BUCKETS: [f64; 20] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.9, 1.9,
    3.9, 7.9, 15.9, 31.9, 63.9, 127.9,
];

/// Most bounds a bucket list may have: each is one series per filter,
/// family and histogram.
pub const MAX_BUCKETS: usize = 64;

/// Ascending, distinct, positive bucket bounds: as given in seconds and as
/// whole nanoseconds, which the counting compares against.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    secs: Arc<[f64]>,
    ns: Arc<[u64]>,
    /// `octave[k]`: how many bounds are below 2^k ns, where the search for
    /// a duration of 2^k to 2^(k+1) - 1 ns starts: a few compares at most
    /// (the defaults put at most two bounds in an octave) where a binary
    /// search over 20 took five unpredictable branches.
    octave: Arc<[u8; 64]>,
}

/// Why a bucket list was refused; each names the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BucketsError {
    #[error("no bucket bounds given")]
    Empty,
    #[error("'{0}' is not a number of seconds")]
    NotANumber(String),
    #[error("'{0}' is not a positive, finite number of seconds")]
    NotPositive(String),
    #[error("'{0}' is below a nanosecond, the resolution of the clock")]
    TooFine(String),
    #[error(
        "'{next}' does not follow '{prev}': bounds must be in ascending order, without repeats"
    )]
    NotAscending { prev: String, next: String },
    #[error("{0} bucket bounds; at most {MAX_BUCKETS} are allowed")]
    TooMany(usize),
}

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets::from_secs(&DEFAULT_BUCKETS).expect("the default buckets are valid")
    }
}

impl Buckets {
    /// A comma-separated list of bounds in seconds: `0.001,0.01,0.1,1`.
    pub fn parse(list: &str) -> Result<Buckets, BucketsError> {
        let mut secs = Vec::new();
        let mut texts = Vec::new();
        for t in list.split(',').map(str::trim) {
            if t.is_empty() && list.trim().is_empty() {
                return Err(BucketsError::Empty);
            }
            let v: f64 = t
                .parse()
                .map_err(|_| BucketsError::NotANumber(t.to_string()))?;
            secs.push(v);
            texts.push(t);
        }
        Buckets::checked(&secs, |i| texts[i].to_string())
    }

    /// Bounds in seconds.
    pub fn from_secs(secs: &[f64]) -> Result<Buckets, BucketsError> {
        Buckets::checked(secs, |i| secs[i].to_string())
    }

    fn checked(secs: &[f64], text: impl Fn(usize) -> String) -> Result<Buckets, BucketsError> {
        if secs.is_empty() {
            return Err(BucketsError::Empty);
        }
        if secs.len() > MAX_BUCKETS {
            return Err(BucketsError::TooMany(secs.len()));
        }
        let mut ns = Vec::with_capacity(secs.len());
        for (i, &s) in secs.iter().enumerate() {
            if !(s.is_finite() && s > 0.0) {
                return Err(BucketsError::NotPositive(text(i)));
            }
            let n = (s * 1e9).round();
            if n < 1.0 {
                return Err(BucketsError::TooFine(text(i)));
            }
            let n = n as u64;
            if let Some(&prev) = ns.last() {
                if n <= prev {
                    return Err(BucketsError::NotAscending {
                        prev: text(i - 1),
                        next: text(i),
                    });
                }
            }
            ns.push(n);
        }
        let mut octave = [0u8; 64];
        for (k, o) in octave.iter_mut().enumerate() {
            // At most MAX_BUCKETS: fits.
            *o = ns.partition_point(|&b| b < 1u64 << k) as u8;
        }
        Ok(Buckets {
            secs: secs.into(),
            ns: ns.into(),
            octave: Arc::new(octave),
        })
    }

    /// The bounds in seconds, as given.
    pub fn secs(&self) -> &[f64] {
        &self.secs
    }

    /// Which bucket `ns` falls in: the first whose bound it does not
    /// exceed, or `len()` (the `+Inf` bucket).
    pub(crate) fn index(&self, ns: u64) -> usize {
        if ns == 0 {
            return 0;
        }
        let mut i = usize::from(self.octave[63 - ns.leading_zeros() as usize]);
        while self.ns.get(i).is_some_and(|&b| b < ns) {
            i += 1;
        }
        i
    }

    pub fn len(&self) -> usize {
        self.ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }
}

impl fmt::Display for Buckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.secs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Durations counted into [`Buckets`]: one count per bucket (not
/// cumulative) and a last one above every bound, plus their sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    sum_ns: u64,
}

impl Histogram {
    pub fn new(buckets: &Buckets) -> Histogram {
        Histogram {
            counts: vec![0; buckets.len() + 1],
            sum_ns: 0,
        }
    }

    /// Counts one duration. `buckets` must be the ones it was made with.
    pub fn observe(&mut self, buckets: &Buckets, ns: u64) {
        self.observe_at((buckets.index(ns), ns));
    }

    /// Counts a duration whose bucket is known: `(buckets.index(ns), ns)`.
    pub(crate) fn observe_at(&mut self, (i, ns): (usize, u64)) {
        self.counts[i] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// Per-bucket counts, the `+Inf` bucket last.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the durations, in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }
}

/// Steps per power of two in a [`LogHistogram`] row.
const STEPS: usize = 8;
const STEP_BITS: u32 = STEPS.trailing_zeros();
/// Durations of 2^40 us (12.7 days) and more share the last slot.
const MAX_LOG2: u32 = 40;
const SLOTS: usize = (MAX_LOG2 as usize - STEP_BITS as usize + 1) * STEPS;

/// Durations in microseconds in log-linear slots: 0 to 7 us exactly, then
/// each power of two in eight equal steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogHistogram {
    counts: Box<[u64; SLOTS]>,
    total: u64,
}

impl Default for LogHistogram {
    fn default() -> LogHistogram {
        LogHistogram {
            counts: Box::new([0; SLOTS]),
            total: 0,
        }
    }
}

/// One row of the log2 drawing: durations `lo..=hi` microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    #[serde(rename = "lo_us")]
    pub lo: u64,
    #[serde(rename = "hi_us")]
    pub hi: u64,
    pub count: u64,
}

/// A [`LogHistogram`] as the socket's `GET_LATENCY` returns it: the
/// count, p50, p90 and p99 in seconds (null when empty), the log2 rows
/// to draw, and every non-empty slot as `[first_us, count]`, from which a
/// client rebuilds the histogram (to take the difference of two).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub rows: Vec<Row>,
    pub slots: Vec<[u64; 2]>,
}

impl LogHistogram {
    fn slot(us: u64) -> usize {
        let us = us.min((1 << MAX_LOG2) - 1);
        if us < STEPS as u64 {
            return us as usize;
        }
        let k = 63 - us.leading_zeros();
        let step = (us >> (k - STEP_BITS)) as usize & (STEPS - 1);
        (k - STEP_BITS + 1) as usize * STEPS + step
    }

    /// The durations a slot holds: `lo..lo + width`.
    fn slot_range(i: usize) -> (u64, u64) {
        if i < STEPS {
            return (i as u64, 1);
        }
        let k = (i / STEPS) as u32 + STEP_BITS - 1;
        let step = (i % STEPS) as u64;
        let width = 1u64 << (k - STEP_BITS);
        ((STEPS as u64 + step) * width, width)
    }

    pub fn observe_ns(&mut self, ns: u64) {
        self.observe_slot(LogHistogram::slot_of_ns(ns));
    }

    pub(crate) fn slot_of_ns(ns: u64) -> usize {
        LogHistogram::slot(ns / 1000)
    }

    pub(crate) fn observe_slot(&mut self, slot: usize) {
        self.counts[slot] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0 < q <= 1), in seconds: the middle of the slot
    /// holding the duration ranked `ceil(q * count)`. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = LogHistogram::slot_range(i);
                let mid = lo as f64 + (width - 1) as f64 / 2.0;
                return Some(mid / 1e6);
            }
        }
        unreachable!("the slots add up to the total")
    }

    /// The summary of it that clients get.
    pub fn latency(&self) -> Latency {
        Latency {
            count: self.total,
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            rows: self.rows(),
            slots: (0..SLOTS)
                .filter(|&i| self.counts[i] > 0)
                .map(|i| [LogHistogram::slot_range(i).0, self.counts[i]])
                .collect(),
        }
    }

    /// Rebuilds a histogram from [`Latency::slots`].
    pub fn from_slots(slots: &[[u64; 2]]) -> LogHistogram {
        let mut h = LogHistogram::default();
        for &[us, n] in slots {
            h.counts[LogHistogram::slot(us)] += n;
            h.total += n;
        }
        h
    }

    /// What was counted since `earlier` (saturating: a restarted daemon
    /// counts from zero).
    pub fn since(&self, earlier: &LogHistogram) -> LogHistogram {
        let mut d = LogHistogram::default();
        for i in 0..SLOTS {
            d.counts[i] = self.counts[i].saturating_sub(earlier.counts[i]);
            d.total += d.counts[i];
        }
        d
    }

    /// bcc's log2 rows (0-1, 2-3, 4-7 .. us) from the first to the last
    /// non-empty one.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for (i, &c) in self.counts.iter().enumerate() {
            let (lo, width) = LogHistogram::slot_range(i);
            let (rlo, rhi) = match lo {
                0 | 1 => (0, 1),
                _ => {
                    let k = 63 - lo.leading_zeros();
                    (1 << k, (1 << (k + 1)) - 1)
                }
            };
            debug_assert!(lo + width - 1 <= rhi);
            match rows.last_mut() {
                Some(r) if r.lo == rlo => r.count += c,
                _ => rows.push(Row {
                    lo: rlo,
                    hi: rhi,
                    count: c,
                }),
            }
        }
        let first = rows.iter().position(|r| r.count > 0);
        let last = rows.iter().rposition(|r| r.count > 0);
        match (first, last) {
            (Some(a), Some(b)) => rows[a..=b].to_vec(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_on_a_bound_counts_in_that_bucket() {
        let b = Buckets::from_secs(&[0.001, 0.01]).unwrap();
        let mut h = Histogram::new(&b);
        for ns in [0, 1_000_000, 1_000_001, 10_000_000, 10_000_001, u64::MAX] {
            h.observe(&b, ns);
        }
        assert_eq!(h.counts(), [2, 2, 2], "le semantics, then +Inf");
        assert_eq!(h.count(), 6);
        assert_eq!(h.sum_secs(), u64::MAX as f64 / 1e9, "the sum saturates");
    }

    #[test]
    fn the_octave_search_finds_what_a_binary_search_finds() {
        let mut rng = tcpeek_testkit::rng::Rng::new(9);
        for b in [
            Buckets::default(),
            Buckets::parse("1e-9,2e-9,3e-9,1").unwrap(),
            Buckets::parse("100").unwrap(),
        ] {
            let mut probes: Vec<u64> = vec![0, 1, 2, 3, u64::MAX, u64::MAX - 1];
            for &n in b.ns.iter() {
                probes.extend([n - 1, n, n + 1]);
            }
            for _ in 0..10_000 {
                probes.push(rng.next_u64() >> rng.below(64));
            }
            for ns in probes {
                assert_eq!(
                    b.index(ns),
                    b.ns.partition_point(|&x| x < ns),
                    "{ns} in {b}"
                );
            }
        }
    }

    #[test]
    fn the_default_buckets_separate_the_retransmission_epochs() {
        let b = Buckets::default();
        let mut h = Histogram::new(&b);
        // Answered at once, after 1, 2 and 3 lost SYNs (1, 3, 7 s).
        for secs in [0.0002, 1.0002, 3.0002, 7.0002] {
            h.observe(&b, (secs * 1e9) as u64);
        }
        let at = |bound: f64| b.secs().iter().position(|&s| s == bound).unwrap();
        let hit: Vec<usize> = (0..h.counts().len())
            .filter(|&i| h.counts()[i] > 0)
            .collect();
        assert_eq!(hit, [at(0.00025), at(1.9), at(3.9), at(7.9)]);
        assert_eq!(b.len(), 20);
        assert_eq!(b.to_string().split(',').next(), Some("0.0001"));
    }

    #[test]
    fn bad_bucket_lists_name_the_offending_value() {
        for (list, want) in [
            ("", "no bucket bounds given"),
            ("0.1,fast", "'fast' is not a number of seconds"),
            ("0.1,,1", "'' is not a number of seconds"),
            ("-1", "'-1' is not a positive"),
            ("0", "'0' is not a positive"),
            ("inf", "'inf' is not a positive"),
            ("NaN", "'NaN' is not a positive"),
            ("1e-12", "'1e-12' is below a nanosecond"),
            ("0.1, 0.05", "'0.05' does not follow '0.1'"),
            ("1,1", "'1' does not follow '1'"),
        ] {
            let e = Buckets::parse(list).unwrap_err().to_string();
            assert!(e.contains(want), "{list:?}: {e}");
        }
        let many = vec!["1"; MAX_BUCKETS + 1].join(",");
        assert!(Buckets::parse(&many)
            .unwrap_err()
            .to_string()
            .contains("at most 64"));
        let b = Buckets::parse(" 0.5 ,1,2.5").unwrap();
        assert_eq!(b.secs(), [0.5, 1.0, 2.5]);
    }

    #[test]
    fn log_slots_tile_the_range_without_gaps() {
        let mut next = 0;
        for i in 0..SLOTS {
            let (lo, width) = LogHistogram::slot_range(i);
            assert_eq!(lo, next, "slot {i}");
            assert_eq!(LogHistogram::slot(lo), i);
            assert_eq!(LogHistogram::slot(lo + width - 1), i);
            next = lo + width;
        }
        assert_eq!(next, 1 << MAX_LOG2);
        assert_eq!(LogHistogram::slot(u64::MAX), SLOTS - 1);
    }

    #[test]
    fn quantiles_are_within_a_sixteenth() {
        let mut h = LogHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        // 1..=10000 us, one each.
        for us in 1..=10_000u64 {
            h.observe_ns(us * 1000);
        }
        for (q, exact) in [
            (0.5, 5000.0),
            (0.9, 9000.0),
            (0.99, 9900.0),
            (1.0, 10_000.0),
        ] {
            let got = h.quantile(q).unwrap() * 1e6;
            assert!(
                (got - exact).abs() <= exact / 16.0,
                "p{q}: {got} vs {exact}"
            );
        }
        let mut one = LogHistogram::default();
        one.observe_ns(3_400);
        assert_eq!(one.quantile(0.99), Some(0.000003), "exact below 8 us");
        assert_eq!(one.quantile(0.0), Some(0.000003), "the smallest rank is 1");
    }

    #[test]
    fn a_histogram_survives_its_slots_and_differences_are_per_slot() {
        let mut h = LogHistogram::default();
        for us in [3, 900, 901, 5000, 2_000_000] {
            h.observe_ns(us * 1000);
        }
        let l = h.latency();
        assert_eq!(l.count, 5);
        assert_eq!(LogHistogram::from_slots(&l.slots), h);
        let json = serde_json::to_string(&l).unwrap();
        let back: Latency = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        let mut later = h.clone();
        later.observe_ns(7_000_000_000);
        let d = later.since(&h);
        assert_eq!(
            (d.count(), d.quantile(1.0).map(|s| s.round())),
            (1, Some(7.0))
        );
        assert_eq!(h.since(&later).count(), 0, "saturates");
        assert_eq!(LogHistogram::default().latency().p99, None);
    }

    #[test]
    fn rows_are_bccs_log2_rows_from_first_to_last_used() {
        let mut h = LogHistogram::default();
        assert!(h.rows().is_empty());
        for us in [1, 5, 6, 7, 40, 63] {
            h.observe_ns(us * 1000);
        }
        let rows: Vec<(u64, u64, u64)> = h.rows().iter().map(|r| (r.lo, r.hi, r.count)).collect();
        assert_eq!(
            rows,
            [
                (0, 1, 1),
                (2, 3, 0),
                (4, 7, 3),
                (8, 15, 0),
                (16, 31, 0),
                (32, 63, 2)
            ]
        );
    }
}
