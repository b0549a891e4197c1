//! `GET /containerLogs/{namespace}/{pod}/{container}` (upstream `Server.getContainerLogs`): reads
//! the container's CRI log file and answers what `kubectl logs` prints, honouring `follow`,
//! `previous`, `tailLines`, `limitBytes`, `sinceSeconds`, `sinceTime` and `timestamps`.
//!
//! The file is streamed in blocks, never read whole: `tailLines` finds its start by reading
//! backwards from the end. With `follow` the response goes on with new lines until the container
//! stops or the client goes, across log rotations: the open file is read to its end, and when the
//! log's path names a new file (the kubelet renamed the old one and the runtime reopened it) the
//! new file is followed from its start.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::{RuntimeService, api};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::SecureContext;
use super::cri_log::{LogOptions, render};
use super::runtime_lookup::{PodRef, containers};
use crate::server::text;

/// How often a followed log file is polled for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// How often, while idle, a follower checks that the container still runs.
const FOLLOW_STATE_CHECK: Duration = Duration::from_secs(1);
/// How much of the log file is read at once.
const BLOCK: u64 = 64 * 1024;

fn now_nanos() -> i128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

pub(super) async fn container_logs(
    State(ctx): State<Arc<SecureContext>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let opts = match LogOptions::from_query(&query, now_nanos()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("invalid log options: {e}\n")),
    };
    if container.is_empty() {
        return text(StatusCode::BAD_REQUEST, "missing container name\n".into());
    }
    let Some(pod) = ctx.find_pod(&namespace, &pod_name) else {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} does not exist\n"));
    };
    let in_spec = pod.spec.as_ref().is_some_and(|s| {
        s.containers.iter().chain(s.init_containers.iter().flatten()).any(|c| c.name == container)
            || s.ephemeral_containers.iter().flatten().any(|c| c.name == container)
    });
    if !in_spec {
        return text(StatusCode::NOT_FOUND, format!("container {container:?} not found in pod {pod_name:?}\n"));
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let pod_ref = PodRef { namespace: &namespace, name: &pod_name, uid: &uid };
    let chosen_id = match container_id_from_status(&pod, &container, opts.previous) {
        Some(Ok(id)) => id,
        Some(Err(msg)) => return text(StatusCode::BAD_REQUEST, format!("{msg}\n")),
        // No status yet: the newest instance in the runtime (the one before it for `previous`).
        None => {
            let list = match containers(ctx.runtime.as_ref(), &pod_ref, &container).await {
                Ok(l) => l,
                Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("listing containers: {e}\n")),
            };
            match list.get(usize::from(opts.previous)) {
                Some(c) => c.id.clone(),
                None if opts.previous => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("previous terminated container {container:?} in pod {pod_name:?} not found\n"),
                    );
                }
                None => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("container {container:?} in pod {pod_name:?} is waiting to start: ContainerCreating\n"),
                    );
                }
            }
        }
    };
    let status = match ctx.runtime.container_status(&chosen_id).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("container {container:?} in pod {pod_name:?}: {e}\n")),
    };
    let path = PathBuf::from(&status.log_path);
    let (len, start) = match backlog_range(&path, opts.tail_lines).await {
        Ok(r) => r,
        Err(e) => {
            return text(StatusCode::BAD_REQUEST, format!("failed to read the log of container {container:?} in pod {pod_name:?}: {e}\n"));
        }
    };
    let running = status.state == api::ContainerState::ContainerRunning as i32;
    let follow = opts.follow && running;
    let budget = opts.limit_bytes.unwrap_or(u64::MAX);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let follower = Follower {
        runtime: ctx.runtime.clone(),
        container_id: chosen_id,
        path,
        offset: start,
        backlog_end: len,
        follow,
        opts,
        budget,
        file: None,
    };
    tokio::spawn(follower.run(tx));
    // The end of the body comes in a poll of its own, after the last chunk was flushed: upstream
    // flushes every write, so the body's last data and the chunked encoding's terminator reach the
    // API server in separate TLS records. Its WebSocket log streamer drops the data of a read that
    // also reports the end (`wsstream.messageCopy`), so one record holding both would leave a
    // WebSocket client (`kubectl logs` over WebSockets, the conformance spec) with an empty log.
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await;
        if item.is_none() {
            tokio::task::yield_now().await;
        }
        item.map(|item| (item, rx))
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(stream)).into_response()
}

