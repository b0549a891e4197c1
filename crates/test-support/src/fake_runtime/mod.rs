//! [`FakeRuntime`]: an in-memory CRI runtime and image service.
//!
//! It keeps sandboxes, containers and images the way containerd does (64-hex IDs, reserved names,
//! CRI states, nanosecond timestamps, `Completed`/`Error`/`StartError` reasons), records every call
//! for assertions, and lets a test drive what a real runtime does on its own: a container exiting,
//! a start or a pull failing. Time comes from `tokio::time`, so paused tests see timestamps move
//! only when they advance the clock.
//!
//! Split: this file holds the state and the test controls; `runtime.rs` and `image.rs` implement
//! the traits; `filter.rs` the list filters.

mod filter;
mod image;
mod runtime;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use kubelet_cri::{Code, CriError, api};

/// Exit code and reason containerd reports for a container whose start failed.
const START_ERROR_EXIT_CODE: i32 = 128;

/// An in-memory runtime implementing [`kubelet_cri::RuntimeService`] and
/// [`kubelet_cri::ImageService`]. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    clock: Clock,
}

/// Wall-clock nanoseconds derived from `tokio::time`, so paused tests control them.
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall_at_start: i64,
    start: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self { wall_at_start: i64::try_from(wall).unwrap_or(i64::MAX), start: tokio::time::Instant::now() }
    }

    fn now_nanos(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        self.wall_at_start.saturating_add(elapsed)
    }
}

#[derive(Debug, Default)]
struct State {
    sandboxes: BTreeMap<String, Sandbox>,
    containers: BTreeMap<String, Container>,
    /// Images by ID.
    images: BTreeMap<String, api::Image>,
    pull_errors: HashMap<String, CriError>,
    /// How long a pull of an image takes (an unreachable registry), by normalized name.
    pull_delays: HashMap<String, std::time::Duration>,
    /// Start errors by container name (metadata name).
    start_errors: HashMap<String, CriError>,
    /// `CreateContainer` failures by container (metadata) name.
    create_errors: HashMap<String, CriError>,
    /// Container names whose next `StartContainer` is lost (the caller sees `Unavailable`, the
    /// container stays created), as when the kubelet or runtime goes away between create and start.
    lost_starts: std::collections::HashSet<String>,
    calls: Vec<String>,
    /// The newer CRI fields each container was created with, by container ID.
    extras: HashMap<String, kubelet_cri::ContainerConfigExtras>,
    /// The user namespace each container was created with.
    container_userns: HashMap<String, Option<api::UserNamespace>>,
    /// Memory usage (bytes) `ListContainerStats` reports per container.
    memory_usage: HashMap<String, u64>,
    /// `ExecSync` answers by container name (metadata name) and command joined with spaces;
    /// commands without an entry exit 0 with no output.
    exec_results: HashMap<(String, String), ExecAnswer>,
    /// Base URL `Exec`/`Attach`/`PortForward` answer with (`<base>/<op>/<id>`); unset: Unimplemented.
    streaming_base: Option<String>,
    next_id: u64,
    next_ip: u32,
}

#[derive(Debug)]
struct Sandbox {
    status: api::PodSandboxStatus,
    /// The reserved name `<name>_<namespace>_<uid>_<attempt>`, as containerd reserves it.
    name: String,
    log_directory: String,
}

/// How a faked `ExecSync` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecAnswer {
    /// The command exits with this code and prints this on stdout.
    Exit(i32, String),
    /// The command never finishes: the call fails with a timeout once its timeout passes (or
    /// never returns without one).
    Hang,
    /// The runtime cannot run the command (e.g. no such executable): the call fails.
    Refuse(String),
}

#[derive(Debug)]
struct Container {
    status: api::ContainerStatus,
    pod_sandbox_id: String,
    /// The reserved name `<container>_<pod>_<namespace>_<uid>_<attempt>`.
    name: String,
}

impl State {
    /// A fresh 64-hex ID, deterministic per fake.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        hex_id(self.next_id)
    }

    /// Resolves an ID or unique ID prefix, as containerd's stores do.
    fn resolve<'a, V>(map: &'a BTreeMap<String, V>, id: &str) -> Option<&'a str> {
        if id.is_empty() {
            return None;
        }
        let mut matches = map.range(id.to_owned()..).take_while(|(key, _)| key.starts_with(id));
        match (matches.next(), matches.next()) {
            (Some((key, _)), None) => Some(key.as_str()),
            _ => None,
        }
    }

    fn sandbox_id(&self, id: &str) -> Option<String> {
        Self::resolve(&self.sandboxes, id).map(str::to_owned)
    }

    fn container_id(&self, id: &str) -> Option<String> {
        Self::resolve(&self.containers, id).map(str::to_owned)
    }
}

/// 64 hex digits derived from `seed` (four rounds of splitmix64), shaped like containerd's IDs.
fn hex_id(seed: u64) -> String {
    let mut x = seed;
    let mut id = String::with_capacity(64);
    for _ in 0..4 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        id.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    id
}

fn not_found(op: &'static str, object: &str, what: &str) -> CriError {
    CriError::Status { op, object: object.to_owned(), code: Code::NotFound, message: format!("{what} {object:?} not found") }
}

