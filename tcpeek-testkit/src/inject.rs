//! Frames put on a link through a packet socket (AF_PACKET), as if
//! another host had sent them: what a hostile peer or a flood looks like
//! to a capture on the other end of a veth pair.

use std::io;

/// Sends each of `frames` (whole Ethernet frames) out of interface
/// `ifname` of the calling thread's network namespace, waiting out a full
/// device queue. Needs CAP_NET_RAW.
pub fn inject<'a>(ifname: &str, frames: impl IntoIterator<Item = &'a [u8]>) -> io::Result<u64> {
    let name = std::ffi::CString::new(ifname).map_err(io::Error::other)?;
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just opened and is owned here alone.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    // SAFETY: a NUL-terminated name.
    addr.sll_ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
    if addr.sll_ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    addr.sll_halen = 6;
    let mut sent = 0;
    for f in frames {
        loop {
            // SAFETY: the buffer and the address outlive the call.
            let n = unsafe {
                libc::sendto(
                    raw,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n == f.len() as isize {
                break;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOBUFS) {
                return Err(e);
            }
            // A full device queue: let it drain.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        sent += 1;
    }
    Ok(sent)
}
