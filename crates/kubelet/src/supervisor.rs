//! Owns the kubelet's long-lived tasks: pod sources, the PLEG, the sync loop, the cluster
//! controllers and the HTTP servers.
//!
//! Upstream runs these as goroutines, and a panic in any of them ends the process. Here every
//! task is spawned into one [`Supervisor`] under a name and a [`Stage`]: the first task to panic
//! or fail is logged by name at once and stops the kubelet with an error (the binary then exits
//! non-zero, so a service manager restarts it), instead of leaving a node that looks alive with
//! a dead PLEG or sync loop. A task that simply returns is logged and is not a failure.
//!
//! Shutdown is ordered: each stage has its own cancellation token and the stages stop one after
//! the other, each within a deadline, so the servers stop answering first, then the pod
//! machinery, and the API reporters (node status, lease, pod statuses, events) last, sending
//! what the earlier stages left them. A task still running at its stage's deadline is aborted
//! and named in the log.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::{Duration, Instant, timeout_at};
use tokio_util::sync::CancellationToken;

/// When a task stops during shutdown; stages stop in the order of [`Stage::SHUTDOWN_ORDER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The HTTP servers and the device plugin registration socket: stop answering first.
    Serve,
    /// Pod sources, pod config, the PLEG, eviction, the sync loop and the pod workers.
    Sync,
    /// Node status, the lease, pod statuses, mirror pods and events: last, to send what is left.
    Report,
}

impl Stage {
    /// The order in which stages are cancelled on shutdown.
    pub const SHUTDOWN_ORDER: [Stage; 3] = [Stage::Serve, Stage::Sync, Stage::Report];
}

/// How a supervised task ended the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure<E: std::error::Error + 'static> {
    /// The task panicked.
    #[error("kubelet task {task:?} panicked: {message}")]
    Panicked {
        /// The task's name, as it was spawned.
        task: &'static str,
        /// The panic's message (`(no message)` when its payload is not a string).
        message: String,
    },
    /// The task returned an error.
    #[error("{error}")]
    Failed {
        /// The task's name, as it was spawned.
        task: &'static str,
        /// The error the task returned.
        error: E,
    },
}

struct Entry {
    stage: Stage,
    name: &'static str,
    abort: AbortHandle,
}

/// The kubelet's long-lived tasks, their stages and the shutdown that stops them.
pub struct Supervisor<E> {
    tasks: JoinSet<Result<(), E>>,
    entries: HashMap<Id, Entry>,
    tokens: HashMap<Stage, CancellationToken>,
    shutdown: CancellationToken,
}

