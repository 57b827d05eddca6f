//! The pipeline stage: engine, filters and counters, and the printing of
//! finished handshakes. No I/O of its own and no clock: the runners pass
//! records and time in.

use std::io;

use tcpeek_common::Event;

use crate::capture::clock::Timed;
use crate::capture::CaptureStats;
use crate::engine::reorder::{self, Reorder};
use crate::engine::{Engine, Finished};
use crate::filter::FilterSet;
use crate::output::SessionPrinter;
use crate::stats::histogram::Buckets;
use crate::stats::Counters;

/// Engine, filters and counters, and the printing of finished handshakes.
///
/// Records pass the reordering window ([`Reorder`]) first, so the engine
/// sees them in time order; time is the records' own (the caller decides
/// which timestamps to believe: [`crate::capture::clock::FileClock`] for files, the host's clock
/// live).
pub struct Aggregator {
    engine: Engine,
    filters: FilterSet,
    counters: Counters,
    finished: Vec<Finished>,
    printer: SessionPrinter,
    names: Vec<String>,
    matched: Vec<usize>,
    reorder: Reorder,
    /// Latest record time seen.
    now_ns: u64,
    first_ns: Option<u64>,
    output_error: Option<io::Error>,
    /// eBPF: whether the kernel's table still holds a handshake
    /// ([`Aggregator::with_kernel_table`]).
    kernel_holds: Option<KernelHolds>,
}

/// Asks the kernel's handshake tables whether they hold a connection.
pub type KernelHolds = Box<dyn Fn(&crate::event::Connection) -> bool + Send>;

impl Aggregator {
    pub fn new(engine: Engine, filters: FilterSet, printer: SessionPrinter) -> Aggregator {
        let names: Vec<String> = filters.names().map(str::to_string).collect();
        let mut counters = Counters::new(names.iter().cloned());
        counters.engine.capacity = engine.capacity() as u64;
        Aggregator {
            engine,
            counters,
            filters,
            finished: Vec::new(),
            printer,
            names,
            matched: Vec::new(),
            reorder: Reorder::new(),
            now_ns: 0,
            first_ns: None,
            output_error: None,
            kernel_holds: None,
        }
    }

    /// eBPF: a handshake the server answered that times out is judged only
    /// if `holds` says the kernel's table still has it; otherwise its ACK
    /// may have been filtered out, and it is counted as evicted instead
    /// (`capture::ebpf::KernelTable`).
    pub fn with_kernel_table(mut self, holds: KernelHolds) -> Aggregator {
        self.kernel_holds = Some(holds);
        self
    }

    /// Keeps the per-family detail the metrics report, with these
    /// histogram bucket bounds (before any record). Without it, each
    /// filter's latency is all the detail kept.
    pub fn with_detail(mut self, buckets: Buckets) -> Aggregator {
        self.counters.keep_detail(buckets);
        self
    }

    /// Takes one record. It reaches the engine once the reordering window
    /// has passed it; handshakes idle past the timeout by then end first.
    pub fn event(&mut self, ev: &Event) {
        self.first_ns.get_or_insert(ev.ts_ns);
        self.now_ns = self.now_ns.max(ev.ts_ns);
        self.reorder.push(
            *ev,
            &mut to_engine(
                &mut self.engine,
                &self.filters,
                &mut self.counters,
                &mut self.finished,
            ),
        );
        if !self.finished.is_empty() {
            self.report();
        }
    }

    /// Time has reached `now_ns` on the records' clock without a record
    /// (an irrelevant frame of a file, or live capture's clock): releases
    /// what the reordering window held, and ends handshakes whose deadline
    /// passed before `now_ns - expire_margin_ns` (live capture leaves
    /// records in flight from the kernel that margin).
    pub fn advance(&mut self, now_ns: u64, expire_margin_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        self.reorder.advance(
            now_ns,
            &mut to_engine(
                &mut self.engine,
                &self.filters,
                &mut self.counters,
                &mut self.finished,
            ),
        );
        let until = now_ns
            .saturating_sub(reorder::WINDOW_NS)
            .min(now_ns.saturating_sub(expire_margin_ns));
        self.engine.expire(until, &mut self.finished);
        self.report();
    }

