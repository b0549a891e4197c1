//! `valueFrom.fileKeyRef` (feature `EnvFiles`, upstream `makeEnvironmentVariables`): a variable
//! whose value is a key of an env file in one of the pod's volumes, typically an `emptyDir` an
//! init container wrote.
//!
//! I/O: the file is read on every call, so each container (re)start sees its current content;
//! nothing is cached. Its format is [`super::env_file`]'s. The file is opened relative to the
//! volume directory with `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks (absolute or relative)
//! resolve as if the volume were `/` and never lead out of it, as upstream's `securejoin`. Only a
//! regular file is read (a FIFO a container left there cannot block the kubelet), and at most
//! [`MAX_ENV_FILE_BYTES`] of it.
//!
//! Must not touch anything but the selected file: the volume itself is prepared by the volume
//! manager.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::FileKeySelector;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::env_file::{EnvFileError, lookup};

/// The largest env file read. Upstream has no bound; a single value cannot exceed the 128 KiB a
/// Linux `execve` accepts per environment string anyway.
pub const MAX_ENV_FILE_BYTES: u64 = 16 << 20;

/// Why an env file could not be used. The container only sees upstream's "couldn't parse env
/// file"; this is what the kubelet logs.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileReadError {
    /// The file could not be opened inside the volume (missing, or its path leads out of the volume).
    #[error("opening: {0}")]
    Open(#[source] io::Error),
    /// Reading the open file failed.
    #[error("reading: {0}")]
    Read(#[source] io::Error),
    /// The path names something other than a regular file (a directory, a FIFO, ...).
    #[error("not a regular file")]
    NotAFile,
    /// The file is larger than [`MAX_ENV_FILE_BYTES`].
    #[error("larger than {MAX_ENV_FILE_BYTES} bytes")]
    TooLarge,
    /// The file's content is not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The file is not in the env-file format.
    #[error("invalid environment variable format at {0}")]
    Format(#[from] EnvFileError),
}

/// Why a `fileKeyRef` has no value; the message is upstream's `CreateContainerConfigError` reason.
#[derive(Debug, thiserror::Error)]
pub enum FileKeyRefError {
    /// The selector's `volumeName` is not one of the pod's volumes (the name is given).
    #[error("cannot find the volume {0:?} referenced by FileKeyRef")]
    UnknownVolume(String),
    /// The env file could not be opened, read or parsed.
    #[error("couldn't parse env file")]
    Unparsable {
        /// The env file's host path inside the volume.
        path: PathBuf,
        /// What went wrong with it, for the kubelet's log.
        #[source]
        source: EnvFileReadError,
    },
    /// A non-optional key the file does not assign, or assigns the empty string.
    #[error("environment variable key {key:?} not found in file {path:?}")]
    KeyNotFound {
        /// The selector's `key`.
        key: String,
        /// The env file's host path inside the volume.
        path: PathBuf,
    },
}

/// `rel` inside `root`, lexically: `.` and empty parts dropped, `..` never above `root`. Only
/// for messages and the fallback; the API server already refuses `..` in `path`.
fn join_in_volume(root: &Path, rel: &str) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    parts.into_iter().fold(root.to_path_buf(), |p, part| p.join(part))
}

/// Opens `rel` inside the volume directory `root` without leaving it.
fn open_in_volume(root: &Path, rel: &str) -> io::Result<File> {
    let dir = File::open(root)?;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(File::from(fd)),
        // Kernels before 5.6: resolve first and refuse what ends outside the volume. (A component
        // swapped for a symlink in between can still escape there; the last one cannot.)
        Err(rustix::io::Errno::NOSYS) => {
            let root = root.canonicalize()?;
            let path = join_in_volume(&root, rel).canonicalize()?;
            if !path.starts_with(&root) {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the path leads out of the volume"));
            }
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY).open(path)
        }
        Err(e) => Err(e.into()),
    }
}

