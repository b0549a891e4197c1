//! Cgroups on a cgroupfs tree, v1 (one hierarchy per controller) or v2 (unified): creating a
//! cgroup with its limits, and removing it (upstream `cgroupManagerImpl` with the `cgroupfs`
//! driver, through libcontainer).
//!
//! v1: the cgroup is made in every controller hierarchy the kubelet uses; cpuset's `cpus` and
//! `mems` are copied from the parent (a cpuset cgroup without them takes no task). v2: the
//! controllers are enabled in each ancestor's `cgroup.subtree_control`; shares become
//! `cpu.weight`. The mount point is a parameter, so tests run on trees they write.

use std::io;
use std::path::{Path, PathBuf};

use super::pod_cgroups::{CgroupName, CgroupResources, shares_to_weight};

/// v1 controller hierarchies a pod cgroup is created in (those mounted; `cpu` and `cpuacct` are
/// often one hierarchy under two names).
const V1_CONTROLLERS: [&str; 9] = ["cpu", "cpuacct", "cpuset", "memory", "pids", "hugetlb", "blkio", "freezer", "devices"];
/// v2 controllers enabled for the kubelet's cgroups.
const V2_CONTROLLERS: [&str; 4] = ["cpu", "cpuset", "memory", "pids"];

/// v1's `memory.limit_in_bytes` of an unlimited cgroup is at least this.
const V1_UNLIMITED_MEMORY: i64 = 1 << 62;

/// What [`Cgroupfs::read_limits`] found; `None` is unlimited or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// CFS quota in µs per period.
    pub cpu_quota: Option<i64>,
    /// Bytes.
    pub memory_limit: Option<i64>,
    /// Bytes in use now.
    pub memory_usage: Option<i64>,
}

/// A cgroupfs mount: v1 (controllers in subdirectories) or v2 (unified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroupfs {
    /// cgroup v1: one hierarchy per controller, each a subdirectory of `mount`.
    V1 {
        /// Where the controller hierarchies are mounted (`/sys/fs/cgroup`).
        mount: PathBuf,
    },
    /// cgroup v2: the unified hierarchy.
    V2 {
        /// The unified hierarchy's mount point (`/sys/fs/cgroup`).
        mount: PathBuf,
    },
}

impl Cgroupfs {
    /// The layout under `mount` (`/sys/fs/cgroup`): v2 when it has `cgroup.controllers`.
    pub fn detect(mount: &Path) -> Self {
        if mount.join("cgroup.controllers").exists() {
            Cgroupfs::V2 { mount: mount.to_path_buf() }
        } else {
            Cgroupfs::V1 { mount: mount.to_path_buf() }
        }
    }

    /// The cgroup's directories (v1: one per mounted controller hierarchy, deduplicated).
    fn dirs(&self, name: &CgroupName) -> Vec<(Option<&'static str>, PathBuf)> {
        match self {
            Cgroupfs::V2 { mount } => vec![(None, mount.join(name.relative_path()))],
            Cgroupfs::V1 { mount } => {
                let mut seen = Vec::new();
                let mut out = Vec::new();
                for c in V1_CONTROLLERS {
                    let hierarchy = mount.join(c);
                    let Ok(real) = hierarchy.canonicalize() else { continue };
                    if seen.contains(&real) {
                        continue;
                    }
                    seen.push(real);
                    out.push((Some(c), hierarchy.join(name.relative_path())));
                }
                out
            }
        }
    }

    /// Whether the cgroup exists (v1: in the memory and cpu hierarchies, as upstream checks).
    pub fn exists(&self, name: &CgroupName) -> bool {
        match self {
            Cgroupfs::V2 { mount } => mount.join(name.relative_path()).is_dir(),
            Cgroupfs::V1 { mount } => {
                ["memory", "cpu"].iter().all(|c| !mount.join(c).exists() || mount.join(c).join(name.relative_path()).is_dir())
            }
        }
    }

    /// Creates the cgroup (and its ancestors) and sets `resources`.
    pub fn ensure(&self, name: &CgroupName, resources: &CgroupResources) -> io::Result<()> {
        match self {
            Cgroupfs::V2 { mount } => {
                // Each ancestor must hand the controllers down.
                let mut dir = mount.clone();
                for part in &name.0 {
                    enable_v2_controllers(&dir);
                    dir.push(part);
                    create_dir(&dir)?;
                }
                write_v2(&dir, resources)
            }
            Cgroupfs::V1 { .. } => {
                for (controller, dir) in self.dirs(name) {
                    if controller == Some("cpuset") {
                        create_cpuset(&dir)?;
                    } else {
                        std::fs::create_dir_all(&dir)?;
                    }
                }
                self.write_v1(name, resources)
            }
        }
    }