    /// A frame of a capture file, at the time [`crate::capture::clock::FileClock`] settled on.
    pub fn timed(&mut self, t: Timed) {
        match t.event {
            Some(ev) => self.event(&ev),
            None => self.advance(t.ts_ns, 0),
        }
    }

    /// Frames of a capture file whose timestamps were not believed.
    pub fn set_clock_overruled(&mut self, n: u64) {
        self.counters.engine.clock_overruled = n;
    }

    /// End of input: everything the reordering window holds goes to the
    /// engine.
    pub fn flush_input(&mut self) {
        self.reorder.flush(&mut to_engine(
            &mut self.engine,
            &self.filters,
            &mut self.counters,
            &mut self.finished,
        ));
        self.report();
    }

    /// Swaps in a new filter set (SIGHUP). Filters it has with the same
    /// name and definition keep their counters, new ones start at zero;
    /// handshakes in progress keep the filters they were admitted under
    /// (those that still exist), and records still in the reordering
    /// window are admitted under the new set.
    pub fn reload(&mut self, filters: FilterSet) -> Reloaded {
        let carried = self.filters.carried_into(&filters);
        let old = std::mem::replace(&mut self.filters, filters);
        let new = &self.filters;
        self.engine
            .retag(|tag, conn, iface| old.retag(new, &carried, tag, conn, iface));
        self.names = new.names().map(str::to_string).collect();
        self.counters.refilter(&self.names, &carried);
        let kept = carried.iter().flatten().count();
        Reloaded {
            kept,
            removed: carried.len() - kept,
            added: self.names.len() - kept,
        }
    }

    /// Records a configuration (re)load: taken or not, and if taken, when.
    pub fn config_loaded(&mut self, ok: bool, at_s: u64) {
        self.counters.config.last_reload_ok = ok;
        if ok {
            self.counters.config.loaded_at_s = at_s;
        }
    }

    /// Records what the servers dropped ([`crate::stats::ServerStats`]).
    pub fn set_server_stats(&mut self, s: crate::stats::ServerStats) {
        self.counters.servers = s;
    }

    /// Records how many handshake lines the output dropped.
    pub fn set_lines_dropped(&mut self, n: u64) {
        self.counters.lines_dropped = n;
    }

    /// Records the capture's own counters.
    pub fn set_capture_stats(&mut self, stats: CaptureStats) {
        self.counters.capture = stats;
    }

    /// Names the live interfaces, in `-i` order, whose figures
    /// [`Aggregator::set_interface_stats`] records.
    pub fn watch_interfaces(&mut self, names: &[String]) {
        self.counters.interfaces = names
            .iter()
            .map(|n| (n.clone(), CaptureStats::default()))
            .collect();
    }

    /// Records interface `slot`'s capture counters; the capture's are
    /// their sum.
    pub fn set_interface_stats(&mut self, slot: usize, stats: CaptureStats) {
        let Some(entry) = self.counters.interfaces.get_mut(slot) else {
            return;
        };
        entry.1 = stats;
        let mut sum = CaptureStats::default();
        for (_, s) in &self.counters.interfaces {
            sum += *s;
        }
        self.counters.capture = sum;
    }

    /// The counters, with the engine's current figures.
    pub fn counters(&mut self) -> &Counters {
        self.counters.engine.pending = self.engine.pending() as u64;
        self.counters.engine.overflow = self.engine.overflow();
        self.counters.engine.forgotten = self.engine.forgotten();
        self.counters.engine.late = self.reorder.late();
        &self.counters
    }

    /// Time of the first and the latest packet seen.
    pub fn packet_span(&self) -> Option<(u64, u64)> {
        self.first_ns.map(|f| (f, self.now_ns))
    }

    /// The first error writing handshake lines (a closed stdout ends the
    /// run like a signal).
    pub fn output_error(&self) -> Option<&io::Error> {
        self.output_error.as_ref()
    }

    /// Starts the per-handshake output (the table header, as the original
    /// prints it once capture is running).
    pub fn start_output(&mut self) {
        if let Err(e) = self.printer.header() {
            self.output_error.get_or_insert(e);
        }
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.printer.flush() {
            self.output_error.get_or_insert(e);
        }
    }

