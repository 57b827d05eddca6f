//! Counters: per named filter, plus what the capture and the engine lost.
//!
//! Each filter has the socket's counters ([`FilterCounters`], the
//! original's) and a finer [`FilterDetail`] for the metrics: by address
//! family and result, ICMP codes, and latency histograms ([`histogram`]).
//!
//! The aggregator owns a [`Counters`] and publishes a copy into a
//! [`SharedCounters`] after each batch of events, so that socket clients
//! read a consistent snapshot without ever holding up the engine. The JSON
//! shapes here are the original tcpeek's wire format, which third-party
//! exporters parse: keys, key order and nesting must not change.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::capture::CaptureStats;
use crate::engine::{Finished, Outcome};

pub mod histogram;

use histogram::{Buckets, Histogram, LogHistogram};

/// Success counters of one filter. Retransmission counters count sessions
/// with at least one retransmission, not segments, and only successful ones
/// (as the original does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Success {
    pub total: u64,
    pub dupsyn: u64,
    pub dupsynack: u64,
}

/// Failure counters of one filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub total: u64,
    pub timeout: u64,
    /// Every accepted RST, whoever sent it (the original's meaning).
    pub reject: u64,
    pub unreach: u64,
    /// The part of `reject` reset by the client. Not in the socket's
    /// replies, whose shape is the original's.
    #[serde(skip)]
    pub reject_by_client: u64,
}

/// Counters of one named filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilterCounters {
    pub success: Success,
    pub failure: Failure,
}

impl FilterCounters {
    /// Counts one finished handshake.
    pub fn record(&mut self, outcome: Outcome, dupsyn: u32, dupsynack: u32) {
        match outcome {
            Outcome::Success => {
                self.success.total += 1;
                self.success.dupsyn += u64::from(dupsyn > 0);
                self.success.dupsynack += u64::from(dupsynack > 0);
            }
            Outcome::Timeout => {
                self.failure.total += 1;
                self.failure.timeout += 1;
            }
            Outcome::Reject => {
                self.failure.total += 1;
                self.failure.reject += 1;
            }
            Outcome::Aborted => {
                self.failure.total += 1;
                self.failure.reject += 1;
                self.failure.reject_by_client += 1;
            }
            Outcome::Unreach => {
                self.failure.total += 1;
                self.failure.unreach += 1;
            }
        }
    }

    /// `self - earlier`, saturating (for REFRESH).
    pub fn since(&self, earlier: &FilterCounters) -> FilterCounters {
        let s = &self.success;
        let e = &earlier.success;
        let f = &self.failure;
        let g = &earlier.failure;
        FilterCounters {
            success: Success {
                total: s.total.saturating_sub(e.total),
                dupsyn: s.dupsyn.saturating_sub(e.dupsyn),
                dupsynack: s.dupsynack.saturating_sub(e.dupsynack),
            },
            failure: Failure {
                total: f.total.saturating_sub(g.total),
                timeout: f.timeout.saturating_sub(g.timeout),
                reject: f.reject.saturating_sub(g.reject),
                unreach: f.unreach.saturating_sub(g.unreach),
                reject_by_client: f.reject_by_client.saturating_sub(g.reject_by_client),
            },
        }
    }
}

/// Every outcome, in the order the metrics list them.
pub const OUTCOMES: [Outcome; 5] = [
    Outcome::Success,
    Outcome::Reject,
    Outcome::Aborted,
    Outcome::Unreach,
    Outcome::Timeout,
];

/// An outcome as the metrics' `result` label names it: a reset told apart
/// by who sent it.
pub fn result_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "established",
        Outcome::Reject => "reset_by_server",
        Outcome::Aborted => "reset_by_client",
        Outcome::Unreach => "unreachable",
        Outcome::Timeout => "timeout",
    }
}

/// Address families, in the order [`FilterDetail::family`] keeps them.
pub const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