    fn write_v1(&self, name: &CgroupName, r: &CgroupResources) -> io::Result<()> {
        let Cgroupfs::V1 { mount } = self else { return Ok(()) };
        let at = |c: &str| mount.join(c).join(name.relative_path());
        if let Some(s) = r.cpu_shares {
            write(&at("cpu"), "cpu.shares", &s.to_string())?;
        }
        // The period first: a quota longer than the old period may be refused.
        if let Some(p) = r.cpu_period {
            write(&at("cpu"), "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(q) = r.cpu_quota {
            write(&at("cpu"), "cpu.cfs_quota_us", &q.to_string())?;
        }
        if let Some(m) = r.memory_limit {
            write(&at("memory"), "memory.limit_in_bytes", &m.to_string())?;
        }
        if let Some(p) = r.pids_limit
            && mount.join("pids").exists()
        {
            write(&at("pids"), "pids.max", &pids_max(p))?;
        }
        Ok(())
    }

    /// The cgroup's CPU quota, memory limit and memory use as the kernel has them (`None`:
    /// unlimited, or not readable).
    pub fn read_limits(&self, name: &CgroupName) -> CgroupLimits {
        let read = |dir: PathBuf, file: &str| std::fs::read_to_string(dir.join(file)).ok().map(|s| s.trim().to_string());
        let number = |s: Option<String>| s.and_then(|s| s.parse::<i64>().ok());
        match self {
            Cgroupfs::V1 { mount } => {
                let at = |c: &str| mount.join(c).join(name.relative_path());
                // An unlimited v1 memory cgroup reads as the largest page-aligned i64.
                let memory_limit = number(read(at("memory"), "memory.limit_in_bytes")).filter(|m| *m < V1_UNLIMITED_MEMORY);
                CgroupLimits {
                    cpu_quota: number(read(at("cpu"), "cpu.cfs_quota_us")).filter(|q| *q > 0),
                    memory_limit,
                    memory_usage: number(read(at("memory"), "memory.usage_in_bytes")),
                }
            }
            Cgroupfs::V2 { mount } => {
                let dir = mount.join(name.relative_path());
                let cpu_max = read(dir.clone(), "cpu.max");
                CgroupLimits {
                    cpu_quota: cpu_max.and_then(|m| m.split_whitespace().next().and_then(|q| q.parse().ok())),
                    memory_limit: number(read(dir.clone(), "memory.max")),
                    memory_usage: number(read(dir, "memory.current")),
                }
            }
        }
    }

    /// Removes the cgroup (its children must be gone); a cgroup that does not exist is no error.
    pub fn remove(&self, name: &CgroupName) -> io::Result<()> {
        let mut first_err = None;
        for (_, dir) in self.dirs(name) {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    first_err.get_or_insert(io::Error::new(e.kind(), format!("removing {}: {e}", dir.display())));
                }
                _ => {}
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The names of the child cgroups of `name` (v1: in the memory hierarchy).
    pub fn children(&self, name: &CgroupName) -> Vec<String> {
        let dir = match self {
            Cgroupfs::V2 { mount } => mount.join(name.relative_path()),
            Cgroupfs::V1 { mount } => mount.join("memory").join(name.relative_path()),
        };
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).filter_map(|e| e.file_name().into_string().ok()).collect()
    }
}

fn create_dir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// A cpuset cgroup with its parent's `cpus` and `mems` (each missing ancestor likewise).
fn create_cpuset(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_cpuset(parent)?;
        create_dir(dir)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            if own.trim().is_empty()
                && let Ok(inherited) = std::fs::read_to_string(parent.join(file))
            {
                write(dir, file, inherited.trim())?;
            }
        }
    }
    Ok(())
}

/// Enables the kubelet's controllers for the children of `dir`, as far as `dir` has them.
fn enable_v2_controllers(dir: &Path) {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<String> =
        V2_CONTROLLERS.iter().filter(|c| available.split_whitespace().any(|a| a == **c)).map(|c| format!("+{c}")).collect();
    if !wanted.is_empty() {
        // Best effort: a controller the parent cannot hand down leaves its limits unset.
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "));
    }
}

