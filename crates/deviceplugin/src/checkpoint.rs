//! The device allocations on disk (upstream `devicemanager/checkpoint`): the file
//! `kubelet_internal_checkpoint` in the device plugin directory, so a restarted kubelet keeps
//! the devices its running containers hold.
//!
//! The format is upstream's JSON, field for field: `{"Data": {"PodDeviceEntries": [...],
//! "RegisteredDevices": {...}}, "Checksum": n}` with `AllocResp` the protobuf
//! `ContainerAllocateResponse` in base64. The checksum is upstream's too (FNV-1a, 32 bit, of Go's
//! `spew` rendering of `Data`), so either kubelet reads the other's file. A missing file is an
//! empty checkpoint; a corrupt one is an error the manager logs before starting empty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::pod_devices::{ContainerDevices, PodDevices};
use crate::v1beta1::ContainerAllocateResponse;

/// The checkpoint's file name in the device plugin directory.
pub const CHECKPOINT_FILE: &str = "kubelet_internal_checkpoint";

/// One container's devices of one resource. `None` stands for Go's `nil` (JSON `null`), which
/// the checksum tells from an empty list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodDevicesEntry {
    /// The pod's UID (`PodUID`).
    #[serde(rename = "PodUID")]
    pub pod_uid: String,
    /// The container's name in the pod spec (`ContainerName`).
    #[serde(rename = "ContainerName")]
    pub container_name: String,
    /// The extended resource name, e.g. `vendor.com/gpu` (`ResourceName`).
    #[serde(rename = "ResourceName")]
    pub resource_name: String,
    /// Device IDs by NUMA node.
    #[serde(rename = "DeviceIDs")]
    pub device_ids: Option<BTreeMap<i64, Option<Vec<String>>>>,
    /// The protobuf `ContainerAllocateResponse`.
    #[serde(rename = "AllocResp")]
    pub alloc_resp: Option<ByteString>,
}

/// What the checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointData {
    /// Every container's devices, one entry per container and resource.
    #[serde(rename = "PodDeviceEntries")]
    pub pod_device_entries: Option<Vec<PodDevicesEntry>>,
    /// Healthy device IDs of every registered resource.
    #[serde(rename = "RegisteredDevices")]
    pub registered_devices: Option<BTreeMap<String, Option<Vec<String>>>>,
}

#[derive(Serialize, Deserialize)]
struct File {
    #[serde(rename = "Data")]
    data: CheckpointData,
    #[serde(rename = "Checksum")]
    checksum: u64,
}

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The checkpoint file's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not the checkpoint's JSON.
    #[error("checkpoint file {path}: {source}")]
    Decode {
        /// The checkpoint file's path.
        path: PathBuf,
        /// The JSON decoder's error.
        source: serde_json::Error,
    },
    /// The data does not match the file's checksum.
    #[error("checkpoint file {path} is corrupted: checksum {actual} instead of {expected}")]
    Corrupt {
        /// The checkpoint file's path.
        path: PathBuf,
        /// The `Checksum` stored in the file.
        expected: u64,
        /// The checksum of the `Data` read.
        actual: u64,
    },
}

/// Go's `%v` of a string list as `spew` prints it: `<nil>` or `[a b]`.
fn spew_strings(out: &mut String, list: Option<&Vec<String>>) {
    match list {
        None => out.push_str("<nil>"),
        Some(l) => {
            let _ = write!(out, "[{}]", l.join(" "));
        }
    }
}

/// `Data` as upstream hashes it: Go's `spew` with sorted keys, no methods, `%#v`.
fn spew(data: &CheckpointData) -> String {
    let mut s = String::from("(checkpoint.checkpointData){PodDeviceEntries:([]checkpoint.PodDevicesEntry)");
    match &data.pod_device_entries {
        None => s.push_str("<nil>"),
        Some(entries) => {
            s.push('[');
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                let _ = write!(
                    s,
                    "{{PodUID:(string){} ContainerName:(string){} ResourceName:(string){} DeviceIDs:(checkpoint.DevicesPerNUMA)",
                    e.pod_uid, e.container_name, e.resource_name
                );
                match &e.device_ids {
                    None => s.push_str("<nil>"),
                    Some(by_node) => {
                        s.push_str("map[");
                        for (j, (node, ids)) in by_node.iter().enumerate() {
                            let _ = write!(s, "{}{node}:", if j > 0 { " " } else { "" });
                            spew_strings(&mut s, ids.as_ref());
                        }
                        s.push(']');
                    }
                }
                s.push_str(" AllocResp:([]uint8)");
                match &e.alloc_resp {
                    None => s.push_str("<nil>"),
                    Some(bytes) => {
                        let text: Vec<String> = bytes.0.iter().map(u8::to_string).collect();
                        let _ = write!(s, "[{}]", text.join(" "));
                    }
                }
                s.push('}');
            }
            s.push(']');
        }
    }
    s.push_str(" RegisteredDevices:(map[string][]string)");
    match &data.registered_devices {
        None => s.push_str("<nil>"),
        Some(registered) => {
            s.push_str("map[");
            for (j, (resource, ids)) in registered.iter().enumerate() {
                let _ = write!(s, "{}{resource}:", if j > 0 { " " } else { "" });
                spew_strings(&mut s, ids.as_ref());
            }
            s.push(']');
        }
    }
    s.push('}');
    s
}

