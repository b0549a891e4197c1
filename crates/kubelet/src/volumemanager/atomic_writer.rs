//! Writes a volume's files so a container never sees a half-updated set (upstream
//! `pkg/volume/util/atomic_writer.go`, same on-disk layout):
//!
//! ```text
//! <volume>/..2026_11_22_15_04_05.123456789/<path>   the files of one version (dir 0755)
//! <volume>/..data -> ..2026_11_22_15_04_05.123456789 swapped with one rename(2)
//! <volume>/<top-level name> -> ..data/<top-level name>
//! ```
//!
//! A write that would change nothing (same paths and bytes) leaves the volume alone. Modes are
//! not compared, as upstream's `shouldWriteFile`: the fsGroup walk adds group bits after a
//! write, and comparing them would rewrite such a volume at every sync.
//! Owns only the files under its target directory; mounting is the caller's business.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The symlink that points at the current version's directory.
pub const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";
const MAX_PATH_LEN: usize = 4096;
const MAX_SEGMENT_LEN: usize = 255;

/// One file of a volume: its bytes, permission bits and, when set, its owner (upstream's
/// `FsUser`; the group is left to the fsGroup walk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    /// The file's content.
    pub data: Vec<u8>,
    /// Permission bits (e.g. `0o644`, from `defaultMode` or an item's `mode`).
    pub mode: u32,
    /// The owning user ID, or `None` to leave the file owned by the kubelet's user.
    pub uid: Option<u32>,
}

/// Relative path (`key`, `dir/key`) → file.
pub type Payload = BTreeMap<String, FileProjection>;

/// Why a volume's files could not be written; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// A payload path that [`validate_path`] rejects.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The relative path as given in the payload.
        path: String,
        /// What is wrong with it, e.g. `must be relative`.
        reason: &'static str,
    },
    /// Reading, writing, linking or removing a file or directory of the volume failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or symlink.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WriterError + '_ {
    move |source| WriterError::Io { path: path.to_path_buf(), source }
}

/// Checks a payload path as upstream's `validatePath`: relative, no `..` element, no element
/// starting with `..` at the top (those names are the writer's own), bounded lengths.
pub fn validate_path(path: &str) -> Result<(), WriterError> {
    let bad = |reason| Err(WriterError::InvalidPath { path: path.into(), reason });
    if path.is_empty() {
        return bad("must not be empty");
    }
    if path.len() > MAX_PATH_LEN {
        return bad("longer than 4096 bytes");
    }
    if path.starts_with('/') {
        return bad("must be relative");
    }
    if path.starts_with("..") {
        return bad("must not start with '..'");
    }
    for seg in path.split('/') {
        if seg == ".." {
            return bad("must not contain '..'");
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return bad("has an element longer than 255 bytes");
        }
    }
    Ok(())
}

/// The name of a new version directory: `..YYYY_MM_DD_HH_MM_SS.<nanoseconds>` in UTC.
pub fn version_dir_name(now: SystemTime) -> String {
    let ts = k8s_openapi::jiff::Timestamp::try_from(now).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    format!("..{}.{:09}", ts.strftime("%Y_%m_%d_%H_%M_%S"), ts.subsec_nanosecond())
}

/// Writes payloads into one volume directory.
#[derive(Clone, Debug)]
pub struct AtomicWriter {
    target: PathBuf,
}

impl AtomicWriter {
    /// A writer for the volume directory `target` (created on the first write if missing).
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self { target: target.into() }
    }

    /// Makes the volume show exactly `payload`; returns whether anything changed.
    pub fn write(&self, payload: &Payload, now: SystemTime) -> Result<bool, WriterError> {
        for path in payload.keys() {
            validate_path(path)?;
        }
        std::fs::create_dir_all(&self.target).map_err(io_err(&self.target))?;
        let data_link = self.target.join(DATA_DIR);
        let old_version = std::fs::read_link(&data_link).ok().map(|p| self.target.join(p)).filter(|p| p.is_dir());
        let old_paths = match &old_version {
            Some(dir) => relative_paths(dir)?,
            None => BTreeSet::new(),
        };
        let wanted: BTreeSet<String> = payload.keys().flat_map(|p| with_ancestors(p)).collect();
        let to_remove: BTreeSet<&String> = old_paths.iter().filter(|p| !wanted.contains(*p)).collect();
        if let Some(dir) = &old_version
            && to_remove.is_empty()
            && same_files(dir, payload)
        {
            return Ok(false);
        }

        let version = self.new_version_dir(now)?;
        for (path, file) in payload {
            let dest = version.join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            // Created with its mode (less the umask) rather than 0666 first: a key or token is
            // never readable by others, even for a moment.
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(file.mode & 0o777).open(&dest).map_err(io_err(&dest))?;
                f.write_all(&file.data).map_err(io_err(&dest))?;
            }
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(file.mode & 0o7777)).map_err(io_err(&dest))?;
            if let Some(uid) = file.uid {
                std::os::unix::fs::lchown(&dest, Some(uid), None).map_err(io_err(&dest))?;
            }
        }

        // Swap `..data` in one rename.
        let tmp_link = self.target.join(DATA_DIR_TMP);
        let _ = std::fs::remove_file(&tmp_link);
        let version_name = version.file_name().map(PathBuf::from).unwrap_or_default();
        std::os::unix::fs::symlink(&version_name, &tmp_link).map_err(io_err(&tmp_link))?;
        std::fs::rename(&tmp_link, &data_link).map_err(io_err(&data_link))?;

        // The user-visible names, one symlink per top-level element.
        let top: BTreeSet<&str> = payload.keys().map(|p| p.split('/').next().unwrap_or(p)).collect();
        for name in &top {
            let link = self.target.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new(DATA_DIR).join(name), &link).map_err(io_err(&link))?;
            }
        }
        for gone in to_remove.iter().filter(|p| !p.contains('/')) {
            let link = self.target.join(gone);
            match std::fs::remove_file(&link) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(WriterError::Io { path: link, source: e }),
                _ => {}
            }
        }
        if let Some(old) = old_version
            && old != version
        {
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        Ok(true)
    }

    fn new_version_dir(&self, now: SystemTime) -> Result<PathBuf, WriterError> {
        let mut name = version_dir_name(now);
        for attempt in 0..100u32 {
            let dir = self.target.join(&name);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(io_err(&dir))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => name = format!("{}{attempt}", version_dir_name(now)),
                Err(e) => return Err(WriterError::Io { path: dir, source: e }),
            }
        }
        Err(WriterError::Io { path: self.target.join(name), source: io::Error::from(io::ErrorKind::AlreadyExists) })
    }
}