/// ICMP codes kept per family: IPv4's 0 to 15 (type 3; higher codes are
/// unassigned and make no endpoint give up), ICMPv6's 0 to 8 (type 1) and
/// a last slot for the unassigned ones above, which do.
pub const ICMP_SLOTS: usize = 16;

/// The slot of an ICMP code in [`FamilyDetail::icmp`].
pub fn icmp_slot(v6: bool, code: u8) -> usize {
    let last = if v6 { 9 } else { ICMP_SLOTS - 1 };
    usize::from(code).min(last)
}

/// One family's part of a filter's detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyDetail {
    /// Finished handshakes by outcome, indexed by `Outcome as usize`.
    pub results: [u64; 5],
    /// Established handshakes with at least one SYN, and one SYN/ACK,
    /// retransmission (the socket's `dupsyn` and `dupsynack`).
    pub retransmitted: [u64; 2],
    /// Unreachable outcomes by ICMP code slot ([`icmp_slot`]).
    pub icmp: [u64; ICMP_SLOTS],
    /// Established handshakes: first SYN to completing ACK.
    pub duration: Histogram,
    /// Established handshakes: first SYN to the server's acknowledgement
    /// of it, and that to the completing ACK.
    pub syn_to_synack: Histogram,
    pub synack_to_ack: Histogram,
}

impl FamilyDetail {
    fn new(b: &Buckets) -> FamilyDetail {
        FamilyDetail {
            results: [0; 5],
            retransmitted: [0; 2],
            icmp: [0; ICMP_SLOTS],
            duration: Histogram::new(b),
            syn_to_synack: Histogram::new(b),
            synack_to_ack: Histogram::new(b),
        }
    }
}

/// A filter's counters by family, and its latency for percentiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterDetail {
    /// By [`FAMILIES`].
    pub family: [FamilyDetail; 2],
    /// Established handshakes of both families, first SYN to completing
    /// ACK.
    pub latency: LogHistogram,
    /// Handshakes of this filter the engine is tracking.
    pub in_progress: u64,
}

impl FilterDetail {
    pub fn new(b: &Buckets) -> FilterDetail {
        FilterDetail {
            family: [FamilyDetail::new(b), FamilyDetail::new(b)],
            latency: LogHistogram::default(),
            in_progress: 0,
        }
    }

    /// Counts a finished handshake, as [`Tally::of`] worked it out.
    pub fn record(&mut self, t: &Tally) {
        if !t.detail {
            if let Some(e) = &t.established {
                self.latency.observe_slot(e.slot);
            }
            return;
        }
        let d = &mut self.family[usize::from(t.v6)];
        d.results[t.outcome as usize] += 1;
        if let Some(e) = &t.established {
            d.retransmitted[0] += u64::from(e.dupsyn);
            d.retransmitted[1] += u64::from(e.dupsynack);
            d.duration.observe_at(e.duration);
            self.latency.observe_slot(e.slot);
            if let Some((a, c)) = e.phases {
                d.syn_to_synack.observe_at(a);
                d.synack_to_ack.observe_at(c);
            }
        }
        if let Some(slot) = t.icmp {
            d.icmp[slot] += 1;
        }
    }
}

