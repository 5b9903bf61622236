//! Sizing the process's file descriptor table up front.
//!
//! The kernel grows a process's fd table by doubling it, and in a multi-threaded process each
//! growth waits for an RCU grace period, a stall of milliseconds. A server taking over thousands
//! of sockets (each briefly held twice, by Node and by the plane) would otherwise meet those
//! stalls in the middle of a connection storm, on the JS thread that accepts and adopts.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Grows the fd table to hold at least `count` descriptors, within the open-files limit, by
/// briefly duplicating a descriptor to the top of that range. Best effort: failing to reserve
/// only leaves the growth to happen later.
pub(crate) fn reserve(count: usize) {
    let Some(top) = count.min(open_files_limit()).checked_sub(1) else {
        return;
    };
    let Ok(top) = libc::c_int::try_from(top) else {
        return;
    };
    let Ok(null) = File::open("/dev/null") else {
        return;
    };
    // SAFETY: fcntl with F_DUPFD_CLOEXEC only reads the open descriptor `null` and returns a new
    // descriptor (or -1), which is owned here and closed at once.
    let duplicate = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top) };
    if duplicate >= 0 {
        // SAFETY: `duplicate` was just returned by fcntl and nothing else refers to it.
        drop(unsafe { OwnedFd::from_raw_fd(duplicate) });
    }
}

fn open_files_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_size() -> usize {
        // The kernel reports the table's size as FDSize in /proc/self/status.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("FDSize:"))
            .unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn grows_the_table_within_the_open_files_limit() {
        let wanted = 2048.min(open_files_limit());
        reserve(wanted);
        assert!(table_size() >= wanted, "{} < {wanted}", table_size());
    }

    #[test]
    fn closes_the_descriptor_it_reserved_with() {
        let wanted = 1024.min(open_files_limit());
        reserve(wanted);
        let top = format!("/proc/self/fd/{}", wanted - 1);
        assert!(!std::path::Path::new(&top).exists(), "{top} is open");
    }
}