/// The whole text of the env file `rel` in the volume directory `root`.
fn read_env_file(root: &Path, rel: &str) -> Result<String, EnvFileReadError> {
    let file = open_in_volume(root, rel).map_err(EnvFileReadError::Open)?;
    if !file.metadata().map_err(EnvFileReadError::Read)?.is_file() {
        return Err(EnvFileReadError::NotAFile);
    }
    let mut bytes = Vec::new();
    file.take(MAX_ENV_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(EnvFileReadError::Read)?;
    if bytes.len() as u64 > MAX_ENV_FILE_BYTES {
        return Err(EnvFileReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| EnvFileReadError::NotUtf8)
}

/// The value `selector` selects, given the pod's volumes (name → host directory); `None` when an
/// optional key is missing. As upstream, a key assigned the empty string counts as missing, and a
/// missing or unreadable file is an error even when the key is optional.
pub fn file_key_value(volumes: &HashMap<String, PathBuf>, selector: &FileKeySelector) -> Result<Option<String>, FileKeyRefError> {
    let root = volumes.get(&selector.volume_name).ok_or_else(|| FileKeyRefError::UnknownVolume(selector.volume_name.clone()))?;
    let path = join_in_volume(root, &selector.path);
    let value = read_env_file(root, &selector.path)
        .and_then(|text| Ok(lookup(&text, &selector.key)?))
        .map_err(|source| FileKeyRefError::Unparsable { path: path.clone(), source })?;
    match value.filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(v)),
        None if selector.optional.unwrap_or(false) => Ok(None),
        None => Err(FileKeyRefError::KeyNotFound { key: selector.key.clone(), path }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn selector(volume: &str, path: &str, key: &str, optional: Option<bool>) -> FileKeySelector {
        FileKeySelector { volume_name: volume.into(), path: path.into(), key: key.into(), optional }
    }

    /// A pod directory with volume `config` holding `config.env`, and a secret file outside it.
    fn pod_volumes() -> (tempfile::TempDir, HashMap<String, PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("volumes/config");
        std::fs::create_dir_all(config.join("sub")).unwrap();
        std::fs::write(config.join("config.env"), "CONFIG_1='value1'\nEMPTY=''\n").unwrap();
        std::fs::write(config.join("sub/nested.env"), "N='nested'\n").unwrap();
        std::fs::write(dir.path().join("outside.env"), "SECRET='leaked'\n").unwrap();
        let volumes = HashMap::from([("config".to_string(), config)]);
        (dir, volumes)
    }

    #[test]
    fn keys_are_read_from_the_file_in_the_volume() {
        let (_dir, volumes) = pod_volumes();
        let get = |path, key| file_key_value(&volumes, &selector("config", path, key, None)).unwrap();
        assert_eq!(get("config.env", "CONFIG_1").as_deref(), Some("value1"));
        assert_eq!(get("sub/nested.env", "N").as_deref(), Some("nested"));
        assert_eq!(get("./sub//nested.env", "N").as_deref(), Some("nested"));
    }

    #[test]
    fn missing_and_empty_keys_fail_unless_optional() {
        let (_dir, volumes) = pod_volumes();
        let file = volumes["config"].join("config.env");
        for key in ["MISSING", "EMPTY"] {
            let err = file_key_value(&volumes, &selector("config", "config.env", key, Some(false))).unwrap_err();
            assert_eq!(err.to_string(), format!("environment variable key \"{key}\" not found in file \"{}\"", file.display()));
            assert_eq!(file_key_value(&volumes, &selector("config", "config.env", key, Some(true))).unwrap(), None);
        }
    }

    #[test]
    fn unknown_volumes_and_unusable_files_are_upstreams_errors() {
        let (_dir, volumes) = pod_volumes();
        let err = file_key_value(&volumes, &selector("nope", "config.env", "K", None)).unwrap_err();
        assert_eq!(err.to_string(), "cannot find the volume \"nope\" referenced by FileKeyRef");
        // A missing file fails the container even for an optional key, as upstream.
        let err = file_key_value(&volumes, &selector("config", "absent.env", "K", Some(true))).unwrap_err();
        assert_eq!(err.to_string(), "couldn't parse env file");
        assert!(matches!(err, FileKeyRefError::Unparsable { source: EnvFileReadError::Open(_), .. }), "{err:?}");
        std::fs::write(volumes["config"].join("bad.env"), "A='a'\nB=b\n").unwrap();
        let err = file_key_value(&volumes, &selector("config", "bad.env", "K", Some(true))).unwrap_err();
        assert_eq!(err.to_string(), "couldn't parse env file");
        let FileKeyRefError::Unparsable { source, .. } = err else { panic!() };
        assert_eq!(source.to_string(), "invalid environment variable format at line 2: value must be enclosed in single quotes");
        let err = file_key_value(&volumes, &selector("config", "sub", "K", None)).unwrap_err();
        assert!(matches!(err, FileKeyRefError::Unparsable { source: EnvFileReadError::NotAFile, .. }), "{err:?}");
        std::fs::write(volumes["config"].join("latin1.env"), b"A='\xe9'\n").unwrap();
        let err = file_key_value(&volumes, &selector("config", "latin1.env", "A", None)).unwrap_err();
        assert!(matches!(err, FileKeyRefError::Unparsable { source: EnvFileReadError::NotUtf8, .. }), "{err:?}");
    }

    #[test]
    fn symlinks_and_dot_dots_stay_inside_the_volume() {
        let (dir, volumes) = pod_volumes();
        let config = &volumes["config"];
        let outside = dir.path().join("outside.env");
        symlink(&outside, config.join("absolute.env")).unwrap();
        symlink("../../outside.env", config.join("relative.env")).unwrap();
        symlink("config.env", config.join("inside.env")).unwrap();
        for path in ["absolute.env", "relative.env", "../outside.env", "sub/../../../outside.env"] {
            let err = file_key_value(&volumes, &selector("config", path, "SECRET", None)).unwrap_err();
            assert!(matches!(err, FileKeyRefError::Unparsable { source: EnvFileReadError::Open(_), .. }), "{path}: {err:?}");
        }
        // An absolute link resolves inside the volume, as if it were the root.
        let mirrored = join_in_volume(config, outside.to_str().unwrap());
        std::fs::create_dir_all(mirrored.parent().unwrap()).unwrap();
        std::fs::write(&mirrored, "SECRET='inside'\n").unwrap();
        let get = |path| file_key_value(&volumes, &selector("config", path, "SECRET", None)).unwrap();
        assert_eq!(get("absolute.env").as_deref(), Some("inside"));
        assert_eq!(file_key_value(&volumes, &selector("config", "inside.env", "CONFIG_1", None)).unwrap().as_deref(), Some("value1"));
    }

    #[test]
    fn the_file_is_read_again_on_every_call() {
        let (_dir, volumes) = pod_volumes();
        let sel = selector("config", "config.env", "CONFIG_1", None);
        assert_eq!(file_key_value(&volumes, &sel).unwrap().as_deref(), Some("value1"));
        std::fs::write(volumes["config"].join("config.env"), "CONFIG_1='value2'\n").unwrap();
        assert_eq!(file_key_value(&volumes, &sel).unwrap().as_deref(), Some("value2"));
    }

    #[test]
    fn paths_join_lexically_inside_the_volume() {
        let root = Path::new("/v/config");
        assert_eq!(join_in_volume(root, "a/./b//c.env"), Path::new("/v/config/a/b/c.env"));
        assert_eq!(join_in_volume(root, "../../x"), Path::new("/v/config/x"));
        assert_eq!(join_in_volume(root, "/abs"), Path::new("/v/config/abs"));
    }
}
