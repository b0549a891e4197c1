//! The allocation checkpoints under the kubelet's root directory (`allocated_pods_state`,
//! `actuated_pods_state`), in upstream's layout: `{"data": "<JSON>", "checksum": N}` where the
//! data is `{"entries": {"<pod UID>": {"ContainerResources": {"<name>": <requirements>}}}}`.
//!
//! The checksum is FNV-1a (32 bit) of the data string. Upstream hashes a debug dump of it
//! instead, so a file an upstream kubelet wrote is accepted when its data parses, with a
//! warning; data that does not parse is refused (the kubelet then starts from the pods' specs).

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
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a checkpoint: {source}")]
    Malformed { path: PathBuf, source: serde_json::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

fn fnv1a32(bytes: &[u8]) -> u64 {
    u64::from(bytes.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)))
}

/// Loads `path`; a missing file is empty.
pub fn load(path: &Path) -> Result<Entries, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(source) => return Err(CheckpointError::Read { path: path.into(), source }),
    };
    let malformed = |source| CheckpointError::Malformed { path: path.into(), source };
    let file: File = serde_json::from_slice(&bytes).map_err(malformed)?;
    let data: Data = serde_json::from_str(&file.data).map_err(malformed)?;
    if fnv1a32(file.data.as_bytes()) != file.checksum {
        tracing::warn!(path = %path.display(), "checkpoint checksum is not this kubelet's (written by upstream's?); using its data, which parses");
    }
    Ok(data.entries)
}

/// Writes `entries` to `path` atomically (a temporary file renamed over it), mode 0644 as
/// upstream's checkpoint manager.
pub fn save(path: &Path, entries: &Entries) -> Result<(), CheckpointError> {
    let write_err = |source| CheckpointError::Write { path: path.into(), source };
    let data = serde_json::to_string(&Data { entries: entries.clone() }).unwrap_or_default();
    let file = File { checksum: fnv1a32(data.as_bytes()), data };
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
    fn a_foreign_checksum_is_accepted_and_garbage_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, r#"{"data":"{\"entries\":{\"u\":{\"ContainerResources\":{}}}}","checksum":1}"#).unwrap();
        assert!(load(&path).unwrap().contains_key("u"));
        std::fs::write(&path, "{not json").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("is not a checkpoint"), "{err}");
    }
}
