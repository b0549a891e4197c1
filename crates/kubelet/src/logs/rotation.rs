//! The file side of container log rotation (upstream `containerLogManager.rotateLog`), blocking
//! I/O on one container's log directory.
//!
//! A container's log `0.log` is rotated by renaming it to `0.log.<YYYYMMDD-hhmmss>` and asking
//! the runtime to reopen it. Before that, leftovers of an interrupted rotation are removed
//! (`*.tmp`, an uncompressed file whose `.gz` exists), the oldest rotated files beyond
//! `containerLogMaxFiles − 2` are removed (the current file and the one about to be rotated
//! make up the rest), and every rotated file is gzip-compressed except the newest.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const COMPRESS_SUFFIX: &str = ".gz";
const TMP_SUFFIX: &str = ".tmp";

/// The strftime form of upstream's rotated-log timestamp (`20060102-150405`).
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d-%H%M%S";

/// A step of rotation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The log's directory could not be read to find its rotated files.
    #[error("failed to list the rotated logs of {log:?}: {source}")]
    List {
        /// The container's current log file, e.g. `.../0.log`.
        log: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A rotated file could not be deleted.
    #[error("failed to remove {what} log {path:?}: {source}")]
    Remove {
        /// Why it was being removed: `unused` (left by an interrupted rotation), `old` (beyond
        /// `containerLogMaxFiles`), `compressed` (its `.gz` was written) or `container` (the
        /// container's logs were cleaned up).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A rotated file could not be gzip-compressed into `<path>.gz`.
    #[error("failed to compress log {path:?}: {source}")]
    Compress {
        /// The uncompressed rotated file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The current log could not be renamed to its rotated name.
    #[error("failed to rotate log {from:?} to {to:?}: {source}")]
    Rename {
        /// The container's current log file.
        from: PathBuf,
        /// The rotated name, `<log>.<YYYYMMDD-hhmmss>`.
        to: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// `log.*`: the rotated files of `log` (compressed, uncompressed and temporary), sorted by name
/// (oldest first: the timestamp sorts).
pub fn rotated_files(log: &Path) -> Result<Vec<PathBuf>, RotationError> {
    let list_err = |source| RotationError::List { log: log.into(), source };
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else { return Ok(Vec::new()) };
    let prefix = format!("{name}.");
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a rotated file is worth keeping (upstream's `isInUse`): not a temporary file, and
/// not an uncompressed file whose compressed copy exists.
fn in_use(path: &Path, all: &[PathBuf]) -> bool {
    let name = path.as_os_str().to_string_lossy();
    if name.ends_with(TMP_SUFFIX) {
        return false;
    }
    if name.ends_with(COMPRESS_SUFFIX) {
        return true;
    }
    let compressed = format!("{name}{COMPRESS_SUFFIX}");
    !all.iter().any(|other| other.as_os_str().to_string_lossy() == compressed)
}

/// Splits rotated files into those kept and those left by an interrupted rotation.
pub fn partition_unused(files: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let all = files.clone();
    files.into_iter().partition(|f| in_use(f, &all))
}

/// How many of the sorted rotated `files` (oldest first) to remove so at most
/// `max_files − 2` stay.
pub fn excess(files: &[PathBuf], max_files: usize) -> usize {
    files.len().saturating_sub(max_files.saturating_sub(2))
}

fn remove(what: &'static str, path: &Path) -> Result<(), RotationError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(RotationError::Remove { what, path: path.into(), source: e }),
        _ => Ok(()),
    }
}

/// Compresses `path` to `path.gz` (through `path.tmp`, with the file's mode), then removes it.
pub fn compress(path: &Path) -> Result<(), RotationError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let err = |source| RotationError::Compress { path: path.into(), source };
    let mode = fs::metadata(path).map_err(err)?.permissions().mode();
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut input = fs::File::open(path)?;
        let out = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        io::copy(&mut input, &mut gz)?;
        gz.finish()?.sync_all()?;
        let mut done = path.as_os_str().to_owned();
        done.push(COMPRESS_SUFFIX);
        fs::rename(&tmp, PathBuf::from(done))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    remove("compressed", path)
}

/// Everything before the rename: cleans up, removes excess files, compresses the rotated ones.
pub fn prepare(log: &Path, max_files: usize) -> Result<(), RotationError> {
    let (kept, unused) = partition_unused(rotated_files(log)?);
    for f in &unused {
        remove("unused", f)?;
    }
    let n = excess(&kept, max_files);
    for f in &kept[..n] {
        remove("old", f)?;
    }
    for f in kept[n..].iter().filter(|f| !f.as_os_str().to_string_lossy().ends_with(COMPRESS_SUFFIX)) {
        compress(f)?;
    }
    Ok(())
}

/// Renames `log` to `log.<timestamp>`; returns the new name.
pub fn rename_latest(log: &Path, timestamp: &str) -> Result<PathBuf, RotationError> {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{timestamp}"));
    let rotated = PathBuf::from(name);
    fs::rename(log, &rotated).map_err(|source| RotationError::Rename { from: log.into(), to: rotated.clone(), source })?;
    Ok(rotated)
}

/// Removes a container's log and its rotated files (upstream's `Clean`), when the container is
/// removed.
pub fn remove_all(log: &Path) {
    for f in rotated_files(log).unwrap_or_default().iter().map(PathBuf::as_path).chain([log]) {
        if let Err(e) = remove("container", f) {
            tracing::debug!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, content: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn prepare_cleans_up_keeps_max_files_and_compresses() {
        let dir = tempfile::tempdir().unwrap();
        let log = touch(dir.path(), "0.log", "current\n");
        touch(dir.path(), "0.log.20240101-000001.gz", "x");
        touch(dir.path(), "0.log.20240101-000002.gz", "x");
        touch(dir.path(), "0.log.20240101-000003", "left uncompressed by a crash\n");
        touch(dir.path(), "0.log.20240101-000003.gz", "x");
        touch(dir.path(), "0.log.20240101-000004", "the last rotation\n");
        touch(dir.path(), "0.log.20240101-000004.tmp", "half a compression");
        touch(dir.path(), "1.log.20240101-000001", "another container's instance");
        prepare(&log, 4).unwrap();
        // max 4 files: the current, the one rotated next and two more.
        assert_eq!(names(dir.path()), ["0.log", "0.log.20240101-000003.gz", "0.log.20240101-000004.gz", "1.log.20240101-000001"]);
        let gz = fs::File::open(dir.path().join("0.log.20240101-000004.gz")).unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text).unwrap();
        assert_eq!(text, "the last rotation\n");
        let rotated = rename_latest(&log, "20240101-000005").unwrap();
        assert_eq!(rotated, dir.path().join("0.log.20240101-000005"));
        assert!(!log.exists());
        remove_all(&log);
        assert_eq!(names(dir.path()), ["1.log.20240101-000001"]);
    }

    #[test]
    fn small_max_files_keep_no_rotated_file_before_the_rename() {
        let files: Vec<PathBuf> = ["a.1", "a.2", "a.3"].iter().map(PathBuf::from).collect();
        assert_eq!(excess(&files, 2), 3);
        assert_eq!(excess(&files, 1), 3);
        assert_eq!(excess(&files, 5), 0);
        assert_eq!(excess(&files, 4), 1);
    }
}
