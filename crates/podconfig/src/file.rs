//! `StaticPodSource`: pods from `staticPodPath` (upstream `file.go` + `file_linux.go`).
//!
//! The path is a directory — every regular, non-hidden file directly in it, sorted, not
//! recursive — or a single file. Each file holds a v1 `Pod` or a v1 `PodList` in YAML or JSON
//! (upstream's `file.go` only takes a `Pod`; a list is accepted here as the URL source does).
//! inotify (the `notify` crate) makes changes show up promptly, and the whole path is
//! re-read every `check_frequency` as well, because upstream polls too and inotify can
//! miss changes (watch limits, a removed and re-created directory).
//!
//! Every read produces the complete set of the source's pods (SET semantics) and the
//! errors of the files that could not be used; an update is sent when either changed.
//! Upstream behaviour kept on purpose: in a directory, a file that fails to read or parse
//! contributes no pods, so its previously good pods are *dropped*; a single-file path that
//! fails keeps its previous pods (upstream returns before replacing its store). A missing
//! path yields an empty set so the source still counts as seen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval, sleep};
use tokio_util::sync::CancellationToken;

use crate::manifest::load_static_pods;
use crate::{PodSource, PodUpdate, SourceError, SourceRef};

/// How long to wait after an inotify event for the burst (write, chmod, rename) to settle.
const EVENT_SETTLE: Duration = Duration::from_millis(50);
/// How long a removal sent on its own stands before the re-added pods follow, so the kubelet
/// sees the pods go (the desired set is a watch value: only the latest is read).
const REMOVAL_GAP: Duration = Duration::from_millis(200);

/// Manifest paths the watcher saw removed, shared with its callback.
type Removed = Arc<std::sync::Mutex<std::collections::BTreeSet<PathBuf>>>;

/// Reads static pods from a directory or file and sends them as [`PodUpdate`]s.
#[derive(Debug, Clone)]
pub struct StaticPodSource {
    path: PathBuf,
    node_name: String,
    check_frequency: Duration,
}

/// An inotify watch and what it covers.
struct Watch {
    _watcher: RecommendedWatcher,
    target: PathBuf,
}

impl StaticPodSource {
    /// A source for `path` on node `node_name`, fully re-read every `check_frequency`.
    pub fn new(path: PathBuf, node_name: String, check_frequency: Duration) -> Self {
        Self { path, node_name, check_frequency }
    }