fn write_v2(dir: &Path, r: &CgroupResources) -> io::Result<()> {
    if let Some(s) = r.cpu_shares {
        write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let period = r.cpu_period.unwrap_or(super::pod_cgroups::CFS_PERIOD_US);
        let quota = r.cpu_quota.filter(|q| *q > 0).map_or("max".to_string(), |q| q.to_string());
        write(dir, "cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(m) = r.memory_limit {
        write(dir, "memory.max", &if m < 0 { "max".to_string() } else { m.to_string() })?;
    }
    if let Some(p) = r.pids_limit {
        write(dir, "pids.max", &pids_max(p))?;
    }
    Ok(())
}

/// `pids.max` for a limit: a count, or `max` for none (negative).
fn pids_max(limit: i64) -> String {
    if limit < 0 { "max".to_string() } else { limit.to_string() }
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| io::Error::new(e.kind(), format!("writing {value:?} to {}: {e}", dir.join(file).display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cm::pod_cgroups::CgroupName;

    fn read(p: PathBuf) -> String {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn v1_tree_gets_the_cgroup_in_every_hierarchy_with_limits() {
        let t = tempfile::tempdir().unwrap();
        for c in ["cpu,cpuacct", "memory", "pids", "cpuset"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", t.path().join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", t.path().join("cpuacct")).unwrap();
        std::fs::write(t.path().join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(t.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
        let fs = Cgroupfs::detect(t.path());
        assert!(matches!(fs, Cgroupfs::V1 { .. }));
        let name = CgroupName::new("/", &["kubepods", "burstable", "podx"]);
        let r = CgroupResources {
            cpu_shares: Some(102),
            cpu_quota: Some(20_000),
            cpu_period: Some(100_000),
            memory_limit: Some(1 << 26),
            pids_limit: Some(-1),
        };
        assert!(!fs.exists(&name));
        fs.ensure(&name, &r).unwrap();
        assert!(fs.exists(&name));
        let dir = |c: &str| t.path().join(c).join("kubepods/burstable/podx");
        assert_eq!(read(dir("cpu").join("cpu.shares")), "102");
        assert_eq!(read(dir("cpu").join("cpu.cfs_quota_us")), "20000");
        assert_eq!(read(dir("memory").join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(dir("pids").join("pids.max")), "max");
        assert_eq!(read(dir("cpuset").join("cpuset.cpus")), "0-1");
        assert_eq!(read(t.path().join("cpuset/kubepods/cpuset.mems")), "0");
        assert_eq!(fs.children(&CgroupName::new("", &["kubepods", "burstable"])), vec!["podx".to_string()]);

        // Removal: the files a test tree holds stand for the kernel's; clear them first.
        for c in ["cpu,cpuacct", "memory", "pids", "cpuset"] {
            for f in std::fs::read_dir(t.path().join(c).join("kubepods/burstable/podx")).unwrap().flatten() {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        fs.remove(&name).unwrap();
        assert!(!fs.exists(&name));
        fs.remove(&name).unwrap();
    }

    #[test]
    fn v2_tree_enables_controllers_and_writes_weight_max_and_memory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        let fs = Cgroupfs::detect(t.path());
        assert!(matches!(fs, Cgroupfs::V2 { .. }));
        let name = CgroupName::new("", &["kubepods", "podg"]);
        fs.ensure(
            &name,
            &CgroupResources {
                cpu_shares: Some(1024),
                cpu_quota: Some(50_000),
                cpu_period: Some(100_000),
                memory_limit: Some(1 << 20),
                pids_limit: None,
            },
        )
        .unwrap();
        assert_eq!(read(t.path().join("cgroup.subtree_control")), "+cpu +cpuset +memory +pids");
        let dir = t.path().join("kubepods/podg");
        assert_eq!(read(dir.join("cpu.weight")), "39");
        assert_eq!(read(dir.join("cpu.max")), "50000 100000");
        assert_eq!(read(dir.join("memory.max")), "1048576");
        assert!(!dir.join("pids.max").exists());
        let unlimited = CgroupName::new("", &["kubepods", "podu"]);
        fs.ensure(&unlimited, &CgroupResources { cpu_quota: Some(-1), cpu_period: Some(100_000), ..Default::default() }).unwrap();
        assert_eq!(read(t.path().join("kubepods/podu/cpu.max")), "max 100000");
    }
}
