//! The eBPF capture backend: loads tcpeek's kernel classifier (built from
//! `tcpeek-ebpf` by `build.rs` and embedded in the binary), attaches it to one
//! interface, and reads its [`Event`]s from a BPF ring buffer.
//!
//! Hooks: TC egress always; TC ingress, or XDP ingress with
//! [`EbpfOptions::xdp`]. TC programs are attached as TCX links (Linux >= 6.6),
//! which the kernel detaches by itself when the process exits, even on
//! SIGKILL; on older kernels they fall back to a `clsact` qdisc with netlink
//! filters, which [`EbpfCapture`]'s drop removes (a SIGKILLed process cannot
//! clean up, so the next [`EbpfCapture::open`] removes stale tcpeek filters).
//! XDP uses a BPF link too (Linux >= 5.9).
//!
//! The classifier parses Ethernet framing (Ethernet, veth, loopback) or IP
//! from the first byte (tun, WireGuard, PPP, raw-IP modems, IP-in-IP, sit
//! and GRE tunnels), chosen from the device type before loading
//! ([`Framing::of_arphrd`]); other device types are refused, so that
//! `--backend auto` falls back to libpcap instead of seeing nothing.
//!
//! The kernel side stamps events with `bpf_ktime_get_ns()` (CLOCK_MONOTONIC);
//! [`EbpfCapture`] converts to Unix-epoch nanoseconds with an offset taken
//! once at open, so that differences between events (handshake RTTs) stay
//! exact even if the wall clock is stepped while tcpeek runs.
//!
//! `attach` attaches the programs (TCX, the netlink fallback and its
//! guard, XDP), `ring` reads the ring buffer, `host` holds what is asked of
//! the host (clocks, interfaces and device types, capabilities).

mod attach;
mod host;
mod ring;
mod table;

use std::{
    io,
    os::fd::AsRawFd as _,
    time::{SystemTime, UNIX_EPOCH},
};

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{
        tc::{self, NlOptions, TcAttachOptions},
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};

use tcpeek_common::{framing, stat, Event, EVENT_SIZE};

use tokio::io::unix::AsyncFd;

use super::CaptureStats;
use attach::{attach_tc, attach_xdp, ClsactGuard};
pub use host::{arphrd, mono_to_epoch_offset_ns, Framing};
use host::{check_privileges, device_type, ifindex, monotonic_ns, page_size};
pub use ring::{decode_record, wake_bytes, DRAIN_INTERVAL};
use ring::{drain_ring, Ring};
pub use table::KernelTable;

/// Names in the eBPF object: the contract with `tcpeek-ebpf`, kept in the
/// shared crate (tests/object.rs checks the embedded object has each).
pub use tcpeek_common::names;

/// The compiled eBPF object, embedded at build time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tcpeek-ebpf"));

pub use tcpeek_common::DEFAULT_RING_BYTES;

/// How TC programs are attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TcMode {
    /// TCX links, or netlink filters if the kernel has no TCX.
    #[default]
    Auto,
    /// TCX links only (Linux >= 6.6).
    Tcx,
    /// `clsact` qdisc + netlink filters (the pre-6.6 way; for tests).
    Netlink,
}

/// What [`EbpfCapture::open`] sets up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EbpfOptions {
    /// Use XDP instead of TC for ingress. XDP runs before the kernel
    /// allocates an skb (cheaper on a flooded NIC) but does not see packets
    /// the host sends to itself through this interface.
    pub xdp: bool,
    /// Ring buffer size in bytes: a power of two multiple of the page size;
    /// 0 means [`DEFAULT_RING_BYTES`].
    pub ring_bytes: u32,
    /// How to attach the TC programs.
    pub tc_mode: TcMode,
}

impl Default for EbpfOptions {
    fn default() -> Self {
        Self {
            xdp: false,
            ring_bytes: DEFAULT_RING_BYTES,
            tc_mode: TcMode::Auto,
        }
    }
}

