//! A volume mount's `subPath` and `subPathExpr` (upstream `makeMounts`,
//! `ExpandContainerVolumeMounts`, `SafeMakeDir` and `PrepareSafeSubpath`).
//!
//! [`mount_sub_path`] is pure: it expands `subPathExpr` from the container's environment and
//! refuses absolute paths and `..` with upstream's messages. [`SubPaths`] is the boundary to the
//! host: [`HostSubPaths`] creates a missing sub path as a directory with the volume directory's
//! mode (so non-root writers keep the access the volume gives them) and resolves it with the
//! kernel confined to the volume (`openat2` with `RESOLVE_BENEATH`), so a symlink a container
//! left in its volume cannot point another container's mount at the host.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::VolumeMount;
use rustix::fs::{self, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::env::expand_with;

/// The sub path of `m` within its volume: `subPath`, or `subPathExpr` expanded from the
/// container's environment `vars`; `None` for the whole volume.
pub fn mount_sub_path(m: &VolumeMount, vars: &BTreeMap<String, String>) -> Result<Option<String>, String> {
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
                return Err(format!("missing value for {}", missing.into_iter().collect::<Vec<_>>().join(", ")));
            }
            expanded
        }
        None => m.sub_path.clone().unwrap_or_default(),
    };
    if sub.is_empty() {
        return Ok(None);
    }
    if sub.starts_with('/') {
        return Err(format!("error SubPath `{sub}` must not be an absolute path"));
    }
    if sub.split('/').any(|part| part == "..") {
        return Err(format!("unable to provision SubPath `{sub}`: must not contain '..'"));
    }
    Ok(Some(sub))
}

/// Makes a sub path of a prepared volume ready to mount and says where it is on the host.
pub trait SubPaths: Send + Sync {
    /// The host path to mount for `sub` (already checked by [`mount_sub_path`]) of the volume
    /// at `volume`.
    fn prepare(&self, volume: &Path, sub: &str) -> Result<PathBuf, String>;
}

/// Sub paths on this host's file system (see the module docs).
pub struct HostSubPaths;

impl SubPaths for HostSubPaths {
    fn prepare(&self, volume: &Path, sub: &str) -> Result<PathBuf, String> {
        let fail = |what: &str, e: Errno| format!("failed to prepare subPath `{sub}`: {what}: {e}");
        let root = fs::open(volume, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| fail("opening the volume", e))?;
        let fd = match beneath(&root, sub) {
            Err(Errno::NOENT) => {
                let mode = fs::fstat(&root).map_err(|e| fail("reading the volume's mode", e))?.st_mode & 0o7777;
                make_dirs(&root, sub, Mode::from_raw_mode(mode)).map_err(|e| fail("creating it", e))?;
                beneath(&root, sub)
            }
            other => other,
        };
        let fd = fd.map_err(|e| match e {
            Errno::XDEV => format!("subPath `{sub}` resolves outside its volume"),
            e => fail("opening it", e),
        })?;
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| format!("failed to prepare subPath `{sub}`: resolving it: {e}"))
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
    let open_dir = |path: &str| fs::openat2(root, path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS);
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
        let next = fs::openat2(dir.as_fd(), *part, OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS)?;
        fs::fchmod(&next, mode)?;
        dir = next;
    }
    Ok(())
}

/// Sub paths joined to the volume path without touching the file system: for building configs
/// where there is no host to prepare (unit tests, the manifest fuzz target).
pub struct JoinedSubPaths;

impl SubPaths for JoinedSubPaths {
    fn prepare(&self, volume: &Path, sub: &str) -> Result<PathBuf, String> {
        Ok(volume.join(sub))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mount(sub_path: Option<&str>, expr: Option<&str>) -> VolumeMount {
        VolumeMount { name: "v".into(), mount_path: "/m".into(), sub_path: sub_path.map(Into::into), sub_path_expr: expr.map(Into::into), ..Default::default() }
    }

    #[test]
    fn sub_path_expr_is_expanded_and_checked_as_upstream() {
        let vars = BTreeMap::from([("POD".to_string(), "web-0".to_string()), ("UP".to_string(), "..".to_string()), ("ABS".to_string(), "/tmp".to_string()), ("EMPTY".to_string(), String::new())]);
        assert_eq!(mount_sub_path(&mount(None, Some("logs/$(POD)")), &vars), Ok(Some("logs/web-0".into())));
        assert_eq!(mount_sub_path(&mount(Some("a/b"), None), &vars), Ok(Some("a/b".into())));
        assert_eq!(mount_sub_path(&mount(Some(""), None), &vars), Ok(None));
        assert_eq!(mount_sub_path(&mount(None, None), &vars), Ok(None));
        assert_eq!(mount_sub_path(&mount(None, Some("$$(POD)")), &vars), Ok(Some("$(POD)".into())));
        assert_eq!(mount_sub_path(&mount(None, Some("$(UP)")), &vars), Err("unable to provision SubPath `..`: must not contain '..'".into()));
        assert_eq!(mount_sub_path(&mount(None, Some("$(ABS)")), &vars), Err("error SubPath `/tmp` must not be an absolute path".into()));
        assert_eq!(mount_sub_path(&mount(Some("/etc"), None), &vars), Err("error SubPath `/etc` must not be an absolute path".into()));
        assert_eq!(mount_sub_path(&mount(None, Some("$(NOPE)/$(EMPTY)/$(POD)")), &vars), Err("missing value for EMPTY, NOPE".into()));
        // `..` only as a whole component: `a..b` is a name.
        assert_eq!(mount_sub_path(&mount(Some("a..b/c"), None), &vars), Ok(Some("a..b/c".into())));
    }

    #[test]
    fn host_sub_paths_are_created_with_the_volume_mode_and_stay_in_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("vol");
        std::fs::create_dir(&volume).unwrap();
        std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o777)).unwrap();
        let volume = volume.canonicalize().unwrap();

        let got = HostSubPaths.prepare(&volume, "a/b").unwrap();
        assert_eq!(got, volume.join("a/b"));
        for p in [volume.join("a"), volume.join("a/b")] {
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o777, "{}", p.display());
        }
        // Directories that exist keep their mode (a hostPath volume's are the host's); a symlink
        // inside the volume in the existing prefix is followed.
        std::fs::create_dir(volume.join("kept")).unwrap();
        std::fs::set_permissions(volume.join("kept"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("kept", volume.join("to-kept")).unwrap();
        assert_eq!(HostSubPaths.prepare(&volume, "to-kept/new").unwrap(), volume.join("kept/new"));
        assert_eq!(std::fs::metadata(volume.join("kept")).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(std::fs::metadata(volume.join("kept/new")).unwrap().permissions().mode() & 0o7777, 0o777);
        // An existing file is mounted as it is.
        std::fs::write(volume.join("f"), "x").unwrap();
        assert_eq!(HostSubPaths.prepare(&volume, "f").unwrap(), volume.join("f"));
        // A symlink within the volume resolves to its target; one out of it is refused.
        std::os::unix::fs::symlink("a/b", volume.join("inside")).unwrap();
        assert_eq!(HostSubPaths.prepare(&volume, "inside").unwrap(), volume.join("a/b"));
        std::os::unix::fs::symlink("/etc", volume.join("escape")).unwrap();
        std::os::unix::fs::symlink("../..", volume.join("up")).unwrap();
        for bad in ["escape", "up", "escape/x"] {
            let e = HostSubPaths.prepare(&volume, bad).unwrap_err();
            assert!(e.contains("outside its volume"), "{bad}: {e}");
        }
        assert!(!Path::new("/etc/x").exists());
    }
}
