//! A volume mount's `subPath` and `subPathExpr` (upstream `makeMounts`,
//! `ExpandContainerVolumeMounts`, `SafeMakeDir` and `PrepareSafeSubpath`).
//!
//! [`mount_sub_path`] is pure: it expands `subPathExpr` from the container's environment and
//! refuses absolute paths and `..` with upstream's messages. [`SubPaths`] is the boundary to the
//! host: [`HostSubPaths`] creates a missing sub path as a directory with the volume directory's
//! mode (so non-root writers keep the access the volume gives them) and resolves it with the
//! kernel confined to the volume (`openat2` with `RESOLVE_BENEATH`), so a symlink a container
//! left in its volume cannot point another container's mount at the host.
//!
//! The object so opened is then bind-mounted, through its file descriptor, at
//! `pods/<uid>/volume-subpaths/<volume>/<container>/<mount index>` (upstream's layout), and the
//! runtime gets that path: a container that swaps a directory of the sub path for a symlink
//! between this check and the runtime's mount (CVE-2017-1002101's race) changes nothing, as
//! the bind mount pins what was checked. The volume manager unmounts these with the pod's
//! volumes ([`subpath_mounts`]).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::VolumeMount;
use rustix::fs::{self, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::env::expand_with;

/// Why a volume mount's sub path cannot be used: upstream's messages for a bad `subPath` or
/// `subPathExpr`, and what failed preparing it on the host (naming the sub path).
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    /// `subPathExpr` names variables the container's environment lacks or sets empty (the names, sorted).
    #[error("missing value for {}", .0.join(", "))]
    MissingValues(Vec<String>),
    /// The sub path is absolute.
    #[error("error SubPath `{0}` must not be an absolute path")]
    Absolute(String),
    /// The sub path has a `..` component.
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    ParentDirectory(String),
    /// The sub path resolves (through a symlink or `..`) outside its volume.
    #[error("subPath `{0}` resolves outside its volume")]
    OutsideVolume(String),
    /// A step of opening or creating the sub path inside its volume failed.
    #[error("failed to prepare subPath `{sub}`: {step}: {source}")]
    Prepare {
        /// The sub path.
        sub: String,
        /// What was being done (`opening the volume`, `creating it`, ...).
        step: &'static str,
        /// The OS error.
        #[source]
        source: Errno,
    },
    /// The opened sub path could not be bind-mounted under the pod's directory.
    #[error("failed to prepare subPath `{sub}`: mounting it at {}: {source}", target.display())]
    Mount {
        /// The sub path.
        sub: String,
        /// Where it was to be mounted (`pods/<uid>/volume-subpaths/...`).
        target: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The sub path of `m` within its volume: `subPath`, or `subPathExpr` expanded from the
/// container's environment `vars`; `None` for the whole volume.
pub fn mount_sub_path(m: &VolumeMount, vars: &BTreeMap<String, String>) -> Result<Option<String>, SubPathError> {
    let sub = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
        Some(expr) => {
            let mut missing = std::collections::BTreeSet::new();
            let expanded = expand_with(expr, |name| match vars.get(name).filter(|v| !v.is_empty()) {
                Some(v) => Some(v.as_str()),
                None => {
                    missing.insert(name.to_string());
                    Some("")
                }
            });
            if !missing.is_empty() {
                return Err(SubPathError::MissingValues(missing.into_iter().collect()));
            }
            expanded
        }
        None => m.sub_path.clone().unwrap_or_default(),
    };
    if sub.is_empty() {
        return Ok(None);
    }
    if sub.starts_with('/') {
        return Err(SubPathError::Absolute(sub));
    }
    if sub.split('/').any(|part| part == "..") {
        return Err(SubPathError::ParentDirectory(sub));
    }
    Ok(Some(sub))
}

/// Makes a sub path of a prepared volume ready to mount and says where it is on the host.
pub trait SubPaths: Send + Sync {
    /// The host path to mount for `sub` (already checked by [`mount_sub_path`]) of volume
    /// `name` at `volume`, for mount `index` of container `container`.
    fn prepare(&self, name: &str, volume: &Path, sub: &str, container: &str, index: usize) -> Result<PathBuf, SubPathError>;
}

/// Where the sub path bind mounts of a pod live, under its directory.
pub const SUBPATHS_DIR: &str = "volume-subpaths";

/// Every `volume-subpaths/<volume>/<container>/<index>` entry of pod directory `pod_dir`.
pub fn subpath_mounts(pod_dir: &Path) -> Vec<PathBuf> {
    let list = |d: &Path| -> Vec<PathBuf> { std::fs::read_dir(d).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default() };
    let dirs =
        |d: &Path| -> Vec<PathBuf> { list(d).into_iter().filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())).collect() };
    dirs(&pod_dir.join(SUBPATHS_DIR)).iter().flat_map(|v| dirs(v)).flat_map(|c| list(&c)).collect()
}

