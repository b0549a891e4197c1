//! Kernel tunables (upstream `k8s.io/component-helpers/node/util/sysctl`):
//! the [`Sysctl`] boundary, read and written by slash-separated name
//! (`net/netfilter/nf_conntrack_max`), and [`ProcSysctl`], the real one over
//! a `/proc/sys` root that tests point at a temporary directory. An
//! in-memory fake lives in `test-support`. Knows nothing of what to set:
//! `app::host_setup` decides that.

use std::path::{Path, PathBuf};

/// Why a sysctl could not be read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The sysctl's file could not be read.
    #[error("reading sysctl {path}: {source}")]
    Read {
        /// The file under the `/proc/sys` root.
        path: PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The sysctl's file could not be written (read-only `/proc/sys`, missing capability, ...).
    #[error("writing {value:?} to sysctl {path}: {source}")]
    Write {
        /// The file under the `/proc/sys` root.
        path: PathBuf,
        /// The value that was being written.
        value: String,
        /// The write error.
        #[source]
        source: std::io::Error,
    },
    /// The sysctl holds something other than an integer.
    #[error("sysctl {name}: {value:?} is not an integer")]
    NotInteger {
        /// The sysctl's slash-separated name.
        name: String,
        /// What it holds, trimmed.
        value: String,
    },
}

/// Reads and writes kernel tunables.
pub trait Sysctl {
    /// The value of `name` (`net/ipv4/conf/all/route_localnet`), trimmed.
    fn get(&self, name: &str) -> Result<String, SysctlError>;
    /// Writes `value` to `name` (`net/netfilter/nf_conntrack_max`).
    fn set(&mut self, name: &str, value: &str) -> Result<(), SysctlError>;
}

/// `name`'s value as an integer.
pub fn get_int(s: &dyn Sysctl, name: &str) -> Result<i64, SysctlError> {
    let v = s.get(name)?;
    v.parse().map_err(|_| SysctlError::NotInteger { name: name.to_string(), value: v })
}

/// Sets `name` to `value` unless it already has it (upstream only writes
/// when the value differs, so read-only sysctls that are already right are
/// no error). `Ok(true)` when it wrote.
pub fn ensure_int(s: &mut dyn Sysctl, name: &str, value: i64) -> Result<bool, SysctlError> {
    if get_int(s, name).ok() == Some(value) {
        return Ok(false);
    }
    s.set(name, &value.to_string())?;
    Ok(true)
}

/// The files under a `/proc/sys` root.
#[derive(Debug, Clone)]
pub struct ProcSysctl {
    root: PathBuf,
}

impl ProcSysctl {
    /// `root`: usually `/proc/sys`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProcSysctl { root: root.into() }
    }

    /// The `/proc/sys` root the names are resolved under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name.trim_start_matches('/'))
    }
}

impl Default for ProcSysctl {
    fn default() -> Self {
        ProcSysctl::new("/proc/sys")
    }
}

impl Sysctl for ProcSysctl {
    fn get(&self, name: &str) -> Result<String, SysctlError> {
        let path = self.path(name);
        std::fs::read_to_string(&path).map(|v| v.trim().to_string()).map_err(|source| SysctlError::Read { path, source })
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), SysctlError> {
        let path = self.path(name);
        std::fs::write(&path, value).map_err(|source| SysctlError::Write { path, value: value.to_string(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_skips_equal_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net/netfilter")).unwrap();
        std::fs::write(dir.path().join("net/netfilter/nf_conntrack_max"), "131072\n").unwrap();
        let mut s = ProcSysctl::new(dir.path());
        assert_eq!(get_int(&s, "net/netfilter/nf_conntrack_max").unwrap(), 131072);
        assert!(!ensure_int(&mut s, "net/netfilter/nf_conntrack_max", 131072).unwrap());
        assert!(ensure_int(&mut s, "/net/netfilter/nf_conntrack_max", 262144).unwrap());
        assert_eq!(s.get("net/netfilter/nf_conntrack_max").unwrap(), "262144");
        // A missing sysctl (module not loaded) is a typed error naming the path.
        let err = ensure_int(&mut s, "net/bridge/bridge-nf-call-iptables", 1).unwrap_err();
        assert!(err.to_string().contains("net/bridge/bridge-nf-call-iptables"), "{err}");
        std::fs::write(dir.path().join("net/netfilter/bad"), "many").unwrap();
        assert!(matches!(get_int(&s, "net/netfilter/bad"), Err(SysctlError::NotInteger { .. })));
    }
}
