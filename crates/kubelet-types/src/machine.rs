//! Facts about the machine for the node object (upstream gets them from cAdvisor): cores,
//! memory, huge pages, root filesystem size, machine and boot IDs, kernel and OS image.
//!
//! Every path is a parameter ([`HostPaths`]) so tests read fixtures. Missing files give empty or
//! zero values, never errors: the node status reports what it can.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the host facts are read from.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// `/proc`.
    pub proc_root: PathBuf,
    /// `/sys`.
    pub sys_root: PathBuf,
    /// `/etc`.
    pub etc_root: PathBuf,
    /// The filesystem whose size is `ephemeral-storage` (the kubelet root dir).
    pub root_dir: PathBuf,
}

impl HostPaths {
    /// The real host, with `root_dir` as the kubelet's root directory.
    pub fn host(root_dir: &Path) -> HostPaths {
        HostPaths { proc_root: "/proc".into(), sys_root: "/sys".into(), etc_root: "/etc".into(), root_dir: root_dir.into() }
    }
}

/// What the node status needs to know about the machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineInfo {
    /// Logical CPUs (`processor` entries of `/proc/cpuinfo`, else the available parallelism);
    /// the node's `cpu` capacity.
    pub num_cores: i64,
    /// Bytes.
    pub memory_capacity: i64,
    /// Huge page size in KiB → total bytes of pages of that size.
    pub hugepages: BTreeMap<u64, i64>,
    /// Bytes of the filesystem holding the root dir.
    pub ephemeral_storage: i64,
    /// `/etc/machine-id` (else D-Bus's), reported as `nodeInfo.machineID`.
    pub machine_id: String,
    /// The DMI product UUID (`/sys/class/dmi/id/product_uuid`), reported as `nodeInfo.systemUUID`.
    pub system_uuid: String,
    /// This boot's random ID (`/proc/sys/kernel/random/boot_id`), reported as `nodeInfo.bootID`;
    /// a change means the node rebooted.
    pub boot_id: String,
    /// The kernel release (`/proc/sys/kernel/osrelease`), reported as `nodeInfo.kernelVersion`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of os-release, else `Linux`, reported as `nodeInfo.osImage`.
    pub os_image: String,
}

fn read_trim(path: &Path) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Reads every fact; unknown ones stay empty or zero.
pub fn read_machine_info(paths: &HostPaths) -> MachineInfo {
    let cpuinfo = std::fs::read_to_string(paths.proc_root.join("cpuinfo")).unwrap_or_default();
    let mut num_cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count() as i64;
    if num_cores == 0 {
        num_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
    }
    let machine_id = Some(read_trim(&paths.etc_root.join("machine-id")))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| read_trim(&paths.etc_root.join("../var/lib/dbus/machine-id")));
    MachineInfo {
        num_cores,
        memory_capacity: memory_capacity(&paths.proc_root),
        hugepages: hugepages(&paths.sys_root),
        ephemeral_storage: filesystem_size(&paths.root_dir),
        machine_id,
        system_uuid: read_trim(&paths.sys_root.join("class/dmi/id/product_uuid")),
        boot_id: read_trim(&paths.proc_root.join("sys/kernel/random/boot_id")),
        kernel_version: read_trim(&paths.proc_root.join("sys/kernel/osrelease")),
        os_image: os_image(&std::fs::read_to_string(paths.etc_root.join("os-release")).unwrap_or_default()),
    }
}

/// `MemTotal` of `<proc_root>/meminfo` in bytes; 0 when unknown.
pub fn memory_capacity(proc_root: &Path) -> i64 {
    let text = std::fs::read_to_string(proc_root.join("meminfo")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `PRETTY_NAME` of os-release, else "Linux" (cAdvisor's `ContainerOsVersion`).
pub fn os_image(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "Linux".into())
}

/// `kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages` → size KiB → bytes.
fn hugepages(sys_root: &Path) -> BTreeMap<u64, i64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(sys_root.join("kernel/mm/hugepages")) else { return out };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(kb) = name.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")).and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let pages: i64 = read_trim(&entry.path().join("nr_hugepages")).parse().unwrap_or(0);
        out.insert(kb, pages * kb as i64 * 1024);
    }
    out
}

/// Total bytes of the filesystem holding `path` (its nearest existing ancestor); 0 if unknown.
pub fn filesystem_size(path: &Path) -> i64 {
    let mut p = path;
    while !p.exists() {
        match p.parent() {
            Some(parent) => p = parent,
            None => return 0,
        }
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { return 0 };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    (st.f_blocks as i64).saturating_mul(st.f_frsize as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixture_files() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let w = |p: &str, s: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("proc/cpuinfo", "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\n");
        w("proc/meminfo", "MemTotal:       2048 kB\n");
        w("proc/sys/kernel/random/boot_id", "b00t\n");
        w("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
        w("etc/machine-id", "abc123\n");
        w("etc/os-release", "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
        w("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "3\n");
        w("sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n");
        let paths = HostPaths {
            proc_root: root.join("proc"),
            sys_root: root.join("sys"),
            etc_root: root.join("etc"),
            root_dir: root.join("var/lib/kubelet"),
        };
        let m = read_machine_info(&paths);
        assert_eq!(m.num_cores, 2);
        assert_eq!(m.memory_capacity, 2048 * 1024);
        assert_eq!(m.boot_id, "b00t");
        assert_eq!(m.machine_id, "abc123");
        assert_eq!(m.kernel_version, "6.1.0-18-amd64");
        assert_eq!(m.os_image, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(m.hugepages.get(&2048), Some(&(3 * 2048 * 1024)));
        assert_eq!(m.hugepages.get(&1048576), Some(&0));
        assert!(m.ephemeral_storage > 0, "root dir's nearest existing ancestor is measured");
    }

    #[test]
    fn os_image_falls_back_to_linux() {
        assert_eq!(os_image("ID=x\n"), "Linux");
    }
}