/// Upstream's checksum of `data`.
pub fn checksum(data: &CheckpointData) -> u64 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in spew(data).bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    u64::from(hash)
}

/// The file's bytes for `data`.
pub fn encode(data: &CheckpointData) -> Vec<u8> {
    let file = File { data: data.clone(), checksum: checksum(data) };
    serde_json::to_vec(&file).expect("checkpoint data serializes")
}

/// Reads a checkpoint file's bytes, checking the checksum; `path` is for errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<CheckpointData, CheckpointError> {
    let file: File = serde_json::from_slice(bytes).map_err(|source| CheckpointError::Decode { path: path.into(), source })?;
    let actual = checksum(&file.data);
    if actual != file.checksum {
        return Err(CheckpointError::Corrupt { path: path.into(), expected: file.checksum, actual });
    }
    Ok(file.data)
}

/// The checkpoint in `dir`; `None` if there is none.
pub fn read(dir: &Path) -> Result<Option<CheckpointData>, CheckpointError> {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io { path, source }),
    }
}

/// Replaces the checkpoint in `dir` (a temporary file renamed over it).
pub fn write(dir: &Path, data: &CheckpointData) -> Result<(), CheckpointError> {
    let path = dir.join(CHECKPOINT_FILE);
    let tmp = dir.join(format!(".{CHECKPOINT_FILE}.tmp"));
    let io = |source| CheckpointError::Io { path: path.clone(), source };
    std::fs::write(&tmp, encode(data)).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// The checkpoint of the allocations that have an answer, and of the healthy devices of every
/// registered resource.
pub fn snapshot(pods: &PodDevices, registered: BTreeMap<String, Vec<String>>) -> CheckpointData {
    let entries: Vec<PodDevicesEntry> = pods
        .entries()
        .filter_map(|(pod, container, resource, devices)| {
            let response = devices.response.as_ref()?;
            Some(PodDevicesEntry {
                pod_uid: pod.into(),
                container_name: container.into(),
                resource_name: resource.into(),
                device_ids: Some(devices.by_numa_node.iter().map(|(node, ids)| (*node, Some(ids.clone()))).collect()),
                alloc_resp: Some(ByteString(response.encode_to_vec())),
            })
        })
        .collect();
    CheckpointData {
        // As upstream: no allocation is `null`.
        pod_device_entries: Some(entries).filter(|e| !e.is_empty()),
        registered_devices: Some(registered.into_iter().map(|(r, ids)| (r, Some(ids))).collect()),
    }
}

/// The allocations and registered resources a checkpoint holds. Entries whose response does
/// not decode are skipped.
pub fn restore(data: CheckpointData) -> (PodDevices, Vec<String>) {
    let mut pods = PodDevices::default();
    for e in data.pod_device_entries.into_iter().flatten() {
        let bytes = e.alloc_resp.map(|b| b.0).unwrap_or_default();
        let response = match ContainerAllocateResponse::decode(bytes.as_slice()) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(pod = %e.pod_uid, container = %e.container_name, resource = %e.resource_name, "skipping a checkpointed allocation: {err}");
                continue;
            }
        };
        let by_numa_node = e.device_ids.unwrap_or_default().into_iter().map(|(node, ids)| (node, ids.unwrap_or_default())).collect();
        pods.insert(&e.pod_uid, &e.container_name, &e.resource_name, ContainerDevices { by_numa_node, response: Some(response) });
    }
    let registered = data.registered_devices.unwrap_or_default().into_keys().collect();
    (pods, registered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_devices::NODE_WITHOUT_TOPOLOGY;

    fn strings(ids: &[&str]) -> Option<Vec<String>> {
        Some(ids.iter().map(|s| s.to_string()).collect())
    }

    // Checksums computed by upstream's code (go-spew + FNV-1a) for the same data.
    #[test]
    fn checksum_matches_upstream() {
        let empty = CheckpointData { pod_device_entries: None, registered_devices: None };
        assert_eq!(checksum(&empty), 1_944_006_890);
        let empty_map = CheckpointData { pod_device_entries: None, registered_devices: Some(BTreeMap::new()) };
        assert_eq!(checksum(&empty_map), 3_467_439_661);
        let full = CheckpointData {
            pod_device_entries: Some(vec![
                PodDevicesEntry {
                    pod_uid: "u 1\"q\n".into(),
                    container_name: "é".into(),
                    resource_name: "r".into(),
                    device_ids: None,
                    alloc_resp: None,
                },
                PodDevicesEntry {
                    pod_uid: "u2".into(),
                    container_name: "c".into(),
                    resource_name: "r".into(),
                    device_ids: Some(BTreeMap::new()),
                    alloc_resp: Some(ByteString(vec![])),
                },
                PodDevicesEntry {
                    pod_uid: "u3".into(),
                    container_name: "c".into(),
                    resource_name: "r".into(),
                    device_ids: Some(BTreeMap::from([(3, None), (1, Some(vec![])), (-1, strings(&["b", "a"]))])),
                    alloc_resp: Some(ByteString(vec![0, 255])),
                },
            ]),
            registered_devices: Some(BTreeMap::from([("b".to_string(), strings(&["x y"])), ("a".into(), strings(&["1"]))])),
        };
        assert_eq!(checksum(&full), 4_123_038_165);
        let registered = CheckpointData {
            pod_device_entries: Some(vec![PodDevicesEntry {
                pod_uid: "uid-1".into(),
                container_name: "c".into(),
                resource_name: "test.device/a".into(),
                device_ids: Some(BTreeMap::from([(-1, strings(&["dev0", "dev1"])), (0, strings(&["x"]))])),
                alloc_resp: Some(ByteString(vec![10, 3, 97, 98, 99])),
            }]),
            registered_devices: Some(BTreeMap::from([
                ("test.device/a".to_string(), strings(&["dev0", "dev1"])),
                ("test.device/b".into(), None),
                ("test.device/c".into(), Some(vec![])),
            ])),
        };
        assert_eq!(checksum(&registered), 2_545_094_002);
    }

    #[test]
    fn reads_upstreams_json() {
        let text = r#"{"Data":{"PodDeviceEntries":[{"PodUID":"u 1\"q\n","ContainerName":"é","ResourceName":"r","DeviceIDs":null,"AllocResp":null},{"PodUID":"u2","ContainerName":"c","ResourceName":"r","DeviceIDs":{},"AllocResp":""},{"PodUID":"u3","ContainerName":"c","ResourceName":"r","DeviceIDs":{"-1":["b","a"],"1":[],"3":null},"AllocResp":"AP8="}],"RegisteredDevices":{"a":["1"],"b":["x y"]}},"Checksum":4123038165}"#;
        let data = decode(text.as_bytes(), Path::new("cp")).unwrap();
        assert_eq!(data.pod_device_entries.as_ref().unwrap()[2].alloc_resp, Some(ByteString(vec![0, 255])));
        let corrupt = text.replace("4123038165", "1");
        let err = decode(corrupt.as_bytes(), Path::new("cp")).unwrap_err();
        assert_eq!(err.to_string(), "checkpoint file cp is corrupted: checksum 4123038165 instead of 1");
    }

    #[test]
    fn allocations_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let mut pods = PodDevices::default();
        let response = ContainerAllocateResponse { envs: [("DEV".to_string(), "d0".to_string())].into(), ..Default::default() };
        pods.insert(
            "u1",
            "c",
            "test.device/r",
            ContainerDevices { by_numa_node: [(NODE_WITHOUT_TOPOLOGY, vec!["d0".to_string()])].into(), response: Some(response) },
        );
        // A reservation without an answer is not written.
        pods.insert("u2", "c", "test.device/r", ContainerDevices { by_numa_node: [(0, vec!["d1".to_string()])].into(), response: None });
        let registered = BTreeMap::from([("test.device/r".to_string(), vec!["d0".to_string(), "d1".to_string()])]);
        let data = snapshot(&pods, registered);
        write(dir.path(), &data).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert!(text.starts_with(r#"{"Data":{"PodDeviceEntries":[{"PodUID":"u1","ContainerName":"c","ResourceName":"test.device/r","DeviceIDs":{"-1":["d0"]},"AllocResp":""#), "{text}");
        let (restored, resources) = restore(read(dir.path()).unwrap().unwrap());
        pods.remove_pod("u2");
        assert_eq!(restored, pods);
        assert_eq!(resources, vec!["test.device/r".to_string()]);

        // Nothing allocated: `null` entries, as upstream writes.
        let empty = snapshot(&PodDevices::default(), BTreeMap::new());
        assert!(String::from_utf8(encode(&empty)).unwrap().starts_with(r#"{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{}}"#));
    }
}