impl<E: std::error::Error + Send + 'static> Supervisor<E> {
    /// A supervisor that begins its ordered shutdown when `shutdown` is cancelled (a signal), or
    /// when a task fails (it then cancels `shutdown` too, for anything else holding it).
    pub fn new(shutdown: CancellationToken) -> Self {
        let tokens = Stage::SHUTDOWN_ORDER.into_iter().map(|s| (s, CancellationToken::new())).collect();
        Supervisor { tasks: JoinSet::new(), entries: HashMap::new(), tokens, shutdown }
    }

    /// The token the tasks of `stage` stop on.
    pub fn token(&self, stage: Stage) -> CancellationToken {
        self.tokens[&stage].clone()
    }

    /// Spawns a task that runs until its stage's token is cancelled and may fail.
    pub fn spawn_fallible(&mut self, stage: Stage, name: &'static str, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        let abort = self.tasks.spawn(task);
        self.entries.insert(abort.id(), Entry { stage, name, abort });
    }

    /// Spawns a task that runs until its stage's token is cancelled; only a panic fails it.
    pub fn spawn(&mut self, stage: Stage, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn_fallible(stage, name, async move {
            task.await;
            Ok(())
        });
    }

    /// Names of the tasks still running, in no particular order.
    pub fn running(&self) -> Vec<&'static str> {
        self.entries.values().map(|e| e.name).collect()
    }

    /// Runs until shutdown or the first failure, then stops the stages in order, giving each
    /// `stage_deadline`. Returns the first failure, if any.
    pub async fn run(mut self, stage_deadline: Duration) -> Result<(), TaskFailure<E>> {
        let mut failure = None;
        while failure.is_none() {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                next = self.tasks.join_next_with_id() => match next {
                    Some(done) => failure = self.settle(done, false),
                    // Nothing left to supervise.
                    None => break,
                },
            }
        }
        self.shutdown.cancel();
        for stage in Stage::SHUTDOWN_ORDER {
            self.tokens[&stage].cancel();
            let deadline = Instant::now() + stage_deadline;
            while self.entries.values().any(|e| e.stage == stage) {
                match timeout_at(deadline, self.tasks.join_next_with_id()).await {
                    Ok(Some(done)) => {
                        if let Some(f) = self.settle(done, true) {
                            failure.get_or_insert(f);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        for e in self.entries.values().filter(|e| e.stage == stage) {
                            tracing::warn!(task = e.name, "still running {stage_deadline:?} after shutdown began; aborted");
                            e.abort.abort();
                        }
                        self.entries.retain(|_, e| e.stage != stage);
                    }
                }
            }
        }
        self.tasks.shutdown().await;
        failure.map_or(Ok(()), Err)
    }

    /// Records one finished task; a panic or an error is a failure.
    fn settle(&mut self, done: Result<(Id, Result<(), E>), JoinError>, stopping: bool) -> Option<TaskFailure<E>> {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(join) => join.id(),
        };
        let name = self.entries.remove(&id).map_or("unknown", |e| e.name);
        match done {
            Ok((_, Ok(()))) if stopping => {
                tracing::debug!(task = name, "stopped");
                None
            }
            Ok((_, Ok(()))) => {
                tracing::info!(task = name, "finished before shutdown");
                None
            }
            Ok((_, Err(error))) => {
                tracing::error!(task = name, "failed: {error}");
                Some(TaskFailure::Failed { task: name, error })
            }
            Err(join) if join.is_panic() => {
                let payload = join.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                tracing::error!(task = name, "panicked: {message}; stopping the kubelet");
                Some(TaskFailure::Panicked { task: name, message })
            }
            // Aborted by us at a deadline: already logged.
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("port taken")]
    struct PortTaken;

    type Log = Arc<Mutex<Vec<&'static str>>>;

    /// A task that records its name when its token is cancelled, then returns.
    async fn until_cancelled(token: CancellationToken, log: Log, name: &'static str) {
        token.cancelled().await;
        log.lock().unwrap().push(name);
    }

    #[tokio::test(start_paused = true)]
    async fn stages_stop_in_order_on_shutdown() {
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::<PortTaken>::new(shutdown.clone());
        let log = Log::default();
        // Spawned in the reverse of the shutdown order, so the order is the supervisor's doing.
        for (stage, name) in [(Stage::Report, "lease"), (Stage::Sync, "pleg"), (Stage::Serve, "healthz")] {
            // Each takes a little while to stop: a later stage must wait for it.
            let (log, token) = (log.clone(), sup.token(stage));
            sup.spawn(stage, name, async move {
                until_cancelled(token, log, name).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
        }
        let run = tokio::spawn(sup.run(Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(log.lock().unwrap().is_empty(), "nothing stops before shutdown");
        shutdown.cancel();
        run.await.unwrap().unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["healthz", "pleg", "lease"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_stops_the_kubelet_naming_the_task() {
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::<PortTaken>::new(shutdown.clone());
        let log = Log::default();
        sup.spawn(Stage::Serve, "healthz", until_cancelled(sup.token(Stage::Serve), log.clone(), "healthz"));
        sup.spawn(Stage::Report, "lease", until_cancelled(sup.token(Stage::Report), log.clone(), "lease"));
        sup.spawn(Stage::Sync, "pleg", async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            panic!("relist went wrong");
        });
        let started = Instant::now();
        let err = sup.run(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(3), "noticed at once");
        assert_eq!(err.to_string(), "kubelet task \"pleg\" panicked: relist went wrong");
        assert!(shutdown.is_cancelled(), "the rest of the process is told to stop");
        assert_eq!(*log.lock().unwrap(), vec!["healthz", "lease"], "the others stopped in order");
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_is_returned_and_an_early_return_is_not_a_failure() {
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::<PortTaken>::new(shutdown.clone());
        sup.spawn(Stage::Sync, "memory trimmer", async {});
        sup.spawn_fallible(Stage::Serve, "read-only server", async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err(PortTaken)
        });
        let token = sup.token(Stage::Sync);
        sup.spawn(Stage::Sync, "sync loop", async move { token.cancelled().await });
        match sup.run(Duration::from_secs(5)).await {
            Err(TaskFailure::Failed { task: "read-only server", error: PortTaken }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_ignoring_shutdown_is_aborted_at_its_deadline() {
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::<PortTaken>::new(shutdown.clone());
        let log = Log::default();
        sup.spawn(Stage::Sync, "stuck", std::future::pending());
        sup.spawn(Stage::Report, "events", until_cancelled(sup.token(Stage::Report), log.clone(), "events"));
        assert_eq!(sup.running().len(), 2);
        shutdown.cancel();
        let started = Instant::now();
        sup.run(Duration::from_secs(2)).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(*log.lock().unwrap(), vec!["events"], "later stages still stop");
    }
}