/// Counters of the kernel side, summed over CPUs, plus the reader's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EbpfStats {
    /// Packets the programs looked at.
    pub packets: u64,
    /// Events written to the ring buffer.
    pub events: u64,
    /// Events lost because the ring buffer was full.
    pub ringbuf_full: u64,
    /// SYN/ACKs whose handshake could not be remembered (map insert failed).
    pub map_full: u64,
    /// Packets whose headers ended past the packet, or shorter than their
    /// IP length (truncated).
    pub short: u64,
    /// Packets with an impossible or unsupported header (the libpcap
    /// decoder's malformed frames).
    pub malformed: u64,
    /// Ring buffer records of the wrong size (a mismatched object; never
    /// expected).
    pub bad_records: u64,
}

impl From<EbpfStats> for CaptureStats {
    fn from(s: EbpfStats) -> Self {
        CaptureStats {
            recv: s.packets,
            drop: s.ringbuf_full,
            ifdrop: s.map_full,
            malformed: s.short + s.malformed + s.bad_records,
            // The kernel classifier reads whole packets: nothing is cut.
            truncated: 0,
        }
    }
}

/// Why the eBPF backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("interface {iface:?} does not exist")]
    NoSuchInterface { iface: String },
    #[error("eBPF capture watches one interface, not \"any\"; use --backend pcap for -i any")]
    AnyInterface,
    #[error("cannot tell the device type of {iface:?} (SIOCGIFHWADDR)")]
    DeviceType {
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "eBPF capture cannot watch {iface:?}: its device type is ARPHRD {arphrd} \
         ({name}), whose link-layer header the classifier does not parse; use \
         --backend pcap"
    )]
    UnsupportedDevice {
        iface: String,
        arphrd: u16,
        name: &'static str,
    },
    /// A tun device (IFF_TUN) runs no XDP program at all on the packets
    /// written to it (drivers/net/tun.c builds XDP buffers for IFF_TAP
    /// only), and the generic XDP of other L3 devices is unverified.
    #[error(
        "--xdp on {iface:?} ({name}, no link-layer header): XDP may not see \
         its packets (a tun device runs no XDP on them); use TC, i.e. leave \
         out --xdp"
    )]
    XdpWithoutLinkLayer { iface: String, name: &'static str },
    #[error(
        "eBPF capture on {iface:?} needs {missing} (run as root, or grant the \
         capabilities to the binary: setcap cap_bpf,cap_net_admin,cap_perfmon+ep)"
    )]
    Privileges { iface: String, missing: String },
    #[error(
        "ring buffer size {bytes}: must be a power of two and a multiple of the \
         page size ({page} bytes)"
    )]
    RingSize { bytes: u32, page: usize },
    #[error(
        "loading the eBPF classifier failed (needs Linux >= 5.8 for BPF ring \
         buffers; see the verifier output, if any)"
    )]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the eBPF object has no {what} {name:?} (tcpeek and tcpeek-ebpf out of sync)")]
    Object {
        what: &'static str,
        name: &'static str,
    },
    #[error("the eBPF object's {name} map is unusable")]
    Map {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("loading program {program} for {iface:?} failed")]
    LoadProgram {
        iface: String,
        program: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("attaching {program} to {iface:?} {hook} failed{hint}")]
    Attach {
        iface: String,
        program: &'static str,
        hook: &'static str,
        hint: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
}

/// The classifier attached to one interface, and its ring buffer.
///
/// Dropping it detaches everything it attached: the programs and their
/// links first, then a `clsact` qdisc it added.
pub struct EbpfCapture {
    ring: Ring,
    stats: PerCpuArray<MapData, u64>,
    bad_records: u64,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, in ns, taken at open.
    mono_to_epoch_ns: i64,
    /// `None` only during drop.
    attached: Option<Attached>,
    /// Until [`EbpfCapture::take_table`].
    table: Option<KernelTable>,
}

/// What must be undone, in the network namespace it was done in.
struct Attached {
    /// Programs and their links (dropped first: detached).
    ebpf: Ebpf,
    /// A `clsact` qdisc this capture added (netlink fallback only).
    qdisc: Option<ClsactGuard>,
    /// The network namespace `open` ran in (`/proc/thread-self/ns/net`).
    netns: Option<std::fs::File>,
}

