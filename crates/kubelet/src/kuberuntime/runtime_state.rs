//! Reads the runtime's state back into the kubelet's [`PodStatus`] view (upstream `GetPodStatus`).
//!
//! Sandboxes and containers are found by their `io.kubernetes.pod.uid` label, so this works the
//! same for pods the kubelet just created and for pods a previous kubelet process left running.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use kubelet_cri::{RuntimeService, api};

use super::labels::{self, PodRef};
use crate::container::{ContainerState, ContainerStatus, PodStatus, SandboxState, SandboxStatus};

/// CRI timestamps are nanoseconds since the epoch; 0 means unset.
pub fn cri_time(nanos: i64) -> Option<SystemTime> {
    (nanos > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

fn container_state(state: i32) -> ContainerState {
    match api::ContainerState::try_from(state) {
        Ok(api::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(api::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(api::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

fn annotation_i32(a: &HashMap<String, String>, key: &str) -> i32 {
    a.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Decodes a listed container plus its full status.
pub fn to_container_status(c: &api::Container, s: Option<&api::ContainerStatus>) -> ContainerStatus {
    let annotations = &c.annotations;
    ContainerStatus {
        id: c.id.clone(),
        name: labels_name(c),
        state: container_state(s.map(|s| s.state).unwrap_or(c.state)),
        created_at: cri_time(c.created_at),
        started_at: s.and_then(|s| cri_time(s.started_at)),
        finished_at: s.and_then(|s| cri_time(s.finished_at)),
        exit_code: s.map(|s| s.exit_code).unwrap_or(0),
        // The status names the image by tag (containerd resolves it); the listing only by ID.
        image: s
            .and_then(|s| s.image.as_ref())
            .map(|i| if i.user_specified_image.is_empty() { i.image.clone() } else { i.user_specified_image.clone() })
            .filter(|i| !i.is_empty())
            .or_else(|| c.image.as_ref().map(|i| i.image.clone()))
            .unwrap_or_default(),
        image_ref: c.image_ref.clone(),
        hash: annotations.get(labels::CONTAINER_HASH).cloned().unwrap_or_default(),
        restart_count: annotation_i32(annotations, labels::CONTAINER_RESTART_COUNT),
        reason: s.map(|s| s.reason.clone()).unwrap_or_default(),
        message: s.map(|s| s.message.clone()).unwrap_or_default(),
        termination_message_path: annotations.get(labels::TERMINATION_MESSAGE_PATH).cloned().unwrap_or_default(),
        recursive_read_only_paths: s
            .map(|s| s.mounts.iter().filter(|m| m.recursive_read_only).map(|m| m.container_path.clone()).collect())
            .unwrap_or_default(),
    }
}

fn labels_name(c: &api::Container) -> String {
    c.labels.get(labels::CONTAINER_NAME).cloned().or_else(|| c.metadata.as_ref().map(|m| m.name.clone())).unwrap_or_default()
}

/// Decodes a listed sandbox plus, for ready sandboxes, its status (addresses, namespaces).
pub fn to_sandbox_status(s: &api::PodSandbox, status: Option<&api::PodSandboxStatus>) -> SandboxStatus {
    let network = status.and_then(|st| st.network.as_ref());
    let mut ips: Vec<String> = network.map(|n| n.ip.clone()).into_iter().filter(|ip| !ip.is_empty()).collect();
    ips.extend(network.into_iter().flat_map(|n| n.additional_ips.iter().map(|i| i.ip.clone())));
    let host_network = status
        .and_then(|st| st.linux.as_ref())
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref())
        .is_some_and(|o| o.network == api::NamespaceMode::Node as i32);
    SandboxStatus {
        id: s.id.clone(),
        state: if s.state == api::PodSandboxState::SandboxReady as i32 { SandboxState::Ready } else { SandboxState::NotReady },
        attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
        created_at: cri_time(s.created_at),
        ips,
        host_network,
    }
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(labels::POD_UID.to_string(), uid.to_string())])
}

/// Everything the runtime has for pod `uid`, newest first.
pub async fn get_pod_status(runtime: &dyn RuntimeService, pod: &PodRef) -> kubelet_cri::Result<PodStatus> {
    let sandboxes =
        runtime.list_pod_sandbox(Some(api::PodSandboxFilter { label_selector: uid_filter(&pod.uid), ..Default::default() })).await?;
    let containers =
        runtime.list_containers(Some(api::ContainerFilter { label_selector: uid_filter(&pod.uid), ..Default::default() })).await?;
    let mut out = PodStatus { uid: pod.uid.clone(), name: pod.name.clone(), namespace: pod.namespace.clone(), ..Default::default() };
    for s in &sandboxes {
        let status = if s.state == api::PodSandboxState::SandboxReady as i32 {
            match runtime.pod_sandbox_status(&s.id).await {
                Ok(st) => Some(st),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.sandboxes.push(to_sandbox_status(s, status.as_ref()));
    }
    for c in &containers {
        match runtime.container_status(&c.id).await {
            Ok(st) => {
                let mut status = to_container_status(c, Some(&st));
                if status.state == ContainerState::Exited {
                    append_termination_message(&mut status, &st, &c.annotations);
                }
                out.containers.push(status)
            }
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        }
    }
    out.sandboxes.sort_by_key(|s| std::cmp::Reverse((s.attempt, s.created_at)));
    out.containers.sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.created_at)));
    Ok(out)
}

/// Upstream's limits: the message file is read up to its last 4 KiB; the log fallback is the
/// last 80 lines, at most 2 KiB of them.
const MAX_TERMINATION_MESSAGE: u64 = 4096;
const TERMINATION_LOG_LINES: u64 = 80;
const TERMINATION_LOG_BYTES: usize = 2048;
/// How much of a log file's end is read to find its last lines.
const LOG_TAIL_WINDOW: u64 = 64 * 1024;

/// Adds what the container wrote to its `terminationMessagePath` (or, with
/// `FallbackToLogsOnError` after a failure, the end of its log) to its status message, as
/// upstream's `toKubeContainerStatus` does.
fn append_termination_message(status: &mut ContainerStatus, st: &api::ContainerStatus, annotations: &HashMap<String, String>) {
    let policy = annotations.get(labels::TERMINATION_MESSAGE_POLICY).map(String::as_str).unwrap_or("File");
    // A container that could not even start has no logs to fall back to.
    let fallback = policy == "FallbackToLogsOnError" && status.exit_code != 0 && status.reason != "ContainerCannotRun";
    let (mut message, check_logs) = termination_file_message(st, &status.termination_message_path, fallback);
    if check_logs && !st.log_path.is_empty() {
        message = last_log_lines(std::path::Path::new(&st.log_path));
    }
    if !message.is_empty() {
        if !status.message.is_empty() {
            status.message.push_str(": ");
        }
        status.message.push_str(&message);
    }
}

/// The termination message file, found among the container's mounts by its path inside the
/// container; and whether to fall back to the logs (no file, or an empty one).
fn termination_file_message(st: &api::ContainerStatus, path: &str, fallback: bool) -> (String, bool) {
    if path.is_empty() {
        return (String::new(), fallback);
    }
    let Some(mount) = st.mounts.iter().find(|m| m.container_path == path) else {
        return (String::new(), fallback);
    };
    match read_tail(std::path::Path::new(&mount.host_path), MAX_TERMINATION_MESSAGE) {
        Ok(data) => {
            let empty = data.is_empty();
            (String::from_utf8_lossy(&data).into_owned(), fallback && empty)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), fallback),
        Err(e) => (format!("Error on reading termination log {}: {e}", mount.host_path), false),
    }
}

/// The last `max` bytes of a file.
fn read_tail(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut data = Vec::new();
    f.take(max).read_to_end(&mut data)?;
    Ok(data)
}

/// The messages of the last lines of a CRI log file, as `kubectl logs --tail=80
/// --limit-bytes=2048` would show them.
fn last_log_lines(path: &std::path::Path) -> String {
    let Ok(text) = read_tail(path, LOG_TAIL_WINDOW) else { return String::new() };
    let start = crate::server::secure::cri_log::tail_start(&text, TERMINATION_LOG_LINES);
    let mut out = Vec::new();
    crate::server::secure::cri_log::render(&text[start..], &Default::default(), &mut out);
    out.truncate(TERMINATION_LOG_BYTES);
    String::from_utf8_lossy(&out).into_owned()
}

/// A cheap summary of one relist, for the PLEG: per pod, each container's and sandbox's state.
pub type RelistSnapshot = BTreeMap<String, (PodRef, BTreeMap<String, i32>)>;

/// Lists every kubelet-managed sandbox and container with two CRI calls
/// (IDs, states and labels only: [`RuntimeService::relist_pod_sandboxes`] and
/// [`RuntimeService::relist_containers`]).
pub async fn relist(runtime: &dyn RuntimeService) -> kubelet_cri::Result<RelistSnapshot> {
    let mut out = RelistSnapshot::new();
    for s in runtime.relist_pod_sandboxes().await? {
        if let Some(r) = labels::pod_ref(&s.labels) {
            out.entry(r.uid.clone()).or_insert_with(|| (r, BTreeMap::new())).1.insert(s.id, s.state + 100);
        }
    }
    for c in runtime.relist_containers().await? {
        if let Some(r) = labels::pod_ref(&c.labels) {
            out.entry(r.uid.clone()).or_insert_with(|| (r, BTreeMap::new())).1.insert(c.id, c.state);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod termination_tests {
    use super::*;

    fn exited(exit_code: i32, reason: &str) -> ContainerStatus {
        ContainerStatus {
            id: "c1".into(),
            name: "app".into(),
            state: ContainerState::Exited,
            created_at: None,
            started_at: None,
            finished_at: None,
            exit_code,
            image: String::new(),
            image_ref: String::new(),
            hash: String::new(),
            restart_count: 0,
            reason: reason.into(),
            message: String::new(),
            termination_message_path: "/dev/termination-log".into(),
            recursive_read_only_paths: Vec::new(),
        }
    }

    fn cri_status(dir: &std::path::Path, file: Option<&str>, log: &str) -> api::ContainerStatus {
        let host = dir.join("termination");
        if let Some(text) = file {
            std::fs::write(&host, text).unwrap();
        }
        let log_path = dir.join("0.log");
        std::fs::write(&log_path, log).unwrap();
        api::ContainerStatus {
            mounts: vec![api::Mount {
                container_path: "/dev/termination-log".into(),
                host_path: host.to_string_lossy().into(),
                ..Default::default()
            }],
            log_path: log_path.to_string_lossy().into(),
            ..Default::default()
        }
    }

    fn policy(p: &str) -> HashMap<String, String> {
        HashMap::from([(labels::TERMINATION_MESSAGE_POLICY.to_string(), p.to_string())])
    }

    const LOG: &str = "2026-01-01T00:00:00.000000000Z stdout F first\n2026-01-01T00:00:01.000000000Z stderr F DONE\n";

    #[test]
    fn message_file_wins_and_is_cut_to_its_last_4_kib() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = exited(1, "Error");
        append_termination_message(&mut s, &cri_status(dir.path(), Some("bye"), LOG), &policy("FallbackToLogsOnError"));
        assert_eq!(s.message, "bye");
        let mut s = exited(0, "Completed");
        let long = format!("{}END", "x".repeat(5000));
        append_termination_message(&mut s, &cri_status(dir.path(), Some(&long), LOG), &policy("File"));
        assert_eq!(s.message.len(), 4096);
        assert!(s.message.ends_with("END"));
    }

    #[test]
    fn logs_are_the_fallback_only_on_error_with_that_policy() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = exited(2, "Error");
        append_termination_message(&mut s, &cri_status(dir.path(), Some(""), LOG), &policy("FallbackToLogsOnError"));
        assert_eq!(s.message, "first\nDONE\n");
        let mut s = exited(0, "Completed");
        append_termination_message(&mut s, &cri_status(dir.path(), Some(""), LOG), &policy("FallbackToLogsOnError"));
        assert_eq!(s.message, "", "success: no fallback");
        let mut s = exited(2, "Error");
        append_termination_message(&mut s, &cri_status(dir.path(), Some(""), LOG), &policy("File"));
        assert_eq!(s.message, "", "File policy: no fallback");
        let mut s = exited(128, "ContainerCannotRun");
        append_termination_message(&mut s, &cri_status(dir.path(), None, LOG), &policy("FallbackToLogsOnError"));
        assert_eq!(s.message, "");
    }

    #[test]
    fn log_fallback_is_the_last_80_lines_within_2_kib() {
        let dir = tempfile::tempdir().unwrap();
        let log: String = (0..200).map(|i| format!("2026-01-01T00:00:00.000000000Z stdout F line{i}\n")).collect();
        let mut s = exited(1, "Error");
        s.message = "runtime said".into();
        append_termination_message(&mut s, &cri_status(dir.path(), None, &log), &policy("FallbackToLogsOnError"));
        assert!(s.message.starts_with("runtime said: line120\nline121\n"), "{}", &s.message[..40]);
        assert!(s.message.ends_with("line199\n"));
    }
}
