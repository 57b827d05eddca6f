//! The libpcap capture backend: live interfaces. (Capture files are read
//! without libpcap, in file/.)
//!
//! Opens a libpcap handle (through the `pcap` crate), installs a kernel
//! filter that lets through only what tcpeek can use, and turns each frame
//! into an [`Event`] with [`Decoder`]. Frames that are not TCP or a relevant
//! ICMP error are skipped; frames that fail to decode are counted as
//! `malformed` in [`CaptureStats`] and skipped too, so one bad packet never
//! stops a capture.
//!
//! Time: timestamps are requested in nanoseconds (`pcap_set_tstamp_precision`
//! (3PCAP)), falling back to microseconds where a device cannot. Events
//! carry the packet's own time.

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use pcap::{Activated, Active, Capture, Device, Linktype, Precision};
use tcpeek_common::Event;

use super::decode::{ChecksumMode, Decoder, LinkType};
use super::CaptureStats;

/// Default bytes captured per frame. The deepest header stack tcpeek reads
/// is an ICMPv6 error on a double-tagged frame: Ethernet 14 + two VLAN tags
/// 8 + IPv6 40 + ICMPv6 8 + quoted IPv6 40 + quoted TCP 14 (with flags) =
/// 124 bytes, plus any IPv6 extension headers in either IPv6 header; a plain
/// TCP segment needs at most 14 + 8 + 40 + 60 (TCP with full options) = 122
/// bytes plus extensions (SLL2 adds 6 bytes over Ethernet). 256 leaves over
/// 100 bytes for extension headers while copying a fifth of a full-size
/// frame. (The original used 138, too short for IPv6.)
pub const DEFAULT_SNAPLEN: i32 = 256;

/// libpcap read timeout. With Linux TPACKET_V3 it is the kernel's block
/// retire timeout: the longest a packet waits in a partly filled buffer
/// block before userspace sees it. 10 ms keeps a finished handshake's
/// report within a few tens of milliseconds on a quiet interface; a busy
/// one fills blocks long before.
const READ_TIMEOUT_MS: i32 = 10;

/// Upper bound on how long [`PcapCapture::next`] waits for, or keeps
/// skipping, live packets before it returns [`Next::Timeout`].
const MAX_WAIT: Duration = Duration::from_millis(READ_TIMEOUT_MS as u64);

/// Kernel filters to try, best first. The `vlan` keyword must come last
/// because it shifts the offsets of everything after it (pcap-filter(7));
/// libpcap supports it on Ethernet but not on Linux cooked captures (where
/// the kernel has already removed the tag), so a shorter filter is tried
/// next. `tcp` and `icmp6` match IPv6 only when no extension header
/// precedes the upper-layer header (pcap-filter(7), `ip6 protochain`), and
/// `protochain` is a loop the kernel's BPF refuses, so all of IPv6 is let
/// through and the decoder walks the extension headers itself.
const FILTERS: [&str; 2] = [
    "tcp or icmp or ip6 or (vlan and (tcp or icmp or ip6))",
    "tcp or icmp or ip6",
];

/// How to open a live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// Interface name; `None` for libpcap's default device.
    pub interface: Option<String>,
    /// Bytes captured per frame ([`DEFAULT_SNAPLEN`]).
    pub snaplen: i32,
    /// Kernel capture buffer in MiB (`-B`).
    pub buffer_mb: u32,
    /// Put the interface in promiscuous mode (`--promisc`).
    pub promisc: bool,
    /// Checksums to verify (`-c`).
    pub checksum: ChecksumMode,
}

/// What [`PcapCapture::next`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A relevant packet.
    Event(Event),
    /// Nothing relevant arrived within the read timeout.
    Timeout,
    /// libpcap has no more packets (`pcap_next_ex(3PCAP)` returned
    /// `PCAP_ERROR_BREAK`), or an error was reported before.
    Eof,
}