impl Drop for EbpfCapture {
    fn drop(&mut self) {
        let Some(attached) = self.attached.take() else {
            return;
        };
        // Netlink filters and the qdisc are addressed by interface index,
        // which only means something in the namespace of `open`: if this
        // thread is elsewhere (a test, a daemon that moved), detach from a
        // thread that enters that namespace. TCX and XDP links are file
        // descriptors and detach anywhere.
        match &attached.netns {
            Some(ns) if !in_netns(ns) => {
                let _ = std::thread::spawn(move || {
                    let ns = attached.netns.as_ref().map(|f| f.as_raw_fd());
                    // SAFETY: a valid namespace fd; this thread is ours.
                    if ns.is_some_and(|fd| unsafe { libc::setns(fd, libc::CLONE_NEWNET) } == 0) {
                        drop(attached);
                    } else {
                        // Cannot reach the namespace: detaching by index
                        // here could hit another interface. Leave the
                        // netlink filters (a later open removes them).
                        std::mem::forget(attached);
                    }
                })
                .join();
            }
            _ => drop(attached),
        }
    }
}

/// Whether the calling thread is in network namespace `ns`.
fn in_netns(ns: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (ns.metadata(), std::fs::metadata("/proc/thread-self/ns/net")) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => true,
    }
}

impl EbpfCapture {
    /// Loads the classifier and attaches it to `iface`.
    pub fn open(iface: &str, opts: EbpfOptions) -> Result<EbpfCapture, EbpfError> {
        let Some(ifindex) = ifindex(iface) else {
            if iface == "any" {
                return Err(EbpfError::AnyInterface);
            }
            return Err(EbpfError::NoSuchInterface {
                iface: iface.to_owned(),
            });
        };
        let arphrd = device_type(iface)?;
        let framing = Framing::of_arphrd(arphrd).ok_or(EbpfError::UnsupportedDevice {
            iface: iface.to_owned(),
            arphrd,
            name: arphrd::name(arphrd),
        })?;
        if opts.xdp && framing == Framing::Ip {
            return Err(EbpfError::XdpWithoutLinkLayer {
                iface: iface.to_owned(),
                name: arphrd::name(arphrd),
            });
        }
        check_privileges(iface)?;
        let mut ebpf = load_for(opts.ring_bytes, framing)?;

        let mut qdisc = None;
        // Every packet on a loopback interface passes its egress hook and
        // then its ingress hook: watching both would see each twice (and
        // count it as a retransmission). Egress alone sees them all once.
        let ingress = if arphrd == arphrd::LOOPBACK {
            None
        } else if opts.xdp {
            attach_xdp(&mut ebpf, iface)?;
            None
        } else {
            Some(TcAttachType::Ingress)
        };
        for (program, attach_type) in [
            ingress.map(|t| (names::PROG_TC_INGRESS, t)),
            Some((names::PROG_TC_EGRESS, TcAttachType::Egress)),
        ]
        .into_iter()
        .flatten()
        {
            attach_tc(
                &mut ebpf,
                iface,
                ifindex,
                program,
                attach_type,
                opts.tc_mode,
                &mut qdisc,
            )?;
        }

        let ring = take_map(&mut ebpf, names::MAP_EVENTS, RingBuf::try_from)?;
        let stats = take_map(&mut ebpf, names::MAP_STATS, PerCpuArray::try_from)?;
        let v4 = take_map(&mut ebpf, names::MAP_HANDSHAKES_V4, Ok)?;
        let v6 = take_map(&mut ebpf, names::MAP_HANDSHAKES_V6, Ok)?;
        let table = KernelTable::new(v4, v6).map_err(|source| EbpfError::Map {
            name: names::MAP_HANDSHAKES_V4,
            source: Box::new(source),
        })?;
        Ok(EbpfCapture {
            ring: Ring::Plain(ring),
            stats,
            table: Some(table),
            bad_records: 0,
            mono_to_epoch_ns: mono_to_epoch_offset_ns(),
            attached: Some(Attached {
                ebpf,
                qdisc,
                netns: std::fs::File::open("/proc/thread-self/ns/net").ok(),
            }),
        })
    }

    /// The kernel's table of SYN/ACKs awaiting their ACK, for the
    /// aggregator to ask about handshakes that time out ([`KernelTable`]).
    pub fn take_table(&mut self) -> Option<KernelTable> {
        self.table.take()
    }