/// What a finished handshake adds to each filter it counts in, worked out
/// once: which bucket each duration falls in is the same for every filter.
#[derive(Clone, Copy, Debug)]
pub struct Tally {
    /// Whether it counts in the per-family detail, or in the latency only.
    detail: bool,
    outcome: Outcome,
    v6: bool,
    established: Option<Established>,
    icmp: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
struct Established {
    dupsyn: bool,
    dupsynack: bool,
    /// (bucket, ns) of the whole handshake and of its two phases.
    duration: (usize, u64),
    phases: Option<((usize, u64), (usize, u64))>,
    /// Its [`LogHistogram`] slot.
    slot: usize,
}

impl Tally {
    /// With `buckets`, for the per-family detail too; without, for the
    /// latency only.
    pub fn of(f: &Finished, buckets: Option<&Buckets>) -> Tally {
        let v6 = f.conn.client.addr.is_v6();
        let at = |ns: u64| (buckets.map_or(0, |b| b.index(ns)), ns);
        let established = (f.outcome == Outcome::Success).then(|| {
            let ns = f.duration_ns();
            Established {
                dupsyn: f.dupsyn > 0,
                dupsynack: f.dupsynack > 0,
                duration: at(ns),
                // A success always had the server's acknowledgement.
                phases: buckets.and(f.phases_ns()).map(|(a, c)| (at(a), at(c))),
                slot: LogHistogram::slot_of_ns(ns),
            }
        });
        let icmp = match (f.outcome, f.icmp_code) {
            (Outcome::Unreach, Some(code)) => Some(icmp_slot(v6, code)),
            _ => None,
        };
        Tally {
            detail: buckets.is_some(),
            outcome: f.outcome,
            v6,
            established,
            icmp,
        }
    }
}

/// What the engine itself could not decide or hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Handshakes still in progress (at exit: neither success nor failure).
    pub pending: u64,
    /// Most handshakes the session table tracks (`--max-sessions`).
    pub capacity: u64,
    /// Opening SYNs not tracked because the session table was full.
    pub overflow: u64,
    /// Records that arrived later than the reordering window allows
    /// (engine::reorder); handled at the engine's clock.
    pub late: u64,
    /// Capture-file frames whose timestamp was not believed
    /// (capture::clock); handled at the believed time.
    pub clock_overruled: u64,
    /// eBPF: handshakes the server answered that timed out after the
    /// kernel's table had forgotten them (evicted by a flood, or never
    /// held: `capture::ebpf::KernelTable`), so their ACK may have been
    /// filtered out. Not judged: in no filter's counts.
    pub evicted: u64,
    /// Finished handshakes the engine forgot before their linger time to
    /// make room for new ones (the table full): a late retransmission of
    /// their SYN may then count as a handshake of its own.
    pub forgotten: u64,
}

/// Everything the outputs report: one entry per named filter in command-line
/// order, then the capture's and the engine's own counters.
#[derive(Clone, Debug, PartialEq)]
pub struct Counters {
    pub filters: Vec<(String, FilterCounters)>,
    /// The same filters' detail, in the same order.
    pub detail: Vec<FilterDetail>,
    /// The bounds of every [`Histogram`] in `detail`.
    pub buckets: Buckets,
    /// Whether `detail` is kept beyond each filter's latency: only the
    /// metrics read it, and counting it costs (BENCHMARKS.md).
    pub detailed: bool,
    /// The capture's figures, over every interface.
    pub capture: CaptureStats,
    /// Each live interface's part of `capture`, in `-i` order (empty for a
    /// capture file).
    pub interfaces: Vec<(String, CaptureStats)>,
    pub engine: EngineStats,
    /// Handshake lines dropped because their reader was too slow.
    pub lines_dropped: u64,
    pub config: ConfigStatus,
    pub servers: ServerStats,
}

/// Clients the servers closed unanswered because they were at their limit
/// of connections: the one idle the longest, closed to make room for a
/// new one, or the new one when every other was being answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// The UNIX socket's.
    pub socket_dropped: u64,
    /// The metrics endpoint's.
    pub metrics_dropped: u64,
}

/// How the configuration was last (re)loaded, as Prometheus reports its
/// own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfigStatus {
    /// Whether the last SIGHUP's configuration was taken (true until one
    /// fails).
    pub last_reload_ok: bool,
    /// When the configuration running was loaded: start or the last
    /// successful reload (seconds since the epoch).
    pub loaded_at_s: u64,
}