    fn report(&mut self) {
        for f in self.finished.drain(..) {
            self.matched.clear();
            let matched = &mut self.matched;
            self.filters
                .for_each_in(f.tag, &f.conn, f.iface, |i| matched.push(i));
            let unjudged = f.outcome == crate::engine::Outcome::Timeout
                && f.synack_ns.is_some()
                && self
                    .kernel_holds
                    .as_ref()
                    .is_some_and(|holds| !holds(&f.conn));
            if unjudged {
                self.counters.engine.evicted += 1;
                for &i in &self.matched {
                    self.counters.forget(i);
                }
                continue;
            }
            let tally = self.counters.tally(&f);
            for &i in &self.matched {
                self.counters.record(i, &f, &tally);
            }
            if self.output_error.is_none() && !self.printer.is_quiet() {
                let names: Vec<&str> = self
                    .matched
                    .iter()
                    .map(|&i| self.names[i].as_str())
                    .collect();
                if let Err(e) = self.printer.session(&f, &names) {
                    self.output_error = Some(e);
                }
            }
        }
    }
}

/// What a reload did to the named filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// Unchanged: their counters go on.
    pub kept: usize,
    /// New or redefined: from zero.
    pub added: usize,
    /// Gone (or redefined), with their counters.
    pub removed: usize,
}

