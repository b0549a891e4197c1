//! Secrets and ConfigMaps the node's pods read, each kept current by a watch of that one object
//! (upstream's default `configMapAndSecretChangeDetectionStrategy: Watch`, its
//! `watch_based_manager`): a pod sync reads the cached object instead of a GET, so a node's API
//! load no longer grows with its pods times its sync frequency.
//!
//! The first read of an object starts its watch (a LIST with `fieldSelector=metadata.name=<name>`
//! in its namespace, then a WATCH from that version, which the Node authorizer allows for objects
//! the node's pods reference) and is answered by a GET; once the LIST has answered, reads come
//! from the cache: `Some(object)`, or `None` for an object that does not exist, until a watch
//! event changes it. A watch that fails keeps the last answer (as an informer does during an
//! outage) and lists again with backoff. A watch unread for [`IDLE`] ends (its pods are gone);
//! a later read starts it again. Upstream counts pod references instead; this needs no
//! registration, at the price of up to [`IDLE`] of watching after the last pod went.
//!
//! Each watch is a task owned by its entry: dropping the [`ObjectWatches`] aborts them all.
//!
//! Watches run in lanes ([`WatchLanes`]): each lane is one HTTP/2 connection of its own
//! (`crate::client`), holding at most [`STREAMS_PER_LANE`] watches, each of which uses its lane
//! for its LIST and its WATCH, so no connection carries more streams than kube-apiserver allows
//! (`--http2-max-streams-per-connection`, 100 by default; a stream over the limit would wait for
//! one to end, and watches end after minutes). At most [`LANES`] × [`STREAMS_PER_LANE`] objects
//! are watched at once (Secrets and ConfigMaps together); objects read beyond that are answered
//! by a GET at every read, as with the `Get` strategy, until watches end and make room.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::WatchEvent;
use kube::{Resource, ResourceExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::error::ApiError;

/// Watches one lane (one HTTP/2 connection) carries at most: below kube-apiserver's default
/// stream limit of 100, leaving room for a server that counts a stream a little longer.
pub const STREAMS_PER_LANE: usize = 90;
/// Lanes (connections) for object watches.
pub const LANES: usize = 6;

/// Room for watches, lane by lane; shared by the kinds whose watches share the connections.
pub struct WatchLanes(Vec<Arc<Semaphore>>);

impl WatchLanes {
    /// `lanes` lanes with room for `streams_per_lane` watches each.
    pub fn new(lanes: usize, streams_per_lane: usize) -> Self {
        WatchLanes((0..lanes).map(|_| Arc::new(Semaphore::new(streams_per_lane))).collect())
    }

    /// A place in the first lane with room: its index and the permit that holds it.
    fn take(&self) -> Option<(usize, OwnedSemaphorePermit)> {
        self.0.iter().enumerate().find_map(|(i, lane)| lane.clone().try_acquire_owned().ok().map(|p| (i, p)))
    }
}

impl Default for WatchLanes {
    fn default() -> Self {
        WatchLanes::new(LANES, STREAMS_PER_LANE)
    }
}

/// How long a watch nobody reads goes on.
pub const IDLE: Duration = Duration::from_secs(600);
/// The longest one WATCH request is waited on (the server's timeout is 290 s).
const WATCH_DEADLINE: Duration = Duration::from_secs(320);
/// How long a first read waits for its watch's LIST.
pub const FIRST_LIST_WAIT: Duration = Duration::from_secs(1);
/// The longest a LIST, or a WATCH's response headers, is waited on (a lane's connection may
/// be dead without a word until its keep-alive ping fails).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A watch that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The API calls one object's watch makes; [`crate::api::KubeApi`] implements it.
#[async_trait]
pub trait WatchSource<K>: Send + Sync + 'static {
    /// Object `namespace/name` (`None`: it does not exist) and the list's resource version.
    async fn list_one(&self, lane: usize, namespace: &str, name: &str) -> Result<(Option<K>, String), ApiError>;
    /// The changes of object `namespace/name` from `resource_version` on.
    async fn watch_one(
        &self,
        lane: usize,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>, ApiError>>, ApiError>;
}

/// The cached answer: `None` until the first LIST answered.
type Cached<K> = Option<Option<K>>;

struct Entry<K> {
    value: watch::Receiver<Cached<K>>,
    last_read: Arc<Mutex<Instant>>,
    task: tokio::task::AbortHandle,
}

impl<K> Drop for Entry<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches of single objects of kind `K`, by namespace and name.
pub struct ObjectWatches<K> {
    source: Arc<dyn WatchSource<K>>,
    entries: Mutex<HashMap<(String, String), Entry<K>>>,
    idle: Duration,
    /// Room for watches, shared with the other kinds' watches.
    lanes: Arc<WatchLanes>,
    /// Whether running out of room was logged.
    over_budget_logged: std::sync::atomic::AtomicBool,
}

impl<K: Resource + Clone + Debug + Send + Sync + 'static> ObjectWatches<K> {
    /// Watches through `source`, with lanes of their own ([`LANES`] × [`STREAMS_PER_LANE`]).
    pub fn new(source: Arc<dyn WatchSource<K>>) -> Self {
        Self::sharing(source, Arc::default())
    }

    /// Watches that take their room in `lanes` with other kinds' watches.
    pub fn sharing(source: Arc<dyn WatchSource<K>>, lanes: Arc<WatchLanes>) -> Self {
        Self { source, entries: Mutex::new(HashMap::new()), idle: IDLE, lanes, over_budget_logged: Default::default() }
    }

    /// Like [`ObjectWatches::new`], with watches ending after `idle` unread instead of [`IDLE`].
    pub fn with_idle(source: Arc<dyn WatchSource<K>>, idle: Duration) -> Self {
        Self { idle, ..Self::new(source) }
    }

    /// The cached object `namespace/name` when its watch has answered (`Some(None)`: it does
    /// not exist); `None` when the caller must ask the API server itself. Starts the watch when
    /// none runs.
    pub fn cached(&self, namespace: &str, name: &str) -> Cached<K> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        if let Some(e) = entries.get(&key).filter(|e| !e.task.is_finished()) {
            *e.last_read.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            return e.value.borrow().clone();
        }
        entries.retain(|_, e| !e.task.is_finished());
        let Some((lane, permit)) = self.lanes.take() else {
            if !self.over_budget_logged.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    namespace,
                    name,
                    "{} objects are watched already; objects beyond are read with a GET at every read",
                    LANES * STREAMS_PER_LANE
                );
            }
            return None;
        };
        let (tx, rx) = watch::channel(None);
        let last_read = Arc::new(Mutex::new(Instant::now()));
        let task = tokio::spawn(run(self.source.clone(), (lane, permit), key.clone(), tx, last_read.clone(), self.idle)).abort_handle();
        entries.insert(key, Entry { value: rx, last_read, task });
        None
    }

    /// [`Self::cached`], waiting up to [`FIRST_LIST_WAIT`] for a watch just started to list
    /// (upstream waits for its first list too), so the first read of an object does not cost
    /// a GET on top of the LIST.
    pub async fn read(&self, namespace: &str, name: &str) -> Cached<K> {
        if let Some(found) = self.cached(namespace, name) {
            return Some(found);
        }
        let rx =
            self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(&(namespace.to_string(), name.to_string())).map(|e| e.value.clone());
        let mut rx = rx?;
        let _ = tokio::time::timeout(FIRST_LIST_WAIT, rx.wait_for(Option::is_some)).await;
        rx.borrow().clone()
    }

    /// How many watches run.
    pub fn running(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).values().filter(|e| !e.task.is_finished()).count()
    }
}