impl Counters {
    /// Zeroed counters for the named filters, in the given order, keeping
    /// only each filter's latency of the detail ([`Counters::keep_detail`]).
    pub fn new<I, S>(names: I) -> Counters
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let filters: Vec<(String, FilterCounters)> = names
            .into_iter()
            .map(|n| (n.into(), FilterCounters::default()))
            .collect();
        let buckets = Buckets::default();
        Counters {
            detail: vec![FilterDetail::new(&buckets); filters.len()],
            filters,
            buckets,
            detailed: false,
            capture: CaptureStats::default(),
            interfaces: Vec::new(),
            engine: EngineStats::default(),
            lines_dropped: 0,
            config: ConfigStatus {
                last_reload_ok: true,
                loaded_at_s: 0,
            },
            servers: ServerStats::default(),
        }
    }

    /// Keeps the whole per-family detail from now on, with these histogram
    /// bounds (call it before anything is counted: the detail restarts).
    pub fn keep_detail(&mut self, buckets: Buckets) {
        self.detail = vec![FilterDetail::new(&buckets); self.filters.len()];
        self.buckets = buckets;
        self.detailed = true;
    }

    /// A new filter set, `names` in order: filter `i` of the old set keeps
    /// its counters as filter `carried[i]` of the new one; the others
    /// start at zero, and the old ones not carried are gone.
    pub fn refilter(&mut self, names: &[String], carried: &[Option<usize>]) {
        let mut filters: Vec<(String, FilterCounters)> = names
            .iter()
            .map(|n| (n.clone(), FilterCounters::default()))
            .collect();
        let mut detail = vec![FilterDetail::new(&self.buckets); names.len()];
        for (i, (old, old_detail)) in self
            .filters
            .drain(..)
            .zip(self.detail.drain(..))
            .enumerate()
        {
            if let Some(&Some(j)) = carried.get(i) {
                filters[j].1 = old.1;
                detail[j] = old_detail;
            }
        }
        self.filters = filters;
        self.detail = detail;
    }

    /// What `f` adds to each filter it counts in ([`Counters::record`]).
    pub fn tally(&self, f: &Finished) -> Tally {
        Tally::of(f, self.detailed.then_some(&self.buckets))
    }

    /// Counts finished handshake `f` in filter `i`; `t` is its
    /// [`Counters::tally`].
    pub fn record(&mut self, i: usize, f: &Finished, t: &Tally) {
        self.filters[i].1.record(f.outcome, f.dupsyn, f.dupsynack);
        let d = &mut self.detail[i];
        if t.detail {
            d.in_progress = d.in_progress.saturating_sub(1);
        }
        d.record(t);
    }

    /// A handshake that counted as in progress in filter `i` ended without
    /// a verdict ([`EngineStats::evicted`]).
    pub fn forget(&mut self, i: usize) {
        if self.detailed {
            let d = &mut self.detail[i];
            d.in_progress = d.in_progress.saturating_sub(1);
        }
    }

    /// The reply to `GET`: totals since start, then the capture element.
    ///
    /// `[{"RX":{"success":{..},"failure":{..}}},..,{"pcap":{"stats":{..}}}]`
    pub fn to_get_json(&self) -> String {
        serde_json::to_string(&GetReply(self)).expect("counters serialize")
    }

    /// The reply to `GET_LATENCY`: each filter's established handshakes'
    /// latency ([`histogram::Latency`]), in filter order.
    ///
    /// `[{"RX":{"count":..,"p50":..,"p90":..,"p99":..,"rows":[..],"slots":[..]}},..]`
    pub fn to_latency_json(&self) -> String {
        let v: Vec<Named<'_, histogram::Latency>> = self
            .filters
            .iter()
            .zip(&self.detail)
            .map(|((name, _), d)| Named(name, d.latency.latency()))
            .collect();
        serde_json::to_string(&v).expect("latency serializes")
    }

    /// The reply to `REFRESH`: the change since `baseline`, with the
    /// original's reduced failure object (`reject` includes `unreach`) and no
    /// capture element.
    pub fn to_refresh_json(&self, baseline: &Counters) -> String {
        serde_json::to_string(&RefreshReply {
            now: self,
            baseline,
        })
        .expect("counters serialize")
    }
}