    /// Now, on the clock of this capture's events: CLOCK_MONOTONIC with the
    /// offset taken at open, so that a step of the wall clock cannot make
    /// timeouts fire early or late.
    pub fn clock(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let offset = self.mono_to_epoch_ns;
        move || u64::try_from(monotonic_ns().saturating_add(offset)).unwrap_or(0)
    }

    /// Appends the events waiting in the ring buffer to `out` without
    /// blocking; returns how many were appended (at most 65536 per call).
    pub fn drain(&mut self, out: &mut Vec<Event>) -> usize {
        drain_ring(
            self.ring.get_mut(),
            self.mono_to_epoch_ns,
            &mut self.bad_records,
            out,
        )
        .0
    }

    /// Waits until the kernel side wakes us (a quarter of the ring is
    /// unread) or [`DRAIN_INTERVAL`] has passed, then appends what the ring
    /// holds to `out` (possibly nothing, at most 65536 events). The kernel
    /// side submits records without waking us below that threshold, so a
    /// record waits at most about [`DRAIN_INTERVAL`]. Needs a tokio runtime
    /// with I/O and time enabled.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> io::Result<()> {
        if let Ring::Plain(_) = self.ring {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(io::Error::other(
                    "EbpfCapture::next_batch needs a tokio runtime",
                ));
            }
            let Ring::Plain(ring) = std::mem::replace(&mut self.ring, Ring::Moving) else {
                unreachable!()
            };
            // SAFETY: the ring buffer map owns its fd and keeps it open, the
            // same fd, for as long as it lives, and the AsyncFd owns it.
            match unsafe { AsyncFd::register(ring) } {
                Ok(afd) => self.ring = Ring::Async(afd),
                Err(e) => {
                    let (ring, err) = e.into_parts();
                    self.ring = Ring::Plain(ring);
                    return Err(err);
                }
            }
        }
        let Ring::Async(afd) = &mut self.ring else {
            unreachable!()
        };
        match tokio::time::timeout(DRAIN_INTERVAL, afd.readable_mut()).await {
            Ok(guard) => {
                let mut guard = guard?;
                let (_, more) = drain_ring(
                    guard.get_inner_mut(),
                    self.mono_to_epoch_ns,
                    &mut self.bad_records,
                    out,
                );
                if !more {
                    // Drained to empty. tokio keeps the readiness if the
                    // kernel signalled new data since `readable_mut`
                    // returned.
                    guard.clear_ready();
                }
            }
            Err(_) => {
                drain_ring(
                    afd.get_mut(),
                    self.mono_to_epoch_ns,
                    &mut self.bad_records,
                    out,
                );
            }
        }
        Ok(())
    }

    /// The kernel side's counters summed over CPUs.
    /// Whether detaching needs `CAP_NET_ADMIN`: netlink filters do (the
    /// fallback for kernels without TCX); TCX and XDP links are file
    /// descriptors, detached by closing them.
    pub fn detach_needs_net_admin(&self) -> bool {
        self.attached.as_ref().is_some_and(|a| a.qdisc.is_some())
    }

    pub fn stats(&self) -> EbpfStats {
        let sum = |idx: u32| -> u64 {
            self.stats
                .get(&idx, 0)
                .map(|v| v.iter().copied().fold(0u64, u64::wrapping_add))
                .unwrap_or(0)
        };
        EbpfStats {
            packets: sum(stat::PACKETS),
            events: sum(stat::EVENTS),
            ringbuf_full: sum(stat::RINGBUF_FULL),
            map_full: sum(stat::MAP_FULL),
            short: sum(stat::SHORT),
            malformed: sum(stat::MALFORMED),
            bad_records: self.bad_records,
        }
    }

    /// Kernel ids of the programs this capture loaded (for diagnostics, and
    /// to check after exit that nothing stayed attached).
    pub fn program_ids(&self) -> Vec<u32> {
        self.attached
            .iter()
            .flat_map(|a| a.ebpf.programs())
            .filter_map(|(_, p)| p.info().ok())
            .map(|info| info.id())
            .collect()
    }
}

