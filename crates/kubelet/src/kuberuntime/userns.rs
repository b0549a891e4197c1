//! User namespaces for pods (`spec.hostUsers: false`, GA in 1.36; upstream
//! `pkg/kubelet/userns`): each such pod gets its own range of `idsPerPod` host IDs, mapped to
//! IDs 0.. inside the pod, the same range for UIDs and GIDs; every other pod shares the node's
//! user namespace (CRI mode `NODE`).
//!
//! The ranges come from the kubelet's share of host IDs: the `kubelet` user's entry of
//! `getsubids` when that user exists and the tool is installed, else upstream's default (from
//! `idsPerPod` to the end of the 32-bit ID space). A pod's range is written to `userns` in its
//! directory (upstream's JSON), so it survives kubelet restarts and is freed with the
//! directory; allocation reads the ranges of all pod directories, so no second record can
//! drift from the disk.
//!
//! A pod asking for a user namespace on a runtime handler that does not support them (CRI
//! `RuntimeHandlerFeatures.user_namespaces`) is refused with upstream's message: it never runs
//! in the host's user namespace by mistake.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::api;
use serde::{Deserialize, Serialize};

/// Why a user namespace could not be configured, allocated or read back. The messages are
/// upstream's where upstream has one.
#[derive(Debug, thiserror::Error)]
pub enum UserNsError {
    /// A pod's stored mappings break one of upstream's rules (one mapping, UIDs and GIDs alike,
    /// ID 0 mapped); the text names the rule.
    #[error("invalid user namespace configuration: {0}")]
    InvalidMappings(&'static str),
    /// `userNamespaces.idsPerPod` is not a multiple of [`IDS_UNIT`].
    #[error("kubelet user namespace length {0} is not a multiple of {IDS_UNIT}")]
    IdsPerPodNotMultiple(u32),
    /// The kubelet's first subordinate ID is not a multiple of `idsPerPod`.
    #[error("kubelet user assigned ID {first_id} is not a multiple of {ids_per_pod}")]
    FirstIdNotMultiple {
        /// The kubelet's first subordinate ID.
        first_id: u32,
        /// `userNamespaces.idsPerPod`.
        ids_per_pod: u32,
    },
    /// The kubelet's first subordinate ID is below `idsPerPod` (host ID 0 would be handed out).
    #[error("kubelet user assigned ID {first_id} must be greater or equal to {ids_per_pod}")]
    FirstIdTooLow {
        /// The kubelet's first subordinate ID.
        first_id: u32,
        /// `userNamespaces.idsPerPod`.
        ids_per_pod: u32,
    },
    /// The kubelet's share of IDs is not a multiple of `idsPerPod`.
    #[error("kubelet user assigned IDs length {length} is not a multiple of {ids_per_pod}")]
    LengthNotMultiple {
        /// How many subordinate IDs the kubelet has.
        length: u32,
        /// `userNamespaces.idsPerPod`.
        ids_per_pod: u32,
    },
    /// The kubelet's share runs past the 32-bit ID space.
    #[error("kubelet user assigned IDs {first_id}+{length} go past the 32-bit ID space")]
    PastIdSpace {
        /// The kubelet's first subordinate ID.
        first_id: u32,
        /// How many subordinate IDs the kubelet has.
        length: u32,
    },
    /// The kubelet's share has fewer slots than `maxPods`.
    #[error("kubelet user assigned IDs are not enough to support {0} pods")]
    TooFewIds(u32),
    /// `getsubids` printed a line that is not `N: user first length`.
    #[error("error parsing line {line:?}: {reason}")]
    GetSubIdsOutput {
        /// The line printed.
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `getsubids` could not be run.
    #[error("running {}: {source}", tool.display())]
    GetSubIdsRun {
        /// The tool's path.
        tool: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `getsubids` failed; its standard error.
    #[error("error retrieving additional ids for user \"kubelet\": {0}")]
    GetSubIdsFailed(String),
    /// The `kubelet` user's subordinate UIDs and GIDs differ.
    #[error("mismatched subuids and subgids for user \"kubelet\"")]
    MismatchedSubIds,
    /// The pod's sandbox exists but no range is recorded for it.
    #[error("user namespace: no mappings recorded for the pod")]
    NoMappings,
    /// The pod's runtime handler does not support user namespaces (empty: the default handler).
    #[error("{}", handler_unsupported(.0))]
    HandlerUnsupported(String),
    /// Every slot of the kubelet's share is taken.
    #[error("create user namespace: could not find an empty slot to allocate a user namespace")]
    NoFreeSlot,
    /// A new range could not be encoded.
    #[error("create user namespace: {0}")]
    Encode(serde_json::Error),
    /// A new range could not be written to the pod's directory.
    #[error("create user namespace: {}: {source}", path.display())]
    Write {
        /// The pod's `userns` file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pod's stored mappings could not be read.
    #[error("user namespace: {}: {source}", path.display())]
    Read {
        /// The pod's `userns` file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pod's stored mappings do not parse.
    #[error("user namespace: invalid user namespace mappings file {}: {source}", path.display())]
    Decode {
        /// The pod's `userns` file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A pod's stored mappings break upstream's rules.
    #[error("user namespace: {0}")]
    Stored(Box<UserNsError>),
    /// A pod's stored range is not one this kubelet could have handed out.
    #[error("user namespace: range {host_id}+{length} is not one of this kubelet's ({first_id}+{share} in steps of {ids_per_pod})")]
    ForeignRange {
        /// The range's first host ID.
        host_id: u32,
        /// The range's length.
        length: u32,
        /// The kubelet's first subordinate ID.
        first_id: u32,
        /// How many subordinate IDs the kubelet has.
        share: u32,
        /// `userNamespaces.idsPerPod`.
        ids_per_pod: u32,
    },
    /// The pod directories could not be listed to find the ranges in use.
    #[error("user namespace: read pods from disk: {0}")]
    ListPods(std::io::Error),
}

fn handler_unsupported(handler: &str) -> String {
    match handler {
        "" => "can't set `spec.hostUsers: false`, runtime does not support user namespaces".into(),
        h => format!("can't set `spec.hostUsers: false`, RuntimeClass handler {h:?} does not support user namespaces"),
    }
}

/// Upstream's unit and default of `userNamespaces.idsPerPod`.
pub const IDS_UNIT: u32 = 65536;
/// The file in the pod directory that holds its mappings.
pub const MAPPINGS_FILE: &str = "userns";

/// One ID mapping, upstream's JSON field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    /// The first host ID of the range.
    pub host_id: u32,
    /// The ID inside the pod the range starts at (always 0 for a valid pod file).
    pub container_id: u32,
    /// How many IDs the range spans.
    pub length: u32,
}

/// A pod's mappings as stored in its `userns` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMappings {
    /// UID mappings; exactly one in a valid file.
    pub uid_mappings: Vec<IdMapping>,
    /// GID mappings; exactly one in a valid file, equal to the UID mapping.
    pub gid_mappings: Vec<IdMapping>,
}

impl PodMappings {
    fn of(host_id: u32, length: u32) -> Self {
        let m = IdMapping { host_id, container_id: 0, length };
        Self { uid_mappings: vec![m], gid_mappings: vec![m] }
    }

    /// The one range of a valid file (upstream's checks: one mapping, UIDs and GIDs alike, ID 0
    /// mapped).
    fn range(&self) -> Result<IdMapping, UserNsError> {
        let ([u], [g]) = (self.uid_mappings.as_slice(), self.gid_mappings.as_slice()) else {
            return Err(UserNsError::InvalidMappings("no more than one mapping allowed."));
        };
        if u != g {
            return Err(UserNsError::InvalidMappings("GID and UID mappings should be identical."));
        }
        if u.container_id != 0 {
            return Err(UserNsError::InvalidMappings("UID 0 must be mapped"));
        }
        Ok(*u)
    }
}

/// The kubelet's share of host IDs and the size of each pod's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRanges {
    /// The first host ID of the kubelet's share; a multiple of `ids_per_pod`.
    pub first_id: u32,
    /// How many host IDs the kubelet's share spans.
    pub length: u32,
    /// Size of each pod's range (`userNamespaces.idsPerPod` of the KubeletConfiguration; default
    /// 65536), a multiple of 65536.
    pub ids_per_pod: u32,
}

impl IdRanges {
    /// Upstream's default share: from `ids_per_pod` to the end of the ID space.
    pub fn default_for(ids_per_pod: u32) -> Self {
        Self { first_id: ids_per_pod, length: (u64::from(u32::MAX) + 1 - u64::from(ids_per_pod)) as u32, ids_per_pod }
    }

    /// Upstream's start-up checks (`MakeUserNsManager`).
    pub fn validate(&self, max_pods: u32) -> Result<(), UserNsError> {
        let n = self.ids_per_pod;
        if n == 0 || !n.is_multiple_of(IDS_UNIT) {
            return Err(UserNsError::IdsPerPodNotMultiple(n));
        }
        if !self.first_id.is_multiple_of(n) {
            return Err(UserNsError::FirstIdNotMultiple { first_id: self.first_id, ids_per_pod: n });
        }
        if self.first_id < n {
            return Err(UserNsError::FirstIdTooLow { first_id: self.first_id, ids_per_pod: n });
        }
        if !self.length.is_multiple_of(n) {
            return Err(UserNsError::LengthNotMultiple { length: self.length, ids_per_pod: n });
        }
        if u64::from(self.first_id) + u64::from(self.length) > 1 << 32 {
            return Err(UserNsError::PastIdSpace { first_id: self.first_id, length: self.length });
        }
        if self.length / n < max_pods {
            return Err(UserNsError::TooFewIds(max_pods));
        }
        Ok(())
    }

    fn slots(&self) -> u32 {
        self.length / self.ids_per_pod
    }

    /// The first slot's host ID that overlaps no range in use (first ID, length).
    fn first_free(&self, used: &BTreeSet<(u32, u32)>) -> Option<u32> {
        let n = u64::from(self.ids_per_pod);
        let overlaps = |id: u64| used.iter().any(|&(h, l)| id < u64::from(h) + u64::from(l) && u64::from(h) < id + n);
        (0..u64::from(self.slots())).map(|i| u64::from(self.first_id) + i * n).find(|&id| !overlaps(id)).map(|id| id as u32)
    }
}

/// The kubelet's share from `getsubids` output (`0: kubelet 65536 65536`), upstream's parse.
pub fn parse_getsubids(out: &str) -> Result<(u32, u32), UserNsError> {
    let line = out.lines().next().unwrap_or_default();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [_, _, first, length] = parts.as_slice() else {
        return Err(UserNsError::GetSubIdsOutput { line: line.to_string(), reason: "it must contain 4 elements".into() });
    };
    let num = |s: &str| s.parse::<u32>().map_err(|e| UserNsError::GetSubIdsOutput { line: line.to_string(), reason: e.to_string() });
    Ok((num(first)?, num(length)?))
}

/// The kubelet's share of host IDs on this machine (see the module docs).
pub fn kubelet_ranges(ids_per_pod: u32) -> Result<IdRanges, UserNsError> {
    let has_user = std::fs::read_to_string("/etc/passwd").is_ok_and(|p| p.lines().any(|l| l.split(':').next() == Some("kubelet")));
    let tool = ["/usr/bin/getsubids", "/usr/local/bin/getsubids", "/bin/getsubids"].into_iter().map(Path::new).find(|p| p.exists());
    let (true, Some(tool)) = (has_user, tool) else { return Ok(IdRanges::default_for(ids_per_pod)) };
    let run = |args: &[&str]| -> Result<String, UserNsError> {
        let out = std::process::Command::new(tool)
            .args(args)
            .output()
            .map_err(|source| UserNsError::GetSubIdsRun { tool: tool.to_path_buf(), source })?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(UserNsError::GetSubIdsFailed(String::from_utf8_lossy(&out.stderr).trim().to_string())),
        }
    };
    let (uids, gids) = (run(&["kubelet"])?, run(&["-g", "kubelet"])?);
    if uids != gids {
        return Err(UserNsError::MismatchedSubIds);
    }
    let (first_id, length) = parse_getsubids(&uids)?;
    Ok(IdRanges { first_id, length, ids_per_pod })
}

/// Hands out and reads back the pods' ranges.
pub struct UserNamespaces {
    pods_dir: PathBuf,
    ranges: IdRanges,
    /// Serializes allocations (two pods must not both take the first free slot).
    lock: Mutex<()>,
}

impl UserNamespaces {
    /// Allocates pod ranges from `ranges`, storing each in its pod's directory under `root_dir`.
    pub fn new(root_dir: &Path, ranges: IdRanges) -> Self {
        Self { pods_dir: root_dir.join("pods"), ranges, lock: Mutex::new(()) }
    }

    fn file(&self, uid: &str) -> PathBuf {
        self.pods_dir.join(uid).join(MAPPINGS_FILE)
    }

    /// The CRI user namespace of `pod`: `NODE` unless it sets `hostUsers: false`; then its
    /// stored range, or a new one when `create` (the sandbox is being made) and the handler
    /// supports user namespaces.
    pub fn options(&self, pod: &Pod, handler: &str, handler_supports: bool, create: bool) -> Result<api::UserNamespace, UserNsError> {
        let node = api::UserNamespace { mode: api::NamespaceMode::Node as i32, ..Default::default() };
        if pod.spec.as_ref().and_then(|s| s.host_users) != Some(false) {
            return Ok(node);
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mappings = match self.read(uid)? {
            Some(m) => m,
            None if !create => return Err(UserNsError::NoMappings),
            None if !handler_supports => {
                return Err(UserNsError::HandlerUnsupported(handler.to_string()));
            }
            None => {
                let used = self.used()?;
                let host_id = self.ranges.first_free(&used).ok_or(UserNsError::NoFreeSlot)?;
                let m = PodMappings::of(host_id, self.ranges.ids_per_pod);
                let text = serde_json::to_vec(&m).map_err(UserNsError::Encode)?;
                let path = self.file(uid);
                write_durably(&path, &text).map_err(|source| UserNsError::Write { path: path.clone(), source })?;
                m
            }
        };
        let map = |v: &[IdMapping]| {
            v.iter().map(|m| api::IdMapping { host_id: m.host_id, container_id: m.container_id, length: m.length }).collect()
        };
        Ok(api::UserNamespace {
            mode: api::NamespaceMode::Pod as i32,
            uids: map(&mappings.uid_mappings),
            gids: map(&mappings.gid_mappings),
        })
    }

    /// A stored range must be one this kubelet could have handed out (upstream's `record`): in
    /// its share, on a slot boundary, never host ID 0.
    fn check_stored(&self, m: &PodMappings) -> Result<(), UserNsError> {
        let r = m.range().map_err(|e| UserNsError::Stored(Box::new(e)))?;
        let end = u64::from(self.ranges.first_id) + u64::from(self.ranges.length);
        let inside = r.host_id >= self.ranges.first_id && u64::from(r.host_id) + u64::from(r.length) <= end;
        if r.host_id == 0
            || r.length != self.ranges.ids_per_pod
            || !inside
            || !(r.host_id - self.ranges.first_id).is_multiple_of(self.ranges.ids_per_pod)
        {
            return Err(UserNsError::ForeignRange {
                host_id: r.host_id,
                length: r.length,
                first_id: self.ranges.first_id,
                share: self.ranges.length,
                ids_per_pod: self.ranges.ids_per_pod,
            });
        }
        Ok(())
    }

    /// Whether `pod` asks for a user namespace but has no range recorded: its sandbox was made
    /// without one (by a kubelet that ignored `hostUsers`) and must be made again.
    pub fn missing_for(&self, pod: &Pod) -> bool {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        pod.spec.as_ref().and_then(|s| s.host_users) == Some(false) && matches!(self.read(uid), Ok(None))
    }

    /// Pod `uid`'s stored mappings, `None` when it has none; an error when the file cannot be
    /// read, does not parse, or names a range this kubelet could not have handed out.
    fn read(&self, uid: &str) -> Result<Option<PodMappings>, UserNsError> {
        let path = self.file(uid);
        let text = match std::fs::read(&path) {
            Ok(t) if t.is_empty() => return Ok(None),
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(UserNsError::Read { path, source }),
        };
        let m: PodMappings = serde_json::from_slice(&text).map_err(|source| UserNsError::Decode { path: path.clone(), source })?;
        self.check_stored(&m)?;
        Ok(Some(m))
    }

    /// The range (first ID, length) of every pod directory. A file that cannot be read counts as
    /// nothing: its pod can never start again with it, and refusing every new pod over it
    /// would take the node down.
    fn used(&self) -> Result<BTreeSet<(u32, u32)>, UserNsError> {
        let dirs = match std::fs::read_dir(&self.pods_dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(UserNsError::ListPods(e)),
        };
        let mut used = BTreeSet::new();
        for entry in dirs.flatten() {
            let uid = entry.file_name().to_string_lossy().into_owned();
            let path = self.file(&uid);
            let Ok(text) = std::fs::read(&path) else { continue };
            if text.is_empty() {
                continue;
            }
            // Every range a file names stays taken, valid or not: its pod may still run in it.
            match serde_json::from_slice::<PodMappings>(&text) {
                Ok(m) => used.extend(m.uid_mappings.iter().chain(&m.gid_mappings).map(|r| (r.host_id, r.length))),
                Err(e) => tracing::warn!(pod = %uid, "user namespace: unreadable mappings file {}: {e}", path.display()),
            }
        }
        Ok(used)
    }
}

/// Writes `path` so that a crash leaves the old file or the new one, never a part: a
/// temporary file synced, renamed over it, and the directory synced.
fn write_durably(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(test)]
#[path = "userns_tests.rs"]
mod tests;