/// Hands a record released by the reordering window to the engine:
/// handshakes whose deadline passed by its time end first. A handshake the
/// engine starts tracking counts as in progress in its filters until
/// [`Aggregator::report`] sees it finish.
fn to_engine<'a>(
    engine: &'a mut Engine,
    filters: &'a FilterSet,
    counters: &'a mut Counters,
    finished: &'a mut Vec<Finished>,
) -> impl FnMut(&Event) + 'a {
    move |e: &Event| {
        engine.expire(e.ts_ns, finished);
        let opened = engine.process(e, |c| filters.admit(c, e.iface), finished);
        if let Some(tag) = opened.filter(|_| counters.detailed) {
            // Its client is the event's source.
            let (client, server) = crate::event::endpoints(e);
            let conn = crate::event::Connection { client, server };
            filters.for_each_in(tag, &conn, e.iface, |i| {
                counters.detail[i].in_progress += 1;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::live::LIVE_EXPIRY_MARGIN_NS;
    use crate::engine::EngineConfig;
    use crate::engine::Outcome;
    use crate::local::Local;
    use tcpeek_common::tcp_flags::{ACK, SYN};
    use tcpeek_common::{FAMILY_V4, KIND_TCP};

    const S: u64 = 1_000_000_000;
    const T0: u64 = 1_767_225_600 * S;
    const C_ISN: u32 = 1000;
    const S_ISN: u32 = 50_000;

    fn aggregator() -> Aggregator {
        Aggregator::new(
            Engine::new(EngineConfig::new(30 * S, 100, true)),
            FilterSet::parse::<&str>(&[], Local::Everything).unwrap(),
            SessionPrinter::new(true, false, Box::new(io::sink())),
        )
    }

    fn seg(t: u64, from_client: bool, flags: u8, seq: u32, ack: u32) -> Event {
        let (c, s) = ([10, 0, 0, 2], [10, 0, 0, 1]);
        let (src, dst, sport, dport) = if from_client {
            (c, s, 40000, 80)
        } else {
            (s, c, 80, 40000)
        };
        let mut ev = Event {
            ts_ns: t,
            seq,
            ack,
            sport,
            dport,
            kind: KIND_TCP,
            family: FAMILY_V4,
            tcp_flags: flags,
            ..Event::ZERO
        };
        ev.saddr[..4].copy_from_slice(&src);
        ev.daddr[..4].copy_from_slice(&dst);
        ev
    }

    fn handshake(t: u64) -> [Event; 3] {
        [
            seg(t, true, SYN, C_ISN, 0),
            seg(t + 1000, false, SYN | ACK, S_ISN, C_ISN + 1),
            seg(t + 2000, true, ACK, C_ISN + 1, S_ISN + 1),
        ]
    }

    fn rx(agg: &mut Aggregator) -> crate::stats::FilterCounters {
        agg.counters().filters[0].1
    }

    #[test]
    fn a_synack_delivered_before_its_syn_is_a_success() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        for ev in [synack, syn, ack] {
            agg.event(&ev);
        }
        agg.flush_input();
        assert_eq!(rx(&mut agg).success.total, 1);
        assert_eq!(agg.counters().engine.late, 0);
    }

    #[test]
    fn an_ack_delivered_before_its_synack_is_a_success() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        for ev in [syn, ack, synack] {
            agg.event(&ev);
        }
        agg.advance(T0 + S, 0);
        assert_eq!(rx(&mut agg).success.total, 1);
    }

    #[test]
    fn a_record_beyond_the_window_is_counted_late() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        agg.event(&syn);
        agg.event(&synack);
        agg.advance(T0 + S, 0);
        // Stamped before the SYN/ACK already handed on.
        agg.event(&Event {
            ts_ns: T0 + 500,
            ..syn
        });
        agg.event(&ack);
        agg.flush_input();
        assert_eq!(agg.counters().engine.late, 1);
        let c = rx(&mut agg);
        assert_eq!((c.success.total, c.success.dupsyn), (1, 1), "still judged");
    }

    #[test]
    fn live_quiet_period_does_not_break_the_next_handshake() {
        // Regression: after more than 10 minutes without a connection, the
        // next handshake was stamped before the gap and reported as a
        // timeout; its retransmitted SYN was counted a second time.
        let mut agg = aggregator();
        for ev in handshake(T0) {
            agg.event(&ev);
        }
        // The live clock ticks through an hour of silence.
        for m in 1..=60 {
            agg.advance(T0 + m * 60 * S, LIVE_EXPIRY_MARGIN_NS);
        }
        let t = T0 + 3600 * S + 5 * S;
        let [syn, synack, ack] = handshake(t);
        agg.event(&syn);
        agg.event(&Event {
            ts_ns: t + S,
            ..syn
        });
        agg.event(&Event {
            ts_ns: t + S + 1000,
            ..synack
        });
        agg.event(&Event {
            ts_ns: t + S + 2000,
            ..ack
        });
        agg.advance(t + 10 * S, LIVE_EXPIRY_MARGIN_NS);
        let c = rx(&mut agg);
        assert_eq!((c.success.total, c.success.dupsyn), (2, 1));
        assert_eq!(c.failure.total, 0);
    }

    #[test]
    fn live_expiry_leaves_records_in_flight_a_margin() {
        let [syn, synack, ack] = handshake(T0);
        let mut agg = aggregator();
        agg.event(&syn);
        agg.event(&synack);
        // The clock is past the deadline, but by less than the margin: the
        // ACK may still be on its way from the kernel.
        agg.advance(
            T0 + 30 * S + 1000 + LIVE_EXPIRY_MARGIN_NS / 2,
            LIVE_EXPIRY_MARGIN_NS,
        );
        agg.event(&ack);
        agg.flush_input();
        assert_eq!(rx(&mut agg).success.total, 1);
        assert_eq!(rx(&mut agg).failure.timeout, 0);
    }

    #[test]
    fn in_progress_counts_tracked_handshakes_until_they_finish() {
        let mut agg = Aggregator::new(
            Engine::new(EngineConfig::new(30 * S, 2, true)),
            FilterSet::parse(&["web:RX@%:80", "ssh:RX@%:22"], Local::Everything).unwrap(),
            SessionPrinter::new(true, false, Box::new(io::sink())),
        )
        .with_detail(Buckets::default());
        let in_progress = |agg: &mut Aggregator| -> Vec<u64> {
            agg.counters()
                .detail
                .iter()
                .map(|d| d.in_progress)
                .collect()
        };
        let [syn, synack, ack] = handshake(T0);
        agg.event(&syn);
        agg.advance(T0 + S / 10, 0);
        // RX, TX (every address is local), web; not ssh.
        assert_eq!(in_progress(&mut agg), [1, 1, 1, 0]);
        // A retransmitted SYN is the same handshake.
        agg.event(&Event {
            ts_ns: T0 + S / 5,
            ..syn
        });
        // The table holds two: the third SYN overflows and is not counted.
        for port in [40001, 40002] {
            agg.event(&Event {
                sport: port,
                ts_ns: T0 + S / 4,
                ..syn
            });
        }
        agg.advance(T0 + S / 2, 0);
        assert_eq!(agg.counters().engine.overflow, 1);
        assert_eq!(in_progress(&mut agg), [2, 2, 2, 0]);
        agg.event(&Event {
            ts_ns: T0 + S,
            ..synack
        });
        agg.event(&Event {
            ts_ns: T0 + S + 1,
            ..ack
        });
        agg.advance(T0 + 2 * S, 0);
        assert_eq!(in_progress(&mut agg), [1, 1, 1, 0]);
        agg.advance(T0 + 60 * S, 0);
        assert_eq!(in_progress(&mut agg), [0, 0, 0, 0], "timed out");
    }

    fn with_filters(exprs: &[&str]) -> FilterSet {
        FilterSet::parse(exprs, Local::Everything).unwrap()
    }

    fn by_name(agg: &mut Aggregator) -> Vec<(String, u64, u64)> {
        let c = agg.counters();
        c.filters
            .iter()
            .zip(&c.detail)
            .map(|((n, f), d)| (n.clone(), f.success.total, d.in_progress))
            .collect()
    }

    #[test]
    fn a_reload_keeps_unchanged_filters_and_the_filters_handshakes_were_admitted_under() {
        let mut agg = Aggregator::new(
            Engine::new(EngineConfig::new(30 * S, 100, true)),
            with_filters(&["web:RX@%:80", "old:RX@%:80", "redef:RX@%:80"]),
            SessionPrinter::new(true, false, Box::new(io::sink())),
        )
        .with_detail(Buckets::default());
        for ev in handshake(T0) {
            agg.event(&ev);
        }
        // A second handshake, on another client port, half-way through.
        let [syn, synack, ack] = handshake(T0 + S).map(|e| Event {
            sport: if e.sport == 80 { 80 } else { 40001 },
            dport: if e.dport == 80 { 80 } else { 40001 },
            ..e
        });
        agg.event(&syn);
        agg.event(&synack);
        agg.advance(T0 + 2 * S, 0);
        let r = agg.reload(with_filters(&[
            "new:RX@%:80",
            "redef:RX@%:443",
            "web:RX@%:80",
        ]));
        assert_eq!(
            r,
            Reloaded {
                kept: 3,
                added: 2,
                removed: 2
            },
            "RX, TX and web kept; old and the old redef gone"
        );
        let row = |n: &str, done, going| (n.to_string(), done, going);
        assert_eq!(
            by_name(&mut agg),
            [
                row("RX", 1, 1),
                row("TX", 1, 1),
                row("new", 0, 0),
                row("redef", 0, 0),
                row("web", 1, 1),
            ]
        );
        // The one in progress ends in the filters it was admitted under
        // that remain, not in the new one that would match it.
        agg.event(&Event {
            ts_ns: T0 + 3 * S,
            ..ack
        });
        // One admitted after the reload counts in the new filter.
        for ev in handshake(T0 + 4 * S).map(|e| Event {
            sport: if e.sport == 80 { 80 } else { 40002 },
            dport: if e.dport == 80 { 80 } else { 40002 },
            ..e
        }) {
            agg.event(&ev);
        }
        agg.advance(T0 + 6 * S, 0);
        assert_eq!(
            by_name(&mut agg),
            [
                row("RX", 3, 0),
                row("TX", 3, 0),
                row("new", 1, 0),
                row("redef", 0, 0),
                row("web", 3, 0),
            ]
        );
    }

    #[test]
    fn a_reload_to_more_than_32_filters_matches_again_at_the_end() {
        let mut agg = aggregator();
        let [syn, synack, ack] = handshake(T0);
        agg.event(&syn);
        agg.event(&synack);
        agg.advance(T0 + S, 0);
        let many: Vec<String> = (0..40).map(|i| format!("f{i}:RX@%:80")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        agg.reload(with_filters(&many));
        agg.event(&Event {
            ts_ns: T0 + 2 * S,
            ..ack
        });
        agg.advance(T0 + 3 * S, 0);
        let c = agg.counters();
        assert_eq!(c.filters.len(), 42);
        assert!(c.filters.iter().all(|(_, f)| f.success.total == 1));
    }

    #[test]
    fn each_filters_detail_adds_up_to_its_socket_counters() {
        use tcpeek_common::tcp_flags::RST;
        let mut agg = aggregator().with_detail(Buckets::default());
        // Handshake `n` on client port 30000 + n, a second apart.
        let on = |n: u64, ev: Event| {
            let port = 30000 + n as u16;
            let ts_ns = T0 + n * S + ev.ts_ns;
            if ev.sport == 80 {
                Event {
                    dport: port,
                    ts_ns,
                    ..ev
                }
            } else {
                Event {
                    sport: port,
                    ts_ns,
                    ..ev
                }
            }
        };
        let script: Vec<Vec<Event>> = vec![
            handshake(0).to_vec(),
            handshake(0).to_vec(),
            // SYN retransmitted: a success with dupsyn.
            [vec![seg(0, true, SYN, C_ISN, 0)], handshake(1000).to_vec()].concat(),
            // Reset by the server, by the client.
            vec![
                seg(0, true, SYN, C_ISN, 0),
                seg(1000, false, RST | ACK, 0, C_ISN + 1),
            ],
            vec![
                seg(0, true, SYN, C_ISN, 0),
                seg(1000, false, SYN | ACK, S_ISN, C_ISN + 1),
                seg(2000, true, RST, C_ISN + 1, 0),
            ],
            // Never answered.
            vec![seg(0, true, SYN, C_ISN, 0)],
        ];
        for (n, evs) in script.into_iter().enumerate() {
            for ev in evs {
                agg.event(&on(n as u64, ev));
            }
        }
        agg.advance(T0 + 120 * S, 0);
        let c = agg.counters().clone();
        let rx = &c.filters[0].1;
        assert_eq!(
            (
                rx.success.total,
                rx.success.dupsyn,
                rx.failure.reject,
                rx.failure.timeout
            ),
            (3, 1, 2, 1)
        );
        for ((name, f), d) in c.filters.iter().zip(&c.detail) {
            let sum = |o: Outcome| {
                d.family
                    .iter()
                    .map(|fd| fd.results[o as usize])
                    .sum::<u64>()
            };
            assert_eq!(sum(Outcome::Success), f.success.total, "{name}");
            assert_eq!(
                sum(Outcome::Reject) + sum(Outcome::Aborted),
                f.failure.reject,
                "{name}"
            );
            assert_eq!(sum(Outcome::Aborted), f.failure.reject_by_client, "{name}");
            assert_eq!(sum(Outcome::Timeout), f.failure.timeout, "{name}");
            assert_eq!(sum(Outcome::Unreach), f.failure.unreach, "{name}");
            let v4 = &d.family[0];
            assert_eq!(
                v4.retransmitted,
                [f.success.dupsyn, f.success.dupsynack],
                "{name}"
            );
            assert_eq!(v4.duration.count(), f.success.total, "{name}");
            assert_eq!(v4.syn_to_synack.count(), f.success.total, "{name}");
            assert_eq!(d.latency.count(), f.success.total, "{name}");
            assert_eq!(d.family[1].results, [0; 5], "{name}: no IPv6");
        }
    }

    #[test]
    fn without_detail_only_the_latency_is_kept() {
        let mut agg = aggregator();
        for ev in handshake(T0) {
            agg.event(&ev);
        }
        agg.flush_input();
        let c = agg.counters();
        assert_eq!(
            (c.filters[0].1.success.total, c.detail[0].latency.count()),
            (1, 1)
        );
        assert_eq!(c.detail[0], {
            let mut d = crate::stats::FilterDetail::new(&c.buckets);
            d.latency = c.detail[0].latency.clone();
            d
        });
    }

    #[test]
    fn outcomes_reach_the_counters_by_kind() {
        let mut agg = aggregator();
        let [syn, synack, _] = handshake(T0);
        agg.event(&syn);
        agg.event(&synack);
        agg.event(&seg(
            T0 + 3000,
            true,
            tcpeek_common::tcp_flags::RST,
            C_ISN + 1,
            0,
        ));
        agg.flush_input();
        let c = rx(&mut agg);
        assert_eq!((c.failure.reject, c.failure.reject_by_client), (1, 1));
    }
}