/// The embedded eBPF object, for tests and benchmarks that load it
/// themselves (e.g. to run programs with `BPF_PROG_TEST_RUN`).
pub fn object() -> &'static [u8] {
    OBJECT
}

/// Loads (creates the maps of) the embedded object for Ethernet framing
/// with a ring buffer of `ring_bytes` (0: default). Programs are not loaded
/// into the kernel yet.
pub fn load(ring_bytes: u32) -> Result<Ebpf, EbpfError> {
    load_for(ring_bytes, Framing::Ethernet)
}

/// [`load`] for interfaces whose packets begin as `framing` says.
pub fn load_for(ring_bytes: u32, framing: Framing) -> Result<Ebpf, EbpfError> {
    let ring_bytes = if ring_bytes == 0 {
        DEFAULT_RING_BYTES
    } else {
        ring_bytes
    };
    let page = page_size();
    if !ring_bytes.is_power_of_two() || !(ring_bytes as usize).is_multiple_of(page) {
        return Err(EbpfError::RingSize {
            bytes: ring_bytes,
            page,
        });
    }
    let global = framing.global();
    let wake_bytes = wake_bytes(ring_bytes);
    EbpfLoader::new()
        .map_max_entries(names::MAP_EVENTS, ring_bytes)
        .override_global(names::GLOBAL_FRAMING, &global, true)
        .override_global(names::GLOBAL_WAKE_BYTES, &wake_bytes, true)
        .load(OBJECT)
        .map_err(|e| EbpfError::Load(Box::new(e)))
}

fn take_map<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    conv: impl FnOnce(aya::maps::Map) -> Result<T, aya::maps::MapError>,
) -> Result<T, EbpfError> {
    let map = ebpf
        .take_map(name)
        .ok_or(EbpfError::Object { what: "map", name })?;
    conv(map).map_err(|source| EbpfError::Map {
        name,
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_and_loopback_devices_have_ethernet_framing() {
        for ty in [arphrd::ETHER, arphrd::LOOPBACK] {
            assert_eq!(Framing::of_arphrd(ty), Some(Framing::Ethernet), "{ty}");
        }
    }

    #[test]
    fn devices_without_link_layer_header_have_ip_framing() {
        // tun/WireGuard, PPP, raw-IP modems, ipip, ip6tnl, sit, gre, ip6gre.
        for ty in [0xfffe, 512, 519, 768, 769, 776, 778, 823] {
            assert_eq!(Framing::of_arphrd(ty), Some(Framing::Ip), "{ty}");
        }
    }

    #[test]
    fn other_link_layers_are_refused_by_name() {
        // gretap and ip6gretap are ARPHRD_ETHER; these are not.
        for (ty, name) in [
            (32, "ARPHRD_INFINIBAND"),
            (801, "ARPHRD_IEEE80211"),
            (803, "ARPHRD_IEEE80211_RADIOTAP"),
            (256, "ARPHRD_SLIP"),
            (0xffff, "ARPHRD_VOID"),
            (4242, "unknown"),
        ] {
            assert_eq!(Framing::of_arphrd(ty), None, "{ty}");
            assert_eq!(arphrd::name(ty), name);
        }
        let e = EbpfError::UnsupportedDevice {
            iface: "mon0".into(),
            arphrd: 803,
            name: arphrd::name(803),
        };
        assert_eq!(
            e.to_string(),
            "eBPF capture cannot watch \"mon0\": its device type is ARPHRD 803 \
             (ARPHRD_IEEE80211_RADIOTAP), whose link-layer header the classifier \
             does not parse; use --backend pcap"
        );
    }

    #[test]
    fn truncated_packets_count_as_malformed() {
        let s = CaptureStats::from(EbpfStats {
            short: 2,
            malformed: 4,
            bad_records: 1,
            ..EbpfStats::default()
        });
        assert_eq!(s.malformed, 7);
    }

    #[test]
    fn any_is_refused_with_a_pointer_to_libpcap() {
        if ifindex("any").is_some() {
            return; // An interface really named "any".
        }
        let e = EbpfCapture::open("any", EbpfOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, EbpfError::AnyInterface), "{e}");
        assert!(e.to_string().contains("--backend pcap"), "{e}");
    }
}