/// Why a capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no capture device found: libpcap lists no interface; name one with -i")]
    NoDefaultDevice,
    #[error("cannot list capture devices: {0}")]
    DeviceLookup(String),
    #[error("cannot capture on {interface}: no such device")]
    NoSuchDevice { interface: String },
    #[error("cannot capture on {interface}: permission denied, tcpeek needs root or CAP_NET_RAW ({detail})")]
    PermissionDenied { interface: String, detail: String },
    #[error("cannot capture on {interface}: {detail}")]
    Open { interface: String, detail: String },
    #[error(
        "cannot capture on {interface}: a {buffer_mb} MB buffer is too large (at most 2047 MB)"
    )]
    BufferTooLarge { interface: String, buffer_mb: u32 },
    #[error("cannot read from {interface}: {detail}")]
    Read { interface: String, detail: String },
    #[error("{source_name}: unsupported link type {dlt} ({name}); tcpeek decodes Ethernet, Linux cooked v1/v2 and raw IP")]
    UnsupportedLinkType {
        source_name: String,
        dlt: i32,
        name: String,
    },
}

/// A libpcap capture producing [`Event`]s.
pub struct PcapCapture {
    /// A non-blocking live handle.
    cap: Capture<Active>,
    /// Its selectable descriptor.
    fd: RawFd,
    decoder: Decoder,
    /// Interface name, for messages.
    source_name: String,
    snaplen: i32,
    buffer_mb: u32,
    /// The kernel filter in place, `None` if none could be installed.
    filter: Option<&'static str>,
    /// Whether timestamps come in nanoseconds (else microseconds).
    nanos: bool,
    malformed: u64,
    truncated: u64,
    /// Live counters, widened from libpcap's wrapping 32-bit ones.
    recv: Counter,
    drop: Counter,
    ifdrop: Counter,
    /// A read error or the end was reported; later reads are Eof.
    done: bool,
}

impl PcapCapture {
    /// Opens a live capture on `opts.interface` (libpcap's default device if
    /// `None`).
    pub fn open_live(opts: &LiveOptions) -> Result<PcapCapture, CaptureError> {
        let interface = match &opts.interface {
            Some(name) => name.clone(),
            None => {
                Device::lookup()
                    .map_err(|e| CaptureError::DeviceLookup(pcap_detail(&e)))?
                    .ok_or(CaptureError::NoDefaultDevice)?
                    .name
            }
        };
        let buffer_bytes = opts
            .buffer_mb
            .checked_mul(1 << 20)
            .and_then(|b| i32::try_from(b).ok())
            .ok_or_else(|| CaptureError::BufferTooLarge {
                interface: interface.clone(),
                buffer_mb: opts.buffer_mb,
            })?;
        let open_err = |e: pcap::Error| classify_open_error(&interface, e);
        let inactive = Capture::from_device(interface.as_str()).map_err(open_err)?;
        let mut cap = inactive
            .snaplen(opts.snaplen)
            .buffer_size(buffer_bytes)
            .promisc(opts.promisc)
            .timeout(READ_TIMEOUT_MS)
            .precision(Precision::Nano)
            .open()
            .map_err(open_err)?;

        let (link, _) = link_type(&cap, &interface)?;
        // A filter that does not compile for this link type is not fatal:
        // the decoder skips what it does not need, at some CPU cost.
        let filter = FILTERS
            .iter()
            .copied()
            .find(|f| cap.filter(f, true).is_ok());
        let nanos = ffi::nanosecond_timestamps(&cap);
        let snaplen = ffi::snapshot(&cap).unwrap_or(opts.snaplen);
        // Linux TPACKET_V3 only honours the read timeout once a packet has
        // arrived: on a quiet interface a blocking read can wait for minutes
        // (pcap(3PCAP), "read timeout"). So read without blocking and wait
        // in poll(2) with our own timeout (pcap_get_selectable_fd(3PCAP)).
        let cap = cap.setnonblock().map_err(open_err)?;
        let fd = cap.as_raw_fd();
        Ok(PcapCapture {
            decoder: Decoder::new(link, opts.checksum),
            cap,
            fd,
            source_name: interface,
            snaplen,
            buffer_mb: opts.buffer_mb,
            filter,
            nanos,
            malformed: 0,
            truncated: 0,
            recv: Counter::default(),
            drop: Counter::default(),
            ifdrop: Counter::default(),
            done: false,
        })
    }