/// The file's length now, and where the backlog starts: 0, or for `tailLines` the start of the
/// last `n` lines (a trailing line still being written counts as one, as upstream's tail does),
/// found by reading backwards from the end a block at a time.
async fn backlog_range(path: &std::path::Path, tail_lines: Option<u64>) -> std::io::Result<(u64, u64)> {
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    let Some(n) = tail_lines else { return Ok((len, 0)) };
    if n == 0 {
        return Ok((len, len));
    }
    // Scan [0, end) backwards for newlines; a final newline ends the last line, it starts none.
    let mut end = len;
    let mut seen = 0;
    let mut block = vec![0u8; BLOCK as usize];
    let mut first = true;
    while end > 0 {
        let from = end.saturating_sub(BLOCK);
        let size = (end - from) as usize;
        f.seek(SeekFrom::Start(from)).await?;
        f.read_exact(&mut block[..size]).await?;
        let mut bytes = &block[..size];
        if first {
            first = false;
            if bytes.last() == Some(&b'\n') {
                bytes = &bytes[..size - 1];
            }
        }
        for (i, b) in bytes.iter().enumerate().rev() {
            if *b == b'\n' {
                seen += 1;
                if seen == n {
                    return Ok((len, from + i as u64 + 1));
                }
            }
        }
        end = from;
    }
    Ok((len, 0))
}

/// The container whose log to serve, from the pod's status as upstream's
/// `validateContainerLogStatus` picks it: `previous` → the last terminated instance; else the
/// running one, else the terminated one (or the one before it if that never started). `None` when
/// the status has no entry for the container yet.
pub fn container_id_from_status(pod: &Pod, container: &str, previous: bool) -> Option<Result<String, String>> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let cs = status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .chain(status.ephemeral_container_statuses.iter())
        .flatten()
        .find(|c| c.name == container)?;
    let strip = |id: &str| crate::container::bare_container_id(id).to_string();
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).and_then(|t| t.container_id.as_deref()).filter(|i| !i.is_empty());
    let state = cs.state.as_ref();
    let running = state.and_then(|s| s.running.as_ref());
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let waiting = state.and_then(|s| s.waiting.as_ref());
    let terminated_msg = || format!("container {container:?} in pod {pod_name:?} is terminated");
    Some(if previous {
        last.map(strip).ok_or_else(|| format!("previous terminated container {container:?} in pod {pod_name:?} not found"))
    } else if running.is_some() {
        cs.container_id
            .as_deref()
            .filter(|i| !i.is_empty())
            .map(strip)
            .ok_or_else(|| format!("container {container:?} in pod {pod_name:?} is not available"))
    } else if let Some(t) = terminated {
        t.container_id.as_deref().filter(|i| !i.is_empty()).or(last).map(strip).ok_or_else(terminated_msg)
    } else if let Some(l) = last {
        Ok(strip(l))
    } else {
        let reason = waiting.and_then(|w| w.reason.clone()).unwrap_or_else(|| "ContainerCreating".into());
        Err(format!("container {container:?} in pod {pod_name:?} is waiting to start: {reason}"))
    })
}

/// Cuts `out` to what `budget` (remaining `limitBytes`) allows, and charges it.
fn truncate(out: &mut Vec<u8>, budget: &mut u64) {
    if out.len() as u64 > *budget {
        out.truncate(*budget as usize);
    }
    *budget -= out.len() as u64;
}

/// Streams one container's log: the backlog (`offset` up to `backlog_end`, complete lines only),
/// then, with `follow`, what the container appends until it stops or the client goes.
struct Follower {
    runtime: Arc<dyn RuntimeService>,
    container_id: String,
    path: PathBuf,
    offset: u64,
    backlog_end: u64,
    follow: bool,
    opts: LogOptions,
    budget: u64,
    /// The file being read and its identity (device, inode).
    file: Option<(tokio::fs::File, (u64, u64))>,
}