    /// Sends the pod set after every change until `shutdown` is cancelled or the receiver
    /// is dropped. The first set is sent at once, even when it is empty.
    pub async fn run(self, tx: mpsc::Sender<PodUpdate>, shutdown: CancellationToken) {
        tracing::info!(path = %self.path.display(), "watching static pod path");
        let (event_tx, mut events) = mpsc::channel::<()>(1);
        // Manifests the watcher saw removed since the last read (see `send_removals`).
        let removed: Removed = Arc::default();
        let mut watch: Option<Watch> = None;
        let mut resync = interval(self.check_frequency.max(Duration::from_millis(1)));
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last: Option<(Vec<Pod>, Vec<SourceError>)> = None;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = resync.tick() => {}
                Some(()) = events.recv() => {
                    sleep(EVENT_SETTLE).await;
                    while events.try_recv().is_ok() {}
                }
            }
            self.ensure_watch(&mut watch, &event_tx, &removed);
            let gone: Vec<PathBuf> = std::mem::take(&mut *removed.lock().expect("removed lock")).into_iter().collect();
            if let Some(interim) = self.removals(&gone, last.as_ref()).await {
                // Sent on its own, and given time to be seen, before the file's pods come back.
                last = Some(interim.clone());
                let update = PodUpdate { source: PodSource::File, pods: interim.0.into_iter().map(Arc::new).collect(), errors: interim.1 };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    sent = tx.send(update) => if sent.is_err() { return },
                }
                sleep(REMOVAL_GAP).await;
            }
            let previous = last.as_ref().map(|(pods, _)| pods.as_slice()).unwrap_or_default();
            let current = self.read(previous).await;
            if last.as_ref() == Some(&current) {
                continue;
            }
            let update =
                PodUpdate { source: PodSource::File, pods: current.0.iter().cloned().map(Arc::new).collect(), errors: current.1.clone() };
            tracing::debug!(pods = update.pods.len(), errors = update.errors.len(), "static pods changed");
            last = Some(current);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                sent = tx.send(update) => if sent.is_err() { return },
            }
        }
    }

    /// Reads every manifest: the pods to send and the files that failed.
    async fn read(&self, previous: &[Pod]) -> (Vec<Pod>, Vec<SourceError>) {
        let metadata = match tokio::fs::metadata(&self.path).await {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(path = %self.path.display(), "static pod path does not exist, ignoring");
                return (Vec::new(), Vec::new());
            }
            Err(e) => {
                return (previous.to_vec(), vec![self.error(&self.path, &e.to_string())]);
            }
        };
        if metadata.is_dir() {
            return self.read_dir().await;
        }
        if !metadata.is_file() {
            return (previous.to_vec(), vec![self.error(&self.path, "path is not a directory or file")]);
        }
        match self.read_file(&self.path).await {
            Ok(pods) => (pods, Vec::new()),
            Err(error) => (previous.to_vec(), vec![error]),
        }
    }

    async fn read_dir(&self) -> (Vec<Pod>, Vec<SourceError>) {
        let (mut pods, mut errors) = (Vec::new(), Vec::new());
        let mut entries = match tokio::fs::read_dir(&self.path).await {
            Ok(entries) => entries,
            Err(e) => return (pods, vec![self.error(&self.path, &e.to_string())]),
        };
        let mut paths = Vec::new();
        while let Ok(Some(entry)) = entries.next_entry().await {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                paths.push(entry.path());
            }
        }
        paths.sort();
        for path in paths {
            match tokio::fs::metadata(&path).await {
                Ok(m) if m.is_dir() => {
                    tracing::debug!(path = %path.display(), "not recursing into manifest directory")
                }
                Ok(m) if m.is_file() => match self.read_file(&path).await {
                    Ok(file_pods) => pods.extend(file_pods),
                    Err(error) => errors.push(error),
                },
                Ok(_) => errors.push(self.error(&path, "manifest path is not a directory or file")),
                // Vanished between listing and stat (an editor's rename): skip, like upstream.
                Err(e) => tracing::debug!(path = %path.display(), error = %e, "can't get metadata"),
            }
        }
        (pods, errors)
    }

    async fn read_file(&self, path: &Path) -> Result<Vec<Pod>, SourceError> {
        let bytes = tokio::fs::read(path).await.map_err(|e| self.error(path, &e.to_string()))?;
        let source = SourceRef::File(path.to_path_buf());
        load_static_pods(&bytes, &self.node_name, &source).map_err(|e| {
            let name = path.display().to_string();
            let message = e.to_string();
            let message = message.strip_prefix(&format!("{name}: ")).unwrap_or(&message);
            self.error(path, message)
        })
    }

    fn error(&self, path: &Path, message: &str) -> SourceError {
        tracing::error!(path = %path.display(), "can't process static pod manifest: {message}");
        SourceError { path: path.display().to_string(), message: message.to_owned() }
    }

    /// A manifest removed and already written back within one burst of events (a static pod
    /// deleted and re-created, as upstream's mirror-pod conformance spec does): upstream's file
    /// source handles the removal event on its own, so the pod is removed and then added again
    /// (and restarts, counting one restart). Returns the set last sent without the pods of such
    /// files, when any of them had been sent.
    async fn removals(&self, gone: &[PathBuf], last: Option<&(Vec<Pod>, Vec<SourceError>)>) -> Option<(Vec<Pod>, Vec<SourceError>)> {
        let (sent, errors) = last?;
        let mut back = std::collections::HashSet::new();
        for path in gone.iter().filter(|p| p.is_file()) {
            if let Ok(pods) = self.read_file(path).await {
                back.extend(pods.into_iter().filter_map(|p| p.metadata.uid));
            }
        }
        let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
        if !sent.iter().any(|p| back.contains(&uid(p))) {
            return None;
        }
        tracing::info!(files = ?gone, "static pod manifests removed and written again: removing their pods first");
        Some((sent.iter().filter(|p| !back.contains(&uid(p))).cloned().collect(), errors.clone()))
    }

    /// Watches the directory, or the parent of a single file (so that replacing the file
    /// by rename is seen). Re-established when the target changes or disappears.
    fn ensure_watch(&self, watch: &mut Option<Watch>, events: &mpsc::Sender<()>, removed: &Removed) {
        let (target, only) = if self.path.is_dir() {
            (self.path.clone(), None)
        } else {
            let parent = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            (parent.to_path_buf(), self.path.file_name().map(ToOwned::to_owned))
        };
        if !target.is_dir() {
            *watch = None;
            return;
        }
        if watch.as_ref().is_some_and(|w| w.target == target) {
            return;
        }
        let events = events.clone();
        let removed = removed.clone();
        let handler = move |result: notify::Result<notify::Event>| {
            let relevant = match result {
                Ok(event) => {
                    let relevant = is_relevant(&event, only.as_deref());
                    if relevant && matches!(event.kind, EventKind::Remove(_)) {
                        removed.lock().expect("removed lock").extend(event.paths.iter().cloned());
                    }
                    relevant
                }
                Err(_) => true,
            };
            if relevant {
                let _ = events.try_send(());
            }
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            w.watch(&target, RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        match watcher {
            Ok(watcher) => *watch = Some(Watch { _watcher: watcher, target }),
            Err(e) => {
                tracing::warn!(path = %target.display(), error = %e, "unable to watch static pod path; polling only");
                *watch = None;
            }
        }
    }
}

/// Our own reads raise open/access events; they and hidden files must not trigger re-reads.
fn is_relevant(event: &notify::Event, only: Option<&std::ffi::OsStr>) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    if event.paths.is_empty() {
        return true;
    }
    event.paths.iter().any(|path| match (path.file_name(), only) {
        (Some(name), Some(only)) => name == only,
        (Some(name), None) => !name.to_string_lossy().starts_with('.'),
        (None, _) => true,
    })
}