    /// The startup line, worded like tcpdump's:
    /// `listening on eth0, link-type EN10MB (Ethernet), capture size 256 bytes, buffer size 2 MB`.
    /// A capture without a kernel filter says so at the end.
    pub fn banner(&self) -> String {
        let link = self.decoder.link().name();
        let mut line = format!(
            "listening on {}, link-type {link}, capture size {} bytes, buffer size {} MB",
            self.source_name, self.snaplen, self.buffer_mb
        );
        match self.filter {
            Some(f) if f == FILTERS[0] => {}
            Some(f) => line.push_str(&format!(", kernel filter '{f}'")),
            None => line.push_str(", no kernel filter"),
        }
        line
    }

    /// The next relevant event. Irrelevant frames are skipped; frames that do
    /// not decode are counted as malformed and skipped. A live capture
    /// returns [`Next::Timeout`] when the read timeout (10 ms) expires or
    /// after skipping frames for that long, so the caller can check for
    /// shutdown. A read error is returned once; later calls return
    /// [`Next::Eof`].
    #[expect(
        clippy::should_implement_trait,
        reason = "not an Iterator: Timeout is not an item, and Err is not the end"
    )]
    pub fn next(&mut self) -> Result<Next, CaptureError> {
        if self.done {
            return Ok(Next::Eof);
        }
        // Only live reads need the clock, and only once they wait or have
        // skipped many frames: clock reads cost as much as decoding.
        let mut started: Option<Instant> = None;
        let mut skipped = 0u32;
        loop {
            let result = self.cap.next_packet();
            if let Err(pcap::Error::TimeoutExpired) = result {
                // Nothing buffered (non-blocking read).
                let started = *started.get_or_insert_with(Instant::now);
                let left = MAX_WAIT.saturating_sub(started.elapsed());
                if left.is_zero() || !wait_readable(self.fd, left) {
                    return Ok(Next::Timeout);
                }
                continue;
            }
            let packet = match result {
                Ok(packet) => packet,
                Err(pcap::Error::TimeoutExpired) => return Ok(Next::Timeout),
                Err(pcap::Error::NoMorePackets) => {
                    self.done = true;
                    return Ok(Next::Eof);
                }
                Err(e) => {
                    self.done = true;
                    return Err(CaptureError::Read {
                        interface: self.source_name.clone(),
                        detail: pcap_detail(&e),
                    });
                }
            };
            #[allow(
                clippy::useless_conversion,
                reason = "time_t and suseconds_t are 32-bit on some targets"
            )]
            let ts = timeval_to_ns(
                i64::from(packet.header.ts.tv_sec),
                i64::from(packet.header.ts.tv_usec),
                self.nanos,
            );
            let wire_len = usize::try_from(packet.header.len).unwrap_or(usize::MAX);
            match self.decoder.decode_frame(ts, packet.data, wire_len) {
                Ok(Some(d)) => {
                    self.truncated += u64::from(d.header_cut);
                    return Ok(Next::Event(d.event));
                }
                Ok(None) => {}
                Err(_) => self.malformed += 1,
            }
            skipped += 1;
            if skipped.is_multiple_of(64)
                && started.get_or_insert_with(Instant::now).elapsed() >= MAX_WAIT
            {
                return Ok(Next::Timeout);
            }
        }
    }

    /// Counters: libpcap's `pcap_stats(3PCAP)` (received, dropped by the
    /// libpcap/kernel buffer, dropped by the interface) plus malformed and
    /// truncated.
    pub fn stats(&mut self) -> CaptureStats {
        // On failure keep the last values: stats are informational.
        if let Ok(s) = self.cap.stats() {
            self.recv.update(s.received);
            self.drop.update(s.dropped);
            self.ifdrop.update(s.if_dropped);
        }
        CaptureStats {
            recv: self.recv.total,
            drop: self.drop.total,
            ifdrop: self.ifdrop.total,
            malformed: self.malformed,
            truncated: self.truncated,
        }
    }
}