/// A single-key JSON object `{"name": value}`.
struct Named<'a, T: Serialize>(&'a str, T);

impl<T: Serialize> Serialize for Named<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, &self.1)?;
        m.end()
    }
}

struct GetReply<'a>(&'a Counters);

/// The capture element: the original's three libpcap keys first (exporters
/// read them by name), then keys the original did not have.
#[derive(Serialize)]
struct CaptureElement {
    recv: u64,
    drop: u64,
    ifdrop: u64,
    malformed: u64,
    pending: u64,
    overflow: u64,
    truncated: u64,
    late: u64,
    evicted: u64,
}

impl Serialize for GetReply<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut seq = s.serialize_seq(Some(c.filters.len() + 1))?;
        for (name, counters) in &c.filters {
            seq.serialize_element(&Named(name, counters))?;
        }
        let stats = CaptureElement {
            recv: c.capture.recv,
            drop: c.capture.drop,
            ifdrop: c.capture.ifdrop,
            malformed: c.capture.malformed,
            pending: c.engine.pending,
            overflow: c.engine.overflow,
            truncated: c.capture.truncated,
            late: c.engine.late,
            evicted: c.engine.evicted,
        };
        seq.serialize_element(&Named("pcap", Named("stats", stats)))?;
        seq.end()
    }
}

struct RefreshReply<'a> {
    now: &'a Counters,
    baseline: &'a Counters,
}

#[derive(Serialize)]
struct RefreshFailure {
    total: u64,
    timeout: u64,
    reject: u64,
}

#[derive(Serialize)]
struct RefreshFilter {
    success: Success,
    failure: RefreshFailure,
}

impl Serialize for RefreshReply<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.now.filters.len()))?;
        for (i, (name, now)) in self.now.filters.iter().enumerate() {
            let d = match self.baseline.filters.get(i) {
                Some((_, base)) => now.since(base),
                None => *now,
            };
            let f = RefreshFilter {
                success: d.success,
                failure: RefreshFailure {
                    total: d.failure.total,
                    timeout: d.failure.timeout,
                    reject: d.failure.reject + d.failure.unreach,
                },
            };
            seq.serialize_element(&Named(name, f))?;
        }
        seq.end()
    }
}

/// The published copy of the counters plus the REFRESH baseline, shared
/// between the aggregator (writer) and socket clients (readers). Every lock
/// is held only for a copy, never across I/O.
#[derive(Clone, Debug)]
pub struct SharedCounters {
    inner: Arc<Mutex<Shared>>,
    /// The servers' clients closed unanswered ([`ServerStats`]), counted
    /// by the servers themselves.
    socket_dropped: Arc<std::sync::atomic::AtomicU64>,
    metrics_dropped: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Debug)]
struct Shared {
    current: Counters,
    baseline: Counters,
}

impl SharedCounters {
    pub fn new(initial: Counters) -> SharedCounters {
        SharedCounters {
            inner: Arc::new(Mutex::new(Shared {
                baseline: initial.clone(),
                current: initial,
            })),
            socket_dropped: Arc::default(),
            metrics_dropped: Arc::default(),
        }
    }

    /// The counter of socket clients closed unanswered, for the socket
    /// server ([`crate::clients::Clients`]).
    pub fn socket_dropped(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.socket_dropped.clone()
    }

    /// The same for the metrics endpoint.
    pub fn metrics_dropped(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.metrics_dropped.clone()
    }

