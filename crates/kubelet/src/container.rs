//! The kubelet's view of what the runtime is running for a pod (upstream `kubecontainer.PodStatus`).
//!
//! These types are decoded from CRI sandboxes and containers and their `io.kubernetes.*` labels and
//! annotations. They carry no API-server types; turning them into a `v1.PodStatus` is `status`'s job.

use std::time::SystemTime;

/// State of one container as the runtime reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Created but not started yet (CRI `CONTAINER_CREATED`).
    Created,
    /// Started and not exited (CRI `CONTAINER_RUNNING`).
    Running,
    /// Has exited; `exit_code`, `reason` and `finished_at` say how (CRI `CONTAINER_EXITED`).
    Exited,
    /// The runtime cannot tell (CRI `CONTAINER_UNKNOWN`).
    Unknown,
}

/// One container instance (one restart attempt) of a pod, as seen in the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerStatus {
    /// Runtime container ID (without the `containerd://` prefix).
    pub id: String,
    /// The container name in the pod spec (`io.kubernetes.container.name`).
    pub name: String,
    /// The runtime's state of this instance.
    pub state: ContainerState,
    /// When the runtime created it.
    pub created_at: Option<SystemTime>,
    /// When it started running; `None` before it did.
    pub started_at: Option<SystemTime>,
    /// When it exited; `None` while it has not.
    pub finished_at: Option<SystemTime>,
    /// Its exit code once exited (0 before).
    pub exit_code: i32,
    /// Image as requested in the spec.
    pub image: String,
    /// Image reference the runtime resolved (digest).
    pub image_ref: String,
    /// Hash of the container spec it was created from (`io.kubernetes.container.hash`).
    pub hash: String,
    /// Restart count recorded when it was created (`io.kubernetes.container.restartCount`).
    pub restart_count: i32,
    /// Runtime's reason for the state (`Completed`, `Error`, `OOMKilled`, ...).
    pub reason: String,
    /// The runtime's detail on the state (CRI status `message`); for an exited container
    /// followed by its termination message (the `terminationMessagePath` file, or the last log
    /// lines under `FallbackToLogsOnError`).
    pub message: String,
    /// Termination message path recorded at creation.
    pub termination_message_path: String,
    /// Container paths of the mounts the runtime made recursively read-only (CRI status).
    pub recursive_read_only_paths: Vec<String>,
}

impl ContainerStatus {
    /// The runtime type prefix used in API `containerID`s.
    pub fn container_id_uri(&self, runtime: &str) -> String {
        format!("{runtime}://{}", self.id)
    }
}

/// The runtime's ID in an API `containerID` (`containerd://<id>` → `<id>`); an ID without a
/// scheme is returned as it is.
pub fn bare_container_id(uri: &str) -> &str {
    uri.split_once("://").map_or(uri, |(_, id)| id)
}

/// State of a pod sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    /// Created and its network set up (CRI `SANDBOX_READY`).
    Ready,
    /// Stopped, or not fully set up (CRI `SANDBOX_NOTREADY`).
    NotReady,
}

/// One pod sandbox instance.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxStatus {
    /// The runtime's sandbox ID.
    pub id: String,
    /// Whether the sandbox is ready.
    pub state: SandboxState,
    /// Sandbox attempt (metadata.attempt); grows each time the sandbox is recreated.
    pub attempt: u32,
    /// When the runtime created it.
    pub created_at: Option<SystemTime>,
    /// Pod IPs, primary first. Empty for host-network pods.
    pub ips: Vec<String>,
    /// Whether it uses the node's network namespace; only known for a ready sandbox (`false`
    /// otherwise).
    pub host_network: bool,
}

/// Everything the runtime has for one pod UID. Sandboxes and containers are sorted newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodStatus {
    /// The pod's UID (`metadata.uid`), which its runtime objects are labelled with.
    pub uid: String,
    /// The pod's name, as the runtime's labels (or the pod) give it.
    pub name: String,
    /// The pod's namespace, as the runtime's labels (or the pod) give it.
    pub namespace: String,
    /// The pod's sandboxes, newest first.
    pub sandboxes: Vec<SandboxStatus>,
    /// Every container instance of the pod (all restart attempts), newest first.
    pub containers: Vec<ContainerStatus>,
}

impl PodStatus {
    /// The newest instance of the named container, if any.
    pub fn latest_container(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Pod IPs of the newest sandbox.
    pub fn ips(&self) -> &[String] {
        self.sandboxes.first().map(|s| s.ips.as_slice()).unwrap_or(&[])
    }
}