/// `a/b/c` → `a`, `a/b`, `a/b/c`.
fn with_ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in path.char_indices() {
        if c == '/' {
            out.push(path[..i].to_string());
        }
    }
    out.push(path.to_string());
    out
}

/// Every file and directory under `dir`, relative, with `/` separators.
fn relative_paths(dir: &Path) -> Result<BTreeSet<String>, WriterError> {
    let mut out = BTreeSet::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&abs).map_err(io_err(&abs))? {
            let entry = entry.map_err(io_err(&abs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), rel_child.clone()));
            }
            out.insert(rel_child);
        }
    }
    Ok(out)
}

/// Whether every payload file exists in `dir` with the same bytes.
fn same_files(dir: &Path, payload: &Payload) -> bool {
    payload.iter().all(|(path, file)| {
        let p = dir.join(path);
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) && std::fs::read(&p).is_ok_and(|d| d == file.data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection { data: data.as_bytes().to_vec(), mode, uid: None }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn version_dir_names_follow_upstream() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5_000);
        assert_eq!(version_dir_name(t), "..2023_11_14_22_13_20.000005000");
    }

    #[test]
    fn writes_layout_and_swaps_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(tmp.path().join("vol"));
        let payload = Payload::from([("token".into(), file("abc", 0o644)), ("sub/ca.crt".into(), file("CA", 0o600))]);
        assert!(w.write(&payload, at(0)).unwrap());
        let vol = tmp.path().join("vol");
        let first = std::fs::read_link(vol.join(DATA_DIR)).unwrap();
        assert!(first.to_string_lossy().starts_with("..2023_11_14_22_13_20."), "{first:?}");
        assert_eq!(std::fs::read_link(vol.join("token")).unwrap(), Path::new("..data/token"));
        assert_eq!(std::fs::read_link(vol.join("sub")).unwrap(), Path::new("..data/sub"));
        assert_eq!(std::fs::read_to_string(vol.join("sub/ca.crt")).unwrap(), "CA");
        let mode = |p: &str| std::fs::metadata(vol.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("token"), mode("sub/ca.crt")), (0o644, 0o600));
        assert_eq!(std::fs::metadata(vol.join(&first)).unwrap().permissions().mode() & 0o777, 0o755);

        // Same content: nothing happens.
        assert!(!w.write(&payload, at(1)).unwrap());
        assert_eq!(std::fs::read_link(vol.join(DATA_DIR)).unwrap(), first);

        // A mode changed on disk (the fsGroup walk adds group read) does not rewrite.
        std::fs::set_permissions(vol.join("sub/ca.crt"), std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!w.write(&payload, at(2)).unwrap());
        assert_eq!(mode("sub/ca.crt"), 0o640);

        // New content, a removed key: new version, old one and stale link gone.
        let next = Payload::from([("token".into(), file("def", 0o644))]);
        assert!(w.write(&next, at(3)).unwrap());
        let second = std::fs::read_link(vol.join(DATA_DIR)).unwrap();
        assert_ne!(second, first);
        assert!(!vol.join(&first).exists());
        assert_eq!(std::fs::read_to_string(vol.join("token")).unwrap(), "def");
        assert!(std::fs::symlink_metadata(vol.join("sub")).is_err(), "stale user-visible link removed");
        let entries: BTreeSet<String> =
            std::fs::read_dir(&vol).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(entries.len(), 3, "{entries:?}");

        // Empty payload (optional object absent): only `..data` and an empty version remain.
        assert!(w.write(&Payload::new(), at(4)).unwrap());
        assert!(std::fs::symlink_metadata(vol.join("token")).is_err());
    }

    #[test]
    fn rejects_bad_paths_naming_them() {
        for (p, why) in
            [("", "empty"), ("/etc/passwd", "relative"), ("a/../../x", "'..'"), ("..data", "start with"), (&"x".repeat(256), "255")]
        {
            let err = validate_path(p).unwrap_err().to_string();
            assert!(err.contains(why) && err.starts_with("invalid path"), "{p}: {err}");
        }
        validate_path("a/b..c/d").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(tmp.path());
        let err = w.write(&Payload::from([("../escape".into(), file("x", 0o644))]), at(0)).unwrap_err();
        assert!(err.to_string().contains("\"../escape\""), "{err}");
        assert!(!tmp.path().join(DATA_DIR).exists(), "nothing written for a bad payload");
    }
}
