//! The allocation checkpoints under the kubelet's root directory (`allocated_pods_state`,
//! `actuated_pods_state`), in upstream's layout: `{"data": "<JSON>", "checksum": N}` where the
//! data is `{"entries": {"<pod UID>": {"ContainerResources": {"<name>": <requirements>}}}}`.
//!
//! The checksum is upstream's: FNV-1a (32 bit) over apimachinery's hash dump of the data string
//! (`(string)` followed by the string), so either kubelet reads the other's files. A file whose
//! checksum or data does not match is refused (the kubelet then starts from the pods' specs).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde::{Deserialize, Serialize};

/// What the kubelet recorded for one pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodResourceInfo {
    /// Container name → its resources.
    #[serde(rename = "ContainerResources", default)]
    pub container_resources: BTreeMap<String, ResourceRequirements>,
    /// `spec.resources`, when the pod has them.
    #[serde(rename = "PodLevelResources", default, skip_serializing_if = "Option::is_none")]
    pub pod_level_resources: Option<ResourceRequirements>,
}

/// Pod UID → what was recorded for it.
pub type Entries = BTreeMap<String, PodResourceInfo>;

#[derive(Serialize, Deserialize, Default)]
struct Data {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    entries: Entries,
}

#[derive(Serialize, Deserialize)]
struct File {
    data: String,
    checksum: u64,
}

/// A checkpoint file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file exists but could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The checkpoint file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file, or the data string inside it, is not the expected JSON.
    #[error("{path} is not a checkpoint: {source}")]
    Malformed {
        /// The checkpoint file.
        path: PathBuf,
        /// The JSON decoding error.
        source: serde_json::Error,
    },
    /// The stored checksum is not that of the stored data.
    #[error("{path}: checksum {found} does not match its data (expected {expected}); the file is corrupt")]
    Checksum {
        /// The checkpoint file.
        path: PathBuf,
        /// The checksum the file holds.
        found: u64,
        /// The checksum computed from the file's data.
        expected: u64,
    },
    /// Writing the temporary file or renaming it over the checkpoint failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The checkpoint file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Upstream's `checksum.New(data)`: FNV-1a over the hash dump of the string.
fn checksum(data: &str) -> u64 {
    u64::from(crate::kuberuntime::hash::fnv1a32(b"(string)".iter().chain(data.as_bytes())))
}

/// Loads `path`; a missing file is empty.
pub fn load(path: &Path) -> Result<Entries, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(source) => return Err(CheckpointError::Read { path: path.into(), source }),
    };
    parse(&bytes, path)
}

/// Parses a checkpoint's bytes (`path` names it in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Entries, CheckpointError> {
    let malformed = |source| CheckpointError::Malformed { path: path.into(), source };
    let file: File = serde_json::from_slice(bytes).map_err(malformed)?;
    let expected = checksum(&file.data);
    if expected != file.checksum {
        return Err(CheckpointError::Checksum { path: path.into(), found: file.checksum, expected });
    }
    let data: Data = serde_json::from_str(&file.data).map_err(malformed)?;
    Ok(data.entries)
}

/// Writes `entries` to `path` atomically (a temporary file renamed over it), mode 0644 as
/// upstream's checkpoint manager.
pub fn save(path: &Path, entries: &Entries) -> Result<(), CheckpointError> {
    let write_err = |source| CheckpointError::Write { path: path.into(), source };
    let data = serde_json::to_string(&Data { entries: entries.clone() }).unwrap_or_default();
    let file = File { checksum: checksum(&data), data };
    let body = serde_json::to_vec(&file).unwrap_or_default();
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&tmp).map_err(write_err)?;
    f.write_all(&body).and_then(|()| f.sync_all()).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn round_trip_and_upstream_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allocated_pods_state");
        assert!(load(&path).unwrap().is_empty());
        let mut entries = Entries::new();
        let mut info = PodResourceInfo::default();
        let requests = [("cpu".to_string(), Quantity("20m".into()))].into_iter().collect();
        info.container_resources.insert("c1".into(), ResourceRequirements { requests: Some(requests), ..Default::default() });
        entries.insert("uid-1".into(), info);
        save(&path, &entries).unwrap();
        assert_eq!(load(&path).unwrap(), entries);
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let data: serde_json::Value = serde_json::from_str(raw["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["entries"]["uid-1"]["ContainerResources"]["c1"]["requests"]["cpu"], "20m");
        assert!(raw["checksum"].is_u64());
    }

    #[test]
    fn upstreams_checksum_is_checked_and_garbage_refused() {
        // Computed with upstream v1.37.2's `checksum.New` for the same data.
        let data = r#"{"entries":{"u":{"ContainerResources":{"c1":{"requests":{"cpu":"20m"}}}}}}"#;
        assert_eq!(checksum(data), 764_198_705);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let file = serde_json::json!({"data": data, "checksum": 764_198_705u64});
        std::fs::write(&path, file.to_string()).unwrap();
        assert!(load(&path).unwrap().contains_key("u"));
        let wrong = serde_json::json!({"data": data, "checksum": 1});
        std::fs::write(&path, wrong.to_string()).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("checksum 1 does not match"), "{err}");
        std::fs::write(&path, "{not json").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("is not a checkpoint"), "{err}");
    }
}