    /// What the servers have dropped so far.
    pub fn server_stats(&self) -> ServerStats {
        use std::sync::atomic::Ordering::Relaxed;
        ServerStats {
            socket_dropped: self.socket_dropped.load(Relaxed),
            metrics_dropped: self.metrics_dropped.load(Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere while holding the lock cannot leave the counters
        // half-written (they are replaced whole), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the published counters (aggregator side).
    pub fn publish(&self, counters: &Counters) {
        self.lock().current.clone_from(counters);
    }

    /// A copy of the published counters, with the servers' own.
    pub fn snapshot(&self) -> Counters {
        let mut c = self.lock().current.clone();
        c.servers = self.server_stats();
        c
    }

    /// The `GET` reply.
    pub fn get_json(&self) -> String {
        self.snapshot().to_get_json()
    }

    /// The `GET_LATENCY` reply.
    pub fn latency_json(&self) -> String {
        self.snapshot().to_latency_json()
    }

    /// The `REFRESH` reply; moves the baseline to now.
    pub fn refresh_json(&self) -> String {
        let (now, base) = {
            let mut g = self.lock();
            let now = g.current.clone();
            let base = std::mem::replace(&mut g.baseline, now.clone());
            (now, base)
        };
        now.to_refresh_json(&base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Counters {
        let mut c = Counters::new(["RX", "TX"]);
        c.filters[0].1.record(Outcome::Success, 1, 0);
        c.filters[0].1.record(Outcome::Unreach, 0, 0);
        c.filters[1].1.record(Outcome::Reject, 0, 0);
        c.filters[1].1.record(Outcome::Aborted, 0, 0);
        c.capture.recv = 10;
        c.engine.pending = 2;
        c
    }

    #[test]
    fn each_outcome_counts_in_its_own_fields_and_retransmissions_count_sessions() {
        let mut c = FilterCounters::default();
        c.record(Outcome::Success, 0, 0);
        c.record(Outcome::Success, 3, 0);
        c.record(Outcome::Success, 0, 2);
        c.record(Outcome::Success, 1, 1);
        c.record(Outcome::Timeout, 4, 0);
        c.record(Outcome::Timeout, 0, 0);
        c.record(Outcome::Reject, 0, 0);
        c.record(Outcome::Aborted, 0, 0);
        c.record(Outcome::Unreach, 2, 0);
        assert_eq!(
            c.success,
            Success {
                total: 4,
                dupsyn: 2,
                dupsynack: 2
            },
            "sessions with a retransmission, not segments; successes only"
        );
        assert_eq!(
            c.failure,
            Failure {
                total: 5,
                timeout: 2,
                reject: 2,
                unreach: 1,
                reject_by_client: 1
            }
        );
    }

    #[test]
    fn get_reply_matches_the_original_wire_format() {
        assert_eq!(
            sample().to_get_json(),
            concat!(
                r#"[{"RX":{"success":{"total":1,"dupsyn":1,"dupsynack":0},"#,
                r#""failure":{"total":1,"timeout":0,"reject":0,"unreach":1}}},"#,
                r#"{"TX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"#,
                r#""failure":{"total":2,"timeout":0,"reject":2,"unreach":0}}},"#,
                r#"{"pcap":{"stats":{"recv":10,"drop":0,"ifdrop":0,"#,
                r#""malformed":0,"pending":2,"overflow":0,"truncated":0,"late":0,"evicted":0}}}]"#
            )
        );
    }

    #[test]
    fn refresh_reports_the_change_and_moves_the_baseline() {
        let shared = SharedCounters::new(Counters::new(["RX", "TX"]));
        shared.publish(&sample());
        assert_eq!(
            shared.refresh_json(),
            concat!(
                r#"[{"RX":{"success":{"total":1,"dupsyn":1,"dupsynack":0},"#,
                r#""failure":{"total":1,"timeout":0,"reject":1}}},"#,
                r#"{"TX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"#,
                r#""failure":{"total":2,"timeout":0,"reject":2}}}]"#
            )
        );
        // Nothing happened since: all zero.
        let again: serde_json::Value = serde_json::from_str(&shared.refresh_json()).unwrap();
        assert_eq!(again[0]["RX"]["success"]["total"], 0);
        assert_eq!(again[1]["TX"]["failure"]["total"], 0);
        // GET still reports totals since start.
        let get: serde_json::Value = serde_json::from_str(&shared.get_json()).unwrap();
        assert_eq!(get[0]["RX"]["success"]["total"], 1);
    }
}