/// A libpcap counter widened to 64 bits. `struct pcap_stat` has 32-bit
/// counters that wrap on a busy link; accumulating wrapping deltas keeps the
/// total monotonic as long as it is read at least once per 2^32 packets.
#[derive(Clone, Copy, Debug, Default)]
struct Counter {
    last: u32,
    total: u64,
}

impl Counter {
    fn update(&mut self, now: u32) {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
    }
}

/// Waits up to `timeout` for `fd` to become readable. `false` on timeout and
/// on EINTR: a signal (SIGINT, SIGTERM) should reach the caller promptly.
fn wait_readable(fd: RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd that outlives the call.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// Converts a pcap timestamp to nanoseconds since the epoch. `frac` is in
/// nanoseconds if `nanos`, else microseconds. Garbage never panics: times
/// before the epoch become 0, times past 2554 saturate.
pub(crate) fn timeval_to_ns(sec: i64, frac: i64, nanos: bool) -> u64 {
    let Ok(sec) = u64::try_from(sec) else {
        return 0;
    };
    let frac = u64::try_from(frac).unwrap_or(0);
    let frac_ns = if nanos {
        frac
    } else {
        frac.saturating_mul(1_000)
    };
    sec.saturating_mul(1_000_000_000).saturating_add(frac_ns)
}

/// The decodable link type of an open handle, or an error naming it.
fn link_type<T: Activated + ?Sized>(
    cap: &Capture<T>,
    source_name: &str,
) -> Result<(LinkType, i32), CaptureError> {
    let dlt = cap.get_datalink();
    match LinkType::from_dlt(dlt.0) {
        Some(link) => Ok((link, dlt.0)),
        None => Err(CaptureError::UnsupportedLinkType {
            source_name: source_name.to_owned(),
            dlt: dlt.0,
            name: dlt_name(dlt),
        }),
    }
}

/// "EN10MB (Ethernet)"-style name of any DLT libpcap knows.
fn dlt_name(dlt: Linktype) -> String {
    match (dlt.get_name(), dlt.get_description()) {
        (Ok(name), Ok(desc)) => format!("{name} ({desc})"),
        (Ok(name), Err(_)) => name,
        _ => "unknown to libpcap".to_owned(),
    }
}

/// libpcap's own message without the crate's "libpcap error: " prefix.
fn pcap_detail(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// Sorts an activation error into the cases a user can act on. The pcap
/// crate keeps only libpcap's message, so this matches its wording
/// (pcap_activate(3PCAP): PCAP_ERROR_NO_SUCH_DEVICE, PCAP_ERROR_PERM_DENIED;
/// the Linux messages are "No such device exists" and "You don't have
/// permission to perform this capture on that device").
fn classify_open_error(interface: &str, e: pcap::Error) -> CaptureError {
    let detail = pcap_detail(&e);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("no such device") {
        CaptureError::NoSuchDevice {
            interface: interface.to_owned(),
        }
    } else if lower.contains("permission") || lower.contains("operation not permitted") {
        CaptureError::PermissionDenied {
            interface: interface.to_owned(),
            detail,
        }
    } else {
        CaptureError::Open {
            interface: interface.to_owned(),
            detail,
        }
    }
}

/// Two libpcap calls the `pcap` crate does not wrap.
mod ffi {
    use super::*;

    // libpcap >= 1.5 (the pcap crate's `precision` needs it too); the crate
    // already links libpcap.
    extern "C" {
        fn pcap_get_tstamp_precision(p: *mut c_void) -> c_int;
        fn pcap_snapshot(p: *mut c_void) -> c_int;
    }

    /// `PCAP_TSTAMP_PRECISION_NANO` from pcap/pcap.h.
    const PRECISION_NANO: c_int = 1;

    /// Whether libpcap delivers nanosecond timestamps on this handle:
    /// `pcap_set_tstamp_precision` fails silently (through the crate) when a
    /// device cannot, and then the fraction is in microseconds.
    pub(super) fn nanosecond_timestamps<T: Activated + ?Sized>(cap: &Capture<T>) -> bool {
        // SAFETY: `cap` owns a valid, activated pcap_t for the duration of
        // the call; the function only reads a field of it.
        unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) == PRECISION_NANO }
    }

    /// The snapshot length in effect (libpcap may adjust the requested one).
    pub(super) fn snapshot<T: Activated + ?Sized>(cap: &Capture<T>) -> Option<i32> {
        // SAFETY: as above; pcap_snapshot(3PCAP) reads a field of an
        // activated handle.
        let n = unsafe { pcap_snapshot(cap.as_ptr().cast()) };
        (n > 0).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeval_conversion_scales_micro_and_nano() {
        assert_eq!(timeval_to_ns(1, 5, false), 1_000_005_000);
        assert_eq!(timeval_to_ns(1, 5, true), 1_000_000_005);
        assert_eq!(timeval_to_ns(0, 0, true), 0);
    }

    #[test]
    fn timeval_conversion_survives_garbage() {
        assert_eq!(timeval_to_ns(-1, 5, false), 0);
        assert_eq!(timeval_to_ns(i64::MAX, i64::MAX, false), u64::MAX);
        assert_eq!(timeval_to_ns(5, -7, true), 5_000_000_000);
        assert_eq!(timeval_to_ns(i64::MIN, i64::MIN, true), 0);
    }

    /// Live captures need root or CAP_NET_RAW; without them these checks
    /// are skipped with a message rather than failing.
    fn can_capture() -> bool {
        // SAFETY: geteuid(2) has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            tcpeek_testkit::skip("live capture needs root or CAP_NET_RAW");
        }
        root
    }

    fn live(interface: &str) -> Result<PcapCapture, CaptureError> {
        PcapCapture::open_live(&LiveOptions {
            interface: Some(interface.to_owned()),
            snaplen: DEFAULT_SNAPLEN,
            buffer_mb: 2,
            promisc: false,
            checksum: ChecksumMode::None,
        })
    }

    #[test]
    fn live_quiet_interface_times_out_promptly() {
        if !can_capture() {
            return;
        }
        // Regression: on TPACKET_V3 a blocking read with a 100 ms timeout
        // waited two minutes on a quiet interface.
        let mut cap = live("lo").expect("lo opens");
        assert!(
            cap.banner().starts_with("listening on lo, link-type "),
            "{}",
            cap.banner()
        );
        for _ in 0..3 {
            let started = Instant::now();
            cap.next().expect("reads");
            assert!(started.elapsed() < Duration::from_millis(500));
        }
        let _ = cap.stats();
    }

    #[test]
    fn live_unknown_interface_says_so() {
        if !can_capture() {
            return;
        }
        let err = live("nosuchif0").err().expect("fails");
        assert!(matches!(err, CaptureError::NoSuchDevice { .. }), "{err}");
        assert!(err.to_string().contains("nosuchif0"), "{err}");
    }

    #[test]
    fn counter_widens_wrapping_libpcap_counters() {
        let mut c = Counter::default();
        c.update(u32::MAX - 1);
        c.update(3);
        assert_eq!(c.total, u64::from(u32::MAX) + 4);
    }
}