/// Sub paths on this host's file system, bind-mounted under pod directory `pod_dir` (see the
/// module docs).
pub struct HostSubPaths {
    /// The pod's directory (`<root>/pods/<uid>`); the bind mounts go under its `volume-subpaths/`.
    pub pod_dir: PathBuf,
}

impl SubPaths for HostSubPaths {
    fn prepare(&self, name: &str, volume: &Path, sub: &str, container: &str, index: usize) -> Result<PathBuf, SubPathError> {
        let fd = self.open(volume, sub)?;
        let target = self.pod_dir.join(SUBPATHS_DIR).join(name).join(container).join(index.to_string());
        match bind_fd(&fd, &target) {
            Ok(()) => Ok(target),
            Err(source) => Err(SubPathError::Mount { sub: sub.to_string(), target, source }),
        }
    }
}

/// Mounts the object `fd` opened at `target` (a directory or a file, made to match), replacing
/// an earlier mount there (a restarted container's: its source may have changed since).
fn bind_fd(fd: &OwnedFd, target: &Path) -> std::io::Result<()> {
    let is_dir = fs::FileType::from_raw_mode(fs::fstat(fd)?.st_mode) == fs::FileType::Directory;
    unmount_all(target, rustix::mount::UnmountFlags::DETACH)?;
    std::fs::create_dir_all(target.parent().unwrap_or(target))?;
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() == is_dir && !m.file_type().is_symlink() => {}
        Ok(m) => {
            if m.is_dir() {
                std::fs::remove_dir(target)?
            } else {
                std::fs::remove_file(target)?
            }
            make_target(target, is_dir)?;
        }
        Err(_) => make_target(target, is_dir)?,
    }
    Ok(rustix::mount::mount_bind(format!("/proc/self/fd/{}", fd.as_raw_fd()), target)?)
}