fn failed(op: &'static str, object: &str, code: Code, message: String) -> CriError {
    CriError::Status { op, object: object.to_owned(), code, message }
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRuntime {
    /// An empty runtime: no sandboxes, containers or images.
    pub fn new() -> Self {
        Self { state: Arc::default(), clock: Clock::new() }
    }

    /// A runtime that already has `images` (as if pulled), e.g. `["busybox", "nginx:1.25"]`.
    pub fn with_images<I, S>(images: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let fake = Self::new();
        for name in images {
            fake.add_image(name.as_ref());
        }
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its own failure behind ours.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `Exec`, `Attach` and `PortForward` answer `<base>/exec/<container id>`,
    /// `<base>/attach/<container id>`, `<base>/portforward/<sandbox id>`.
    pub fn set_streaming_base(&self, base: &str) {
        self.lock().streaming_base = Some(base.trim_end_matches('/').to_owned());
    }

    /// Every call made so far, in order, as `"<CRI method> <object>"`: `"RunPodSandbox nginx"`
    /// (pod name), `"CreateContainer web"` (container name), `"StartContainer <id>"`,
    /// `"PullImage docker.io/library/busybox:latest"` (normalized), `"ListContainers"`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The calls whose method is `op` (e.g. `"StartContainer"`), with their objects.
    pub fn calls_of(&self, op: &str) -> Vec<String> {
        self.lock().calls.iter().filter(|call| call.split(' ').next() == Some(op)).cloned().collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes the runtime have image `name` (normalized like a pull would); returns its image ref.
    pub fn add_image(&self, name: &str) -> String {
        image::add_image(&mut self.lock(), name)
    }

    /// Sets the size and `pinned` flag the runtime reports for image `name` (added if absent,
    /// like [`add_image`](Self::add_image)); returns its image ref.
    pub fn set_image(&self, name: &str, size: u64, pinned: bool) -> String {
        let mut state = self.lock();
        let id = image::add_image(&mut state, name);
        if let Some(image) = state.images.get_mut(&id) {
            image.size = size;
            image.pinned = pinned;
        }
        id
    }

    /// Whether the runtime has image `name` (a reference or an ID).
    pub fn has_image(&self, name: &str) -> bool {
        image::find(&self.lock(), name).is_some()
    }

    /// Makes every pull of `image` fail with `err` until [`clear_pull_error`](Self::clear_pull_error).
    pub fn set_pull_error(&self, image: &str, err: CriError) {
        self.lock().pull_errors.insert(image::normalize(image), err);
    }

    /// Makes every pull of `image` take `delay` (tokio time) before it answers.
    pub fn set_pull_delay(&self, image: &str, delay: std::time::Duration) {
        self.lock().pull_delays.insert(image::normalize(image), delay);
    }

    /// Lets pulls of `image` succeed again.
    pub fn clear_pull_error(&self, image: &str) {
        self.lock().pull_errors.remove(&image::normalize(image));
    }

    /// Makes every `CreateContainer` of a container named `name` fail with `err` (containerd's
    /// "failed to generate container spec"), creating nothing.
    pub fn set_create_error(&self, name: &str, err: CriError) {
        self.lock().create_errors.insert(name.to_owned(), err);
    }

    /// Makes every `StartContainer` of a container named `name` (its metadata name) fail with
    /// `err`, leaving it exited with code 128 and reason `StartError` as containerd does.
    pub fn set_start_error(&self, name: &str, err: CriError) {
        self.lock().start_errors.insert(name.to_owned(), err);
    }

    /// Lets containers named `name` start again.
    pub fn clear_start_error(&self, name: &str) {
        self.lock().start_errors.remove(name);
    }

    /// Loses the next `StartContainer` of a container named `name`: it answers `Unavailable` and
    /// the container stays `CREATED`, never started (a crash between create and start).
    pub fn lose_next_start(&self, name: &str) {
        self.lock().lost_starts.insert(name.to_owned());
    }

    /// Makes `ExecSync` of `cmd` (joined with spaces) in containers named `name` answer `answer`.
    pub fn set_exec_answer(&self, name: &str, cmd: &str, answer: ExecAnswer) {
        self.lock().exec_results.insert((name.to_owned(), cmd.to_owned()), answer);
    }

    /// Makes a running container exit with `code` now (reason `Completed` for 0, else `Error`).
    /// Returns false when there is no such running container.
    pub fn exit_container(&self, id: &str, code: i32) -> bool {
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        let Some(id) = state.container_id(id) else {
            return false;
        };
        let Some(container) = state.containers.get_mut(&id) else {
            return false;
        };
        if container.status.state != api::ContainerState::ContainerRunning as i32 {
            return false;
        }
        runtime::mark_exited(&mut container.status, now, code, None);
        true
    }

    /// The newer CRI fields (image volume sub-paths) container `id` was created with.
    pub fn container_extras(&self, id: &str) -> kubelet_cri::ContainerConfigExtras {
        self.lock().extras.get(id).cloned().unwrap_or_default()
    }

    /// Makes `ListContainerStats` report `bytes` of memory in use by container `id`.
    pub fn set_memory_usage(&self, id: &str, bytes: u64) {
        self.lock().memory_usage.insert(id.to_string(), bytes);
    }

    /// The user namespace options container `id` was created with.
    pub fn container_userns(&self, id: &str) -> Option<api::UserNamespace> {
        self.lock().container_userns.get(id).cloned().flatten()
    }

    /// The IDs of all sandboxes, in ID order.
    pub fn sandbox_ids(&self) -> Vec<String> {
        self.lock().sandboxes.keys().cloned().collect()
    }

    /// The IDs of all containers, in ID order.
    pub fn container_ids(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// The ID of the container named `name` (metadata name) in the newest sandbox that has one.
    pub fn container_id_by_name(&self, name: &str) -> Option<String> {
        let state = self.lock();
        state
            .containers
            .iter()
            .filter(|(_, c)| c.status.metadata.as_ref().is_some_and(|m| m.name == name))
            .max_by_key(|(_, c)| c.status.created_at)
            .map(|(id, _)| id.clone())
    }
}