impl Follower {
    async fn run(mut self, tx: mpsc::Sender<Result<Bytes, std::io::Error>>) {
        // The backlog, a block at a time.
        while self.offset < self.backlog_end && self.budget > 0 {
            match self.read_new(Some(self.backlog_end)).await {
                Ok(chunk) if chunk.is_empty() => break,
                Ok(chunk) => {
                    if !self.send(&chunk, &tx).await {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
        if !self.follow {
            return;
        }
        let mut idle = Duration::ZERO;
        let mut stopped = false;
        loop {
            if tx.is_closed() || self.budget == 0 {
                return;
            }
            let chunk = match self.read_new(None).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(path = %self.path.display(), "following log: {e}");
                    return;
                }
            };
            if !chunk.is_empty() {
                idle = Duration::ZERO;
                if !self.send(&chunk, &tx).await {
                    return;
                }
                continue;
            }
            if self.rotated().await {
                // The runtime writes to the new file now; what reached the old one was read
                // above, but for lines that landed since: read it to its end, then switch.
                while let Ok(rest) = self.read_new(None).await
                    && !rest.is_empty()
                {
                    if !self.send(&rest, &tx).await {
                        return;
                    }
                }
                tracing::debug!(path = %self.path.display(), "log rotated; following the new file");
                self.file = None;
                self.offset = 0;
                continue;
            }
            if stopped {
                return;
            }
            if idle >= FOLLOW_STATE_CHECK {
                idle = Duration::ZERO;
                let running = api::ContainerState::ContainerRunning as i32;
                // Gone or stopped: read what is left once more, then end.
                stopped = self.runtime.container_status(&self.container_id).await.map(|s| s.state != running).unwrap_or(true);
                if stopped {
                    continue;
                }
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            idle += FOLLOW_POLL;
        }
    }

    /// Renders `chunk` (complete CRI lines), cuts it to the `limitBytes` budget and sends it;
    /// `false` when the client is gone.
    async fn send(&mut self, chunk: &[u8], tx: &mpsc::Sender<Result<Bytes, std::io::Error>>) -> bool {
        let mut out = Vec::new();
        render(chunk, &self.opts, &mut out);
        truncate(&mut out, &mut self.budget);
        out.is_empty() || tx.send(Ok(Bytes::from(out))).await.is_ok()
    }

    /// The next complete lines after `offset`, about a block of them (more only when one line is
    /// longer), not past `limit`; empty at the end. Starts over if the file shrank.
    async fn read_new(&mut self, limit: Option<u64>) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::MetadataExt;
        if self.file.is_none() {
            let f = tokio::fs::File::open(&self.path).await?;
            let m = f.metadata().await?;
            self.file = Some((f, (m.dev(), m.ino())));
        }
        let Some((f, _)) = self.file.as_mut() else { return Ok(Vec::new()) };
        let len = f.metadata().await?.len();
        if len < self.offset {
            self.offset = 0;
        }
        let end = limit.map_or(len, |l| l.min(len));
        if end <= self.offset {
            return Ok(Vec::new());
        }
        f.seek(SeekFrom::Start(self.offset)).await?;
        let mut buf = Vec::new();
        let mut at = self.offset;
        loop {
            let take = (end - at).min(BLOCK);
            let got = (&mut *f).take(take).read_to_end(&mut buf).await? as u64;
            at += got;
            // Stop at the block's last newline; read on only while no line has ended yet.
            if got == 0 || at >= end || buf.contains(&b'\n') {
                break;
            }
        }
        let complete = buf.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        buf.truncate(complete);
        self.offset += complete as u64;
        Ok(buf)
    }

    /// Whether the log's path now names another file than the one being read.
    async fn rotated(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some((_, id)) = &self.file else { return false };
        tokio::fs::metadata(&self.path).await.is_ok_and(|m| (m.dev(), m.ino()) != *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::secure::cri_log::tail_start;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, PodStatus,
    };

    fn pod(state: ContainerState, last_id: Option<&str>) -> Pod {
        let last = last_id.map(|id| ContainerState {
            terminated: Some(ContainerStateTerminated { container_id: Some(id.into()), ..Default::default() }),
            ..Default::default()
        });
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta { name: Some("p".into()), ..Default::default() },
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "c".into(),
                    container_id: Some("containerd://new".into()),
                    state: Some(state),
                    last_state: last,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn backlog_tail_matches_the_whole_file_tail_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        // Lines of varying length, some longer than a block, with and without a partial end.
        let mut text = Vec::new();
        for i in 0..400u64 {
            let len = if i % 97 == 0 { BLOCK as usize + 10 } else { (i as usize * 37) % 300 };
            text.extend_from_slice(format!("2024-01-01T00:00:00Z stdout F {}\n", "x".repeat(len)).as_bytes());
        }
        for tail in [b"".as_slice(), b"2024-01-01T00:00:00Z stdout P partial"] {
            let mut data = text.clone();
            data.extend_from_slice(tail);
            std::fs::write(&path, &data).unwrap();
            for n in [0, 1, 2, 3, 50, 96, 97, 98, 399, 400, 401, 10_000] {
                let (len, start) = backlog_range(&path, Some(n)).await.unwrap();
                assert_eq!(len, data.len() as u64);
                assert_eq!(start, tail_start(&data, n) as u64, "tailLines={n}, partial end {}", !tail.is_empty());
            }
            assert_eq!(backlog_range(&path, None).await.unwrap(), (data.len() as u64, 0));
        }
    }

    #[tokio::test]
    async fn follow_goes_on_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2024-01-01T00:00:01Z stdout F a\n").unwrap();
        let runtime: Arc<dyn RuntimeService> = Arc::new(test_support::FakeRuntime::new());
        let follower = Follower {
            runtime,
            container_id: "c".into(),
            path: path.clone(),
            offset: 0,
            backlog_end: 32,
            follow: true,
            opts: LogOptions::default(),
            budget: u64::MAX,
            file: None,
        };
        let (tx, mut rx) = mpsc::channel(4);
        tokio::spawn(follower.run(tx));
        assert_eq!(rx.recv().await.unwrap().unwrap(), Bytes::from_static(b"a\n"));
        // The old file gets a last line, is renamed, and the runtime starts a new one.
        let mut old = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut old, b"2024-01-01T00:00:02Z stdout F b\n").unwrap();
        std::fs::rename(&path, dir.path().join("0.log.20240101-000002")).unwrap();
        std::fs::write(&path, "2024-01-01T00:00:03Z stdout F c\n").unwrap();
        let mut got = Vec::new();
        while got != b"b\nc\n" {
            let chunk = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("more log").unwrap().unwrap();
            got.extend_from_slice(&chunk);
        }
    }

    #[test]
    fn picks_the_instance_as_upstream() {
        let running = ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() };
        let p = pod(running.clone(), Some("containerd://old"));
        assert_eq!(container_id_from_status(&p, "c", false), Some(Ok("new".into())));
        assert_eq!(container_id_from_status(&p, "c", true), Some(Ok("old".into())));
        assert_eq!(container_id_from_status(&p, "other", false), None);
        let p = pod(running, None);
        assert_eq!(container_id_from_status(&p, "c", true), Some(Err("previous terminated container \"c\" in pod \"p\" not found".into())));
        // Waiting in back-off after a crash: the current log is the last terminated instance.
        let waiting = ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some("CrashLoopBackOff".into()), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(container_id_from_status(&pod(waiting.clone(), Some("containerd://old")), "c", false), Some(Ok("old".into())));
        let e = container_id_from_status(&pod(waiting, None), "c", false).unwrap().unwrap_err();
        assert_eq!(e, "container \"c\" in pod \"p\" is waiting to start: CrashLoopBackOff");
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated { container_id: Some("containerd://t".into()), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(container_id_from_status(&pod(terminated, None), "c", false), Some(Ok("t".into())));
    }
}