/// One object's watch: LIST, then WATCH until it fails or ends, again, until unread for `idle`.
/// Its place in `lane` is held for as long as the watch runs (aborted or ended).
async fn run<K: Resource + Clone + Debug + Send + Sync + 'static>(
    source: Arc<dyn WatchSource<K>>,
    (lane, _place): (usize, OwnedSemaphorePermit),
    key: (String, String),
    tx: watch::Sender<Cached<K>>,
    last_read: Arc<Mutex<Instant>>,
    idle: Duration,
) {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let idle_now = || last_read.lock().unwrap_or_else(|p| p.into_inner()).elapsed() >= idle;
    // Kept across lists: it only goes back to 1 s once a watch has lasted (upstream's
    // reflector), so a watch that fails at once is not retried every second for ever.
    let mut backoff = Duration::from_secs(1);
    loop {
        if idle_now() {
            return;
        }
        let listed = tokio::time::timeout(REQUEST_TIMEOUT, source.list_one(lane, ns, name))
            .await
            .unwrap_or_else(|_| Err(timed_out(ns, name, "list")));
        let (object, mut version) = match listed {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(namespace = ns, name, "listing a watched object: {e}");
                pause(&mut backoff).await;
                continue;
            }
        };
        tx.send_replace(Some(object));
        // Watch from the list's version until an error asks for a new list.
        'watch: loop {
            if idle_now() {
                return;
            }
            let started = Instant::now();
            let opened = tokio::time::timeout(REQUEST_TIMEOUT, source.watch_one(lane, ns, name, &version))
                .await
                .unwrap_or_else(|_| Err(timed_out(ns, name, "watch")));
            let mut stream = match opened {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(namespace = ns, name, "watching an object: {e}");
                    pause(&mut backoff).await;
                    break 'watch;
                }
            };
            // The server ends a watch after its timeout; a connection that died without a word
            // would otherwise be waited on for ever, serving the old object.
            let deadline = started + WATCH_DEADLINE;
            loop {
                let event = match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(_) => {
                        tracing::debug!(namespace = ns, name, "watch of an object outlived its deadline; watching again");
                        break;
                    }
                };
                match event {
                    Ok(WatchEvent::Added(k) | WatchEvent::Modified(k)) => {
                        version = k.resource_version().unwrap_or(version);
                        tx.send_replace(Some(Some(k)));
                    }
                    Ok(WatchEvent::Deleted(k)) => {
                        version = k.resource_version().unwrap_or(version);
                        tx.send_replace(Some(None));
                    }
                    Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                    // 410 Gone: the version is too old, list again (at once the first time);
                    // anything else: list again after a pause.
                    // The stream goes before any pause: unread, it would hold its share of
                    // the lane connection's flow-control window and a server stream.
                    Ok(WatchEvent::Error(status)) => {
                        drop(stream);
                        if status.code != 410 || started.elapsed() < STABLE {
                            tracing::warn!(namespace = ns, name, "watch of an object: {} {}", status.code, status.message);
                            pause(&mut backoff).await;
                        }
                        break 'watch;
                    }
                    Err(e) => {
                        drop(stream);
                        tracing::warn!(namespace = ns, name, "watch of an object: {e}");
                        pause(&mut backoff).await;
                        break 'watch;
                    }
                }
            }
            drop(stream);
            if started.elapsed() >= STABLE {
                backoff = Duration::from_secs(1);
            } else {
                // One that ends at once is not retried in a tight loop.
                pause(&mut backoff).await;
            }
        }
    }
}

fn timed_out(namespace: &str, name: &str, verb: &str) -> ApiError {
    ApiError::Transport { what: format!("{namespace}/{name} ({verb})"), message: format!("no answer within {REQUEST_TIMEOUT:?}") }
}

/// Sleeps `backoff`, then doubles it up to [`MAX_BACKOFF`].
async fn pause(backoff: &mut Duration) {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::time::sleep(wait).await;
}

#[cfg(test)]
#[path = "object_watch_tests.rs"]
mod tests;
