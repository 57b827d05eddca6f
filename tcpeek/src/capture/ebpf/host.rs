//! Facts about the host: clocks, interface indexes and device types,
//! capabilities, the page size.

use super::*;

/// CLOCK_REALTIME - CLOCK_MONOTONIC in nanoseconds, the realtime read taken
/// between two monotonic reads (their midpoint) to halve the error.
pub fn mono_to_epoch_offset_ns() -> i64 {
    let m1 = monotonic_ns();
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let m2 = monotonic_ns();
    real - (m1 + (m2 - m1) / 2)
}

/// CLOCK_MONOTONIC in ns, the clock of `bpf_ktime_get_ns()`.
pub(super) fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

pub(super) fn ifindex(iface: &str) -> Option<u32> {
    let name = std::ffi::CString::new(iface).ok()?;
    // SAFETY: `name` is a NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (idx != 0).then_some(idx)
}

pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Capabilities from `/proc/self/status` (CapEff), checked up front so that
/// the error says what is missing instead of a bare EPERM from some syscall.
pub(super) fn check_privileges(iface: &str) -> Result<(), EbpfError> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let Some(eff) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
    else {
        return Ok(()); // Unknown: let the syscalls decide.
    };
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        // Direct packet access by non-SYS_ADMIN loaders needs CAP_PERFMON.
        missing.push("CAP_PERFMON");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EbpfError::Privileges {
            iface: iface.to_owned(),
            missing: missing.join(", "),
        })
    }
}

/// How an interface's packets begin, as far as the classifier is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// An Ethernet header, maybe VLAN tags, then IP.
    Ethernet,
    /// IP from the first byte (no link-layer header).
    Ip,
}

impl Framing {
    /// The framing of ARPHRD device type `ty`, or `None` for a link layer
    /// the classifier does not parse (then it would see nothing there, and
    /// libpcap, which knows many more, must be used).
    ///
    /// The L3 types are those whose devices have no `header_ops`, so that
    /// TC and XDP (generic and tun's native) see packets from the network
    /// header on: `skb->data` at the IP header on ingress and egress.
    pub fn of_arphrd(ty: u16) -> Option<Framing> {
        use arphrd::*;
        match ty {
            ETHER | LOOPBACK => Some(Framing::Ethernet),
            NONE | PPP | RAWIP | TUNNEL | TUNNEL6 | SIT | IPGRE | IP6GRE => Some(Framing::Ip),
            _ => None,
        }
    }

    /// The value of the classifier's [`framing::GLOBAL`].
    pub(super) fn global(self) -> u32 {
        match self {
            Framing::Ethernet => framing::ETHERNET,
            Framing::Ip => framing::IP,
        }
    }
}

/// Device types (`dev->type`), from `linux/if_arp.h`.
pub mod arphrd {
    pub const ETHER: u16 = 1;
    pub const PPP: u16 = 512;
    pub const RAWIP: u16 = 519;
    pub const TUNNEL: u16 = 768;
    pub const TUNNEL6: u16 = 769;
    pub const LOOPBACK: u16 = 772;
    pub const SIT: u16 = 776;
    pub const IPGRE: u16 = 778;
    pub const IP6GRE: u16 = 823;
    /// tun, WireGuard: no link-layer header at all.
    pub const NONE: u16 = 0xfffe;

    /// The `ARPHRD_` name of `ty`, for messages.
    pub fn name(ty: u16) -> &'static str {
        match ty {
            0 => "ARPHRD_NETROM",
            ETHER => "ARPHRD_ETHER",
            6 => "ARPHRD_IEEE802",
            24 => "ARPHRD_IEEE1394",
            32 => "ARPHRD_INFINIBAND",
            256 => "ARPHRD_SLIP",
            257 => "ARPHRD_CSLIP",
            PPP => "ARPHRD_PPP",
            513 => "ARPHRD_CISCO (HDLC)",
            516 => "ARPHRD_X25",
            RAWIP => "ARPHRD_RAWIP",
            TUNNEL => "ARPHRD_TUNNEL",
            TUNNEL6 => "ARPHRD_TUNNEL6",
            770 => "ARPHRD_FRAD",
            LOOPBACK => "ARPHRD_LOOPBACK",
            774 => "ARPHRD_FDDI",
            SIT => "ARPHRD_SIT",
            IPGRE => "ARPHRD_IPGRE",
            801 => "ARPHRD_IEEE80211",
            802 => "ARPHRD_IEEE80211_PRISM",
            803 => "ARPHRD_IEEE80211_RADIOTAP",
            804 => "ARPHRD_IEEE802154",
            IP6GRE => "ARPHRD_IP6GRE",
            824 => "ARPHRD_NETLINK",
            825 => "ARPHRD_6LOWPAN",
            826 => "ARPHRD_VSOCKMON",
            0xffff => "ARPHRD_VOID",
            NONE => "ARPHRD_NONE",
            _ => "unknown",
        }
    }
}

/// The ARPHRD device type of `iface` in the calling thread's network
/// namespace. Asked with SIOCGIFHWADDR (netdevice(7): its `sa_family` is
/// the device type) rather than read from `/sys/class/net/IFACE/type`:
/// sysfs shows the namespace of whoever mounted it, which a thread that
/// entered another namespace with setns(2) is not in.
pub(super) fn device_type(iface: &str) -> Result<u16, EbpfError> {
    let err = |source| EbpfError::DeviceType {
        iface: iface.to_owned(),
        source,
    };
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = iface.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        return Err(err(io::Error::from(io::ErrorKind::InvalidInput)));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: a valid socket and a valid, NUL-terminated ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) } < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    Ok(unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_family })
}