/// Unmounts every mount stacked at `path` (a bind mount from the same file system shares its
/// parent's device, so only the kernel can say whether one is there: `EINVAL` when none is).
pub fn unmount_all(path: &Path, flags: rustix::mount::UnmountFlags) -> std::io::Result<()> {
    for _ in 0..64 {
        match rustix::mount::unmount(path, flags) {
            Ok(()) => {}
            Err(Errno::INVAL | Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::other(format!("{}: still mounted after 64 unmounts", path.display())))
}

fn make_target(target: &Path, is_dir: bool) -> std::io::Result<()> {
    if is_dir { std::fs::create_dir(target) } else { std::fs::File::create_new(target).map(drop) }
}

impl HostSubPaths {
    /// Opens (creating it as a directory if missing) sub path `sub` confined to `volume`.
    fn open(&self, volume: &Path, sub: &str) -> Result<OwnedFd, SubPathError> {
        let fail = |step: &'static str, source: Errno| SubPathError::Prepare { sub: sub.to_string(), step, source };
        let root = fs::open(volume, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail("opening the volume", e))?;
        let fd = match beneath(&root, sub) {
            Err(Errno::NOENT) => {
                let mode = fs::fstat(&root).map_err(|e| fail("reading the volume's mode", e))?.st_mode & 0o7777;
                make_dirs(&root, sub, Mode::from_raw_mode(mode)).map_err(|e| fail("creating it", e))?;
                beneath(&root, sub)
            }
            other => other,
        };
        fd.map_err(|e| match e {
            Errno::XDEV => SubPathError::OutsideVolume(sub.to_string()),
            e => fail("opening it", e),
        })
    }
}

/// Opens `path` under `root`, letting the kernel refuse any resolution (`..`, absolute or
/// magic symlinks) that would leave `root`.
fn beneath(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    fs::openat2(root, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS)
}

/// Creates the missing directories of `sub` under `root` with `mode` (set again after creation:
/// the umask would narrow it), as upstream's `SafeMakeDir`: the existing prefix is resolved
/// confined to `root` (a symlink in it may point elsewhere inside the volume) and left as it is;
/// only the directories made here get the mode, each opened without following a link.
fn make_dirs(root: &OwnedFd, sub: &str, mode: Mode) -> Result<(), Errno> {
    let parts: Vec<&str> = sub.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let open_dir = |path: &str| {
        fs::openat2(root, path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS)
    };
    // The longest prefix that exists.
    let mut existing = 0;
    let mut dir = open_dir(".")?;
    for i in 1..=parts.len() {
        match open_dir(&parts[..i].join("/")) {
            Ok(d) => (existing, dir) = (i, d),
            Err(Errno::NOENT) => break,
            Err(e) => return Err(e),
        }
    }
    for part in &parts[existing..] {
        match fs::mkdirat(&dir, *part, mode) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        let next = fs::openat2(
            dir.as_fd(),
            *part,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )?;
        fs::fchmod(&next, mode)?;
        dir = next;
    }
    Ok(())
}

/// Sub paths joined to the volume path without touching the file system: for building configs
/// where there is no host to prepare (unit tests, the manifest fuzz target).
pub struct JoinedSubPaths;

impl SubPaths for JoinedSubPaths {
    fn prepare(&self, _name: &str, volume: &Path, sub: &str, _container: &str, _index: usize) -> Result<PathBuf, SubPathError> {
        Ok(volume.join(sub))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mount(sub_path: Option<&str>, expr: Option<&str>) -> VolumeMount {
        VolumeMount {
            name: "v".into(),
            mount_path: "/m".into(),
            sub_path: sub_path.map(Into::into),
            sub_path_expr: expr.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn sub_path_expr_is_expanded_and_checked_as_upstream() {
        let vars = BTreeMap::from([
            ("POD".to_string(), "web-0".to_string()),
            ("UP".to_string(), "..".to_string()),
            ("ABS".to_string(), "/tmp".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]);
        let sub_path = |m: &VolumeMount| mount_sub_path(m, &vars).map_err(|e| e.to_string());
        assert_eq!(sub_path(&mount(None, Some("logs/$(POD)"))), Ok(Some("logs/web-0".into())));
        assert_eq!(sub_path(&mount(Some("a/b"), None)), Ok(Some("a/b".into())));
        assert_eq!(sub_path(&mount(Some(""), None)), Ok(None));
        assert_eq!(sub_path(&mount(None, None)), Ok(None));
        assert_eq!(sub_path(&mount(None, Some("$$(POD)"))), Ok(Some("$(POD)".into())));
        assert_eq!(sub_path(&mount(None, Some("$(UP)"))), Err("unable to provision SubPath `..`: must not contain '..'".into()));
        assert_eq!(sub_path(&mount(None, Some("$(ABS)"))), Err("error SubPath `/tmp` must not be an absolute path".into()));
        assert_eq!(sub_path(&mount(Some("/etc"), None)), Err("error SubPath `/etc` must not be an absolute path".into()));
        assert_eq!(sub_path(&mount(None, Some("$(NOPE)/$(EMPTY)/$(POD)"))), Err("missing value for EMPTY, NOPE".into()));
        // `..` only as a whole component: `a..b` is a name.
        assert_eq!(sub_path(&mount(Some("a..b/c"), None)), Ok(Some("a..b/c".into())));
        // The variants carry what is wrong.
        assert!(matches!(mount_sub_path(&mount(Some("/etc"), None), &vars), Err(SubPathError::Absolute(p)) if p == "/etc"));
        assert!(matches!(
            mount_sub_path(&mount(None, Some("$(NOPE)/$(EMPTY)")), &vars),
            Err(SubPathError::MissingValues(names)) if names == ["EMPTY", "NOPE"]
        ));
    }

    /// Where `HostSubPaths::open` resolved `sub` to.
    fn resolved(volume: &Path, sub: &str) -> Result<PathBuf, SubPathError> {
        let fd = HostSubPaths { pod_dir: PathBuf::new() }.open(volume, sub)?;
        Ok(std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap())
    }

    #[test]
    fn host_sub_paths_are_created_with_the_volume_mode_and_stay_in_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("vol");
        std::fs::create_dir(&volume).unwrap();
        std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o777)).unwrap();
        let volume = volume.canonicalize().unwrap();

        assert_eq!(resolved(&volume, "a/b").unwrap(), volume.join("a/b"));
        for p in [volume.join("a"), volume.join("a/b")] {
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o777, "{}", p.display());
        }
        // Directories that exist keep their mode (a hostPath volume's are the host's); a symlink
        // inside the volume in the existing prefix is followed.
        std::fs::create_dir(volume.join("kept")).unwrap();
        std::fs::set_permissions(volume.join("kept"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("kept", volume.join("to-kept")).unwrap();
        assert_eq!(resolved(&volume, "to-kept/new").unwrap(), volume.join("kept/new"));
        assert_eq!(std::fs::metadata(volume.join("kept")).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(std::fs::metadata(volume.join("kept/new")).unwrap().permissions().mode() & 0o7777, 0o777);
        // An existing file is mounted as it is.
        std::fs::write(volume.join("f"), "x").unwrap();
        assert_eq!(resolved(&volume, "f").unwrap(), volume.join("f"));
        // A symlink within the volume resolves to its target; one out of it is refused.
        std::os::unix::fs::symlink("a/b", volume.join("inside")).unwrap();
        assert_eq!(resolved(&volume, "inside").unwrap(), volume.join("a/b"));
        std::os::unix::fs::symlink("/etc", volume.join("escape")).unwrap();
        std::os::unix::fs::symlink("../..", volume.join("up")).unwrap();
        for bad in ["escape", "up", "escape/x"] {
            let e = resolved(&volume, bad).unwrap_err();
            assert!(matches!(&e, SubPathError::OutsideVolume(sub) if sub == bad), "{bad}: {e}");
            assert!(e.to_string().contains("outside its volume"), "{bad}: {e}");
        }
        assert!(!Path::new("/etc/x").exists());
    }

    /// Needs root (mounts), as the test command runs.
    #[test]
    fn sub_paths_are_pinned_by_a_bind_mount_under_the_pod_directory() {
        let mounted = |p: &Path| {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
                .count()
        };
        let dir = tempfile::tempdir().unwrap();
        let (volume, pod_dir) = (dir.path().join("vol"), dir.path().join("pod"));
        std::fs::create_dir_all(volume.join("data")).unwrap();
        std::fs::write(volume.join("data/secret-free"), "volume data").unwrap();
        std::fs::write(volume.join("file"), "one file").unwrap();
        let paths = HostSubPaths { pod_dir: pod_dir.clone() };

        let got = paths.prepare("vol", &volume, "data", "main", 2).unwrap();
        assert_eq!(got, pod_dir.join("volume-subpaths/vol/main/2"));
        assert_eq!(mounted(&got), 1);
        assert_eq!(std::fs::read_to_string(got.join("secret-free")).unwrap(), "volume data");
        let file = paths.prepare("vol", &volume, "file", "main", 3).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one file");

        // The container swaps the directory for a symlink to the host after the check: the mount
        // still shows what was checked.
        std::fs::rename(volume.join("data"), volume.join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", volume.join("data")).unwrap();
        assert!(got.join("secret-free").exists() && !got.join("passwd").exists());

        // A restart prepares again: the old mount is replaced, not stacked; the new check refuses.
        assert!(paths.prepare("vol", &volume, "data", "main", 2).unwrap_err().to_string().contains("outside its volume"));
        std::fs::remove_file(volume.join("data")).unwrap();
        std::fs::rename(volume.join("moved"), volume.join("data")).unwrap();
        paths.prepare("vol", &volume, "data", "main", 2).unwrap();
        assert_eq!(mounted(&got), 1, "one mount at the target");

        let mut listed = subpath_mounts(&pod_dir);
        listed.sort();
        assert_eq!(listed, vec![got.clone(), file.clone()]);
        for m in subpath_mounts(&pod_dir) {
            unmount_all(&m, rustix::mount::UnmountFlags::empty()).unwrap();
        }
        assert_eq!((mounted(&got), mounted(&file)), (0, 0));
    }
}
