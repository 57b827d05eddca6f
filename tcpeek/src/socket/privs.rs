//! The root-only steps around the socket: creating its directory for the
//! `-u` user, dropping privileges to that user, and dropping every
//! capability the capture no longer needs.
//!
//! The daemon opens the capture as root, calls [`prepare_dir`], then
//! [`drop_privileges`], then binds the socket as the unprivileged user (the
//! original's order: the socket file ends up owned by the user, and nothing
//! after the capture is opened runs as root).

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{self, Gid, Uid, User};

use super::SocketError;

/// The socket directory's mode: the owner (the `-u` user) and its group may
/// reach the socket, other users may not even look it up.
pub const DIR_MODE: u32 = 0o750;

/// Resolves a user name to its uid and primary gid.
pub fn lookup_user(user: &str) -> Result<(Uid, Gid), SocketError> {
    match User::from_name(user) {
        Ok(Some(u)) => Ok((u.uid, u.gid)),
        Ok(None) => Err(SocketError::NoSuchUser {
            user: user.to_owned(),
        }),
        Err(source) => Err(SocketError::LookupUser {
            user: user.to_owned(),
            source,
        }),
    }
}

/// Creates the directory that will hold the socket at `path` if it is missing,
/// with mode 0750 and, if `owner` is given, owned by that user and group (so
/// the daemon can still bind there after dropping privileges). Call it as
/// root, before [`drop_privileges`].
///
/// An existing directory is left exactly as it is: it may be shared (`/tmp`)
/// or set up by the administrator on purpose.
pub fn prepare_dir(path: &Path, owner: Option<(Uid, Gid)>) -> Result<(), SocketError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        // A bare file name: the socket goes into the working directory.
        return Ok(());
    };
    let create_err = |source| SocketError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    // `metadata` (not `symlink_metadata`): `/var/run` is commonly a symlink.
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(create_err(io::Error::other(
                "exists and is not a directory",
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(create_err(e)),
    }
    if let Some(grandparent) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Ancestors get the usual mode; only the socket's own directory is
        // restricted.
        fs::create_dir_all(grandparent).map_err(create_err)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        // Another process made it in the meantime: treat it as existing.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(create_err(e)),
    }
    // The umask may have taken bits away from DIR_MODE; set it exactly.
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(create_err)?;
    if let Some((uid, gid)) = owner {
        unistd::chown(dir, Some(uid), Some(gid)).map_err(|source| SocketError::ChownDir {
            path: dir.to_owned(),
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            source,
        })?;
    }
    Ok(())
}

/// Drops every privilege to `user`: supplementary groups to just the user's
/// primary group, then gid, then uid (in that order: once the uid is dropped
/// the process may no longer change its groups), and checks that root cannot
/// be regained.
///
/// glibc applies `setgroups`/`setgid`/`setuid` to every thread of the process
/// (nptl's SIGSETXID), so this is safe after the tokio runtime has started.
pub fn drop_privileges(user: &str) -> Result<(), SocketError> {
    let (uid, gid) = lookup_user(user)?;
    let failed = |step: &'static str| {
        move |source| SocketError::DropPrivileges {
            user: user.to_owned(),
            step,
            source,
        }
    };
    unistd::setgroups(&[gid]).map_err(failed("setgroups"))?;
    unistd::setgid(gid).map_err(failed("setgid"))?;
    unistd::setuid(uid).map_err(failed("setuid"))?;
    let dropped = unistd::getuid() == uid
        && unistd::geteuid() == uid
        && unistd::getgid() == gid
        && unistd::getegid() == gid;
    // Dropping to root itself is allowed (and pointless); for anyone else,
    // getting root back must fail.
    let regained = !uid.is_root()
        && (unistd::setuid(Uid::from_raw(0)).is_ok() || unistd::seteuid(Uid::from_raw(0)).is_ok());
    if !dropped || regained {
        return Err(SocketError::StillPrivileged {
            user: user.to_owned(),
        });
    }
    Ok(())
}

/// Drops every capability but `keep`, from every set (the bounding set
/// too, when the process may), once the capture is attached and the
/// servers are bound: what is left of the run reads descriptors it already
/// holds. Capabilities belong to a thread: call it before any thread that
/// should not keep them is started (threads started later inherit the
/// reduced sets).
pub fn drop_capabilities(keep: &[caps::Capability]) -> Result<(), SocketError> {
    use caps::{CapSet, CapsHashSet};
    let failed = |e: caps::errors::CapsError| SocketError::DropCapabilities(e.to_string());
    let keep: CapsHashSet = keep.iter().copied().collect();
    // Needs CAP_SETPCAP, so first; without it the bounding set stays (and
    // only limits what an exec could gain back).
    if caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in caps::all().difference(&keep) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(failed)?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(failed)?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).map_err(failed)?;
    let held = caps::read(None, CapSet::Permitted).map_err(failed)?;
    let left: CapsHashSet = held.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &left).map_err(failed)?;
    caps::set(None, CapSet::Permitted, &left).map_err(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_to_uid_zero() {
        let (uid, gid) = lookup_user("root").unwrap();
        assert!(uid.is_root());
        assert_eq!(gid.as_raw(), 0);
    }

    #[test]
    fn unknown_user_is_named_in_the_error() {
        let err = lookup_user("no-such-tcpeek-user").unwrap_err();
        assert_eq!(err.to_string(), "no such user 'no-such-tcpeek-user'");
    }

    #[test]
    fn a_bare_file_name_needs_no_directory() {
        prepare_dir(Path::new("tcpeek.sock"), None).unwrap();
    }
}
