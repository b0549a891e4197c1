//! Loopback ports for the servers a test starts (kubelet healthz and read-only port, a
//! registry, Prometheus).
//!
//! Asking the kernel for port 0 and passing the number on races with every outgoing
//! connection on the machine: such ports come from the ephemeral range, and a client may take
//! the number before the test's server binds it (a CI run lost a kubelet that way). So ports
//! come from below the ephemeral range, and each is reserved for the life of the test process
//! by an exclusive lock on a file named after it, which other test processes respect.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::sync::Mutex;

/// Where the per-port lock files live.
const LOCK_DIR: &str = "/tmp/knode-e2e-ports";

/// Ports handed out: below the kernel's default ephemeral range (32768–60999) and above
/// the well-known services a machine may run.
const RANGE: std::ops::Range<u16> = 20000..32000;

/// Lock files held until the test process exits.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A loopback port nobody listens on, outside the ephemeral range, reserved against other
/// test processes until this one exits.
pub fn free_port() -> u16 {
    std::fs::create_dir_all(LOCK_DIR).expect("create the port lock directory");
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let span = u32::from(RANGE.end - RANGE.start);
    for attempt in 0..span {
        let offset = (seed.wrapping_add(attempt.wrapping_mul(7919))) % span;
        let port = RANGE.start + offset as u16;
        let Ok(lock) = OpenOptions::new().create(true).truncate(false).write(true).open(format!("{LOCK_DIR}/{port}")) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
        return port;
    }
    panic!("no free loopback port in {RANGE:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        for port in [a, b] {
            assert!(RANGE.contains(&port));
            TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        }
    }

    #[test]
    fn a_port_locked_elsewhere_is_skipped() {
        let port = free_port();
        let other = OpenOptions::new().write(true).open(format!("{LOCK_DIR}/{port}")).unwrap();
        assert!(other.try_lock().is_err(), "the reservation is an exclusive lock");
    }
}
