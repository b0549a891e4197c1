//! Container log rotation (upstream `pkg/kubelet/logs`, the container log manager).
//!
//! Every `containerLogMonitorInterval` the running containers are listed; each one's CRI log
//! file (from `ContainerStatus`) that has reached `containerLogMaxSize` is rotated
//! ([`rotation`]): at most `containerLogMaxFiles` files are kept per container, older ones
//! gzip-compressed, and the runtime reopens the log with CRI `ReopenContainerLog` (the rename
//! is undone when it cannot). Up to `containerLogMaxWorkers` containers are handled at once. A
//! log file that vanished is reopened first. `kubectl logs -f` follows across a rotation (see
//! the server's `container_logs`).

pub mod rotation;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kubelet_config::KubeletConfiguration;
use kubelet_cri::{CriError, RuntimeService, api};
use tokio_util::sync::CancellationToken;

use rotation::RotationError;

/// `containerLogMaxSize`, `containerLogMaxFiles`, `containerLogMaxWorkers`,
/// `containerLogMonitorInterval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotationPolicy {
    /// `containerLogMaxSize` in bytes (default `10Mi`): a log at least this big is rotated.
    pub max_size: u64,
    /// `containerLogMaxFiles` (default 5): log files kept per container, the live one included.
    pub max_files: usize,
    /// `containerLogMaxWorkers` (default 1): containers whose logs are handled concurrently.
    pub max_workers: usize,
    /// `containerLogMonitorInterval` (default 10 s): how often the running containers' logs are
    /// checked.
    pub monitor_interval: Duration,
}

impl LogRotationPolicy {
    /// From the (validated) configuration.
    pub fn from_config(cfg: &KubeletConfiguration) -> Self {
        let max_size = kubelet_config::quantity::parse(&cfg.container_log_max_size).map(|q| q.value()).unwrap_or(10 << 20);
        Self {
            max_size: u64::try_from(max_size).unwrap_or(0),
            max_files: usize::try_from(cfg.container_log_max_files).unwrap_or(2),
            max_workers: usize::try_from(cfg.container_log_max_workers).unwrap_or(1).max(1),
            monitor_interval: cfg.container_log_monitor_interval,
        }
    }
}

/// Why one container's log was not rotated.
#[derive(Debug, thiserror::Error)]
pub enum LogRotationError {
    /// Compressing, removing or renaming the log files failed.
    #[error(transparent)]
    Files(#[from] RotationError),
    /// The runtime could not reopen the log after the rename (CRI `ReopenContainerLog`); the
    /// rename has been undone.
    #[error("failed to reopen container log {id:?}: {source}")]
    Reopen {
        /// The CRI container ID.
        id: String,
        /// The runtime's error.
        source: CriError,
    },
    /// The blocking file work panicked or was cancelled; holds the join error.
    #[error("log rotation task failed: {0}")]
    Task(String),
}

/// Rotates running containers' logs.
pub struct ContainerLogManager {
    runtime: Arc<dyn RuntimeService>,
    policy: LogRotationPolicy,
}

impl ContainerLogManager {
    /// A manager rotating the logs of `runtime`'s containers by `policy`.
    pub fn new(runtime: Arc<dyn RuntimeService>, policy: LogRotationPolicy) -> Self {
        Self { runtime, policy }
    }

    /// One round over the running containers.
    pub async fn rotate_logs(&self) -> Result<(), CriError> {
        let running = api::ContainerState::ContainerRunning as i32;
        let ids: Vec<String> = self.runtime.list_containers(None).await?.into_iter().filter(|c| c.state == running).map(|c| c.id).collect();
        futures::stream::iter(ids)
            .for_each_concurrent(self.policy.max_workers, |id| async move { self.process_container(&id).await })
            .await;
        Ok(())
    }

    async fn process_container(&self, id: &str) {
        let path = match self.runtime.container_status(id).await {
            Ok(s) if !s.log_path.is_empty() => PathBuf::from(s.log_path),
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(container = %id, "log rotation: container status: {e}");
                return;
            }
        };
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Err(e) = self.runtime.reopen_container_log(id).await {
                    tracing::warn!(container = %id, path = %path.display(), "container log does not exist and reopening it failed: {e}");
                    return;
                }
                match tokio::fs::metadata(&path).await {
                    Ok(m) => m.len(),
                    Err(e) => {
                        tracing::warn!(container = %id, path = %path.display(), "container log after reopening: {e}");
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(container = %id, path = %path.display(), "container log: {e}");
                return;
            }
        };
        if size < self.policy.max_size {
            return;
        }
        match self.rotate_log(id, &path).await {
            Ok(rotated) => {
                tracing::info!(container = %id, path = %path.display(), size, rotated = %rotated.display(), "rotated container log")
            }
            Err(e) => tracing::warn!(container = %id, path = %path.display(), size, "failed to rotate container log: {e}"),
        }
    }

    /// Rotates one log: prepares the rotated files, renames the log and has the runtime reopen
    /// it; returns the rotated file's name.
    pub async fn rotate_log(&self, id: &str, log: &Path) -> Result<PathBuf, LogRotationError> {
        let (owned, max_files) = (log.to_path_buf(), self.policy.max_files);
        let timestamp = k8s_openapi::jiff::Timestamp::now().strftime(rotation::TIMESTAMP_FORMAT).to_string();
        let rotated = tokio::task::spawn_blocking(move || {
            rotation::prepare(&owned, max_files)?;
            rotation::rename_latest(&owned, &timestamp)
        })
        .await
        .map_err(|e| LogRotationError::Task(e.to_string()))??;
        if let Err(source) = self.runtime.reopen_container_log(id).await {
            if let Err(e) = std::fs::rename(&rotated, log) {
                tracing::error!(container = %id, "renaming the rotated log {} back to {} failed: {e}", rotated.display(), log.display());
            }
            return Err(LogRotationError::Reopen { id: id.into(), source });
        }
        Ok(rotated)
    }

    /// Rounds every `containerLogMonitorInterval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.policy.monitor_interval) => {}
            }
            if let Err(e) = self.rotate_logs().await {
                tracing::warn!("container log rotation: failed to list containers: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::FakeRuntime;

    #[tokio::test]
    async fn a_failed_reopen_puts_the_log_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        std::fs::write(&log, "line\n").unwrap();
        let runtime = Arc::new(FakeRuntime::new());
        let policy = LogRotationPolicy { max_size: 1, max_files: 5, max_workers: 1, monitor_interval: Duration::from_secs(10) };
        let err = ContainerLogManager::new(runtime, policy).rotate_log("missing", &log).await.unwrap_err();
        assert!(matches!(err, LogRotationError::Reopen { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "line\n", "renamed back");
        assert_eq!(rotation::rotated_files(&log).unwrap(), Vec::<PathBuf>::new());
    }

    #[test]
    fn policy_from_the_defaults() {
        let p = LogRotationPolicy::from_config(&KubeletConfiguration::default());
        assert_eq!(p, LogRotationPolicy { max_size: 10 << 20, max_files: 5, max_workers: 1, monitor_interval: Duration::from_secs(10) });
    }
}
