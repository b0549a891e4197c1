//! The container runtime boundary of the kubelet.
//!
//! This crate owns the [`RuntimeService`] and [`ImageService`] traits — the only way the rest of the
//! kubelet talks to a container runtime — and [`RemoteRuntime`], their implementation over CRI v1
//! gRPC on a unix socket (containerd, CRI-O). The message types are CRI's own (re-exported as
//! [`api`]), so a reader who knows CRI finds the same names. A fake lives in the `test-support` crate.
//!
//! It must not know about pods as the API server sees them: translating a `v1.Pod` to CRI configs is
//! the kubelet's `kuberuntime` module's job.

mod error;
mod newer;
mod relist;
mod remote;

pub use error::CriError;
pub use newer::ContainerConfigExtras;
pub use relist::RelistEntry;
pub use remote::RemoteRuntime;
/// gRPC status codes carried by [`CriError::Status`].
pub use tonic::Code;

/// CRI v1 messages, as generated from the upstream `api.proto`.
pub use k8s_cri::v1 as api;

use std::time::Duration;

/// Result of a CRI call.
pub type Result<T> = std::result::Result<T, CriError>;

/// The runtime half of CRI: sandboxes and containers.
///
/// Mirrors upstream's `cri-api` `RuntimeService`, limited to what the kubelet uses.
#[async_trait::async_trait]
pub trait RuntimeService: Send + Sync + 'static {
    /// Runtime name and versions (`Version`).
    async fn version(&self) -> Result<api::VersionResponse>;
    /// Runtime conditions (`RuntimeReady`, `NetworkReady`) and the cgroup driver when reported.
    async fn status(&self, verbose: bool) -> Result<api::StatusResponse>;
    /// The runtime's own settings the kubelet must match (`RuntimeConfig`: the Linux cgroup
    /// driver). The default answers `Unimplemented`, as runtimes older than CRI 1.28 do.
    async fn runtime_config(&self) -> Result<api::RuntimeConfigResponse> {
        Err(unimplemented("RuntimeConfig"))
    }

    /// Creates and starts a pod sandbox; returns its ID.
    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig, runtime_handler: &str) -> Result<String>;
    /// Stops every container of the sandbox and the sandbox itself. Idempotent.
    async fn stop_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()>;
    /// Removes a stopped sandbox and its containers. Idempotent.
    async fn remove_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()>;
    /// Status of one sandbox (network addresses, state, creation time).
    async fn pod_sandbox_status(&self, pod_sandbox_id: &str) -> Result<api::PodSandboxStatus>;
    /// Lists sandboxes, optionally filtered.
    async fn list_pod_sandbox(&self, filter: Option<api::PodSandboxFilter>) -> Result<Vec<api::PodSandbox>>;

    /// Creates a container in a sandbox; returns its ID.
    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String>;
    /// [`Self::create_container`] with fields newer than [`api`] (image volume sub-paths). The
    /// default sends none: it refuses extras (`Unimplemented`) and creates as usual without.
    async fn create_container_with(
        &self,
        pod_sandbox_id: &str,
        config: api::ContainerConfig,
        extras: &ContainerConfigExtras,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        if !extras.is_empty() {
            return Err(unimplemented("CreateContainer with fields newer than this client's CRI API"));
        }
        self.create_container(pod_sandbox_id, config, sandbox_config).await
    }
    /// Starts a created container.
    async fn start_container(&self, container_id: &str) -> Result<()>;
    /// Stops a container: SIGTERM (or the image's stop signal), then SIGKILL after `timeout`.
    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()>;
    /// Removes a container. Idempotent.
    async fn remove_container(&self, container_id: &str) -> Result<()>;
    /// Lists containers, optionally filtered.
    async fn list_containers(&self, filter: Option<api::ContainerFilter>) -> Result<Vec<api::Container>>;
    /// Full status of one container (exit code, reason, timestamps, log path).
    async fn container_status(&self, container_id: &str) -> Result<api::ContainerStatus>;
    /// Every sandbox's ID, state and labels, for the PLEG's relist: what
    /// [`Self::list_pod_sandbox`] gives, without the rest. The default lists them whole.
    async fn relist_pod_sandboxes(&self) -> Result<Vec<RelistEntry>> {
        Ok(self.list_pod_sandbox(None).await?.into_iter().map(RelistEntry::from).collect())
    }
    /// Every container's ID, state and labels, for the PLEG's relist: what
    /// [`Self::list_containers`] gives, without the rest. The default lists them whole.
    async fn relist_containers(&self) -> Result<Vec<RelistEntry>> {
        Ok(self.list_containers(None).await?.into_iter().map(RelistEntry::from).collect())
    }
    /// Changes a running container's CPU and memory settings in place
    /// (`UpdateContainerResources`, in-place pod resize). The default answers `Unimplemented`.
    async fn update_container_resources(&self, container_id: &str, linux: api::LinuxContainerResources) -> Result<()> {
        let _ = (container_id, linux);
        Err(unimplemented("UpdateContainerResources"))
    }
    /// Asks the runtime to reopen a running container's log file (after the kubelet renamed it
    /// for rotation).
    async fn reopen_container_log(&self, container_id: &str) -> Result<()> {
        let _ = container_id;
        Err(unimplemented("ReopenContainerLog"))
    }

    /// Runs `cmd` in a running container and waits for it (`ExecSync`), for probes and lifecycle
    /// hooks. `timeout` is the command's own limit (`None`: no limit); the runtime kills the
    /// command when it expires and the call fails with [`CriError::Timeout`].
    async fn exec_sync(&self, container_id: &str, cmd: Vec<String>, timeout: Option<Duration>) -> Result<ExecSyncOutput>;

    /// Prepares a streaming `Exec` in a container; returns the runtime's streaming URL. The
    /// default answers `Unimplemented` (runtimes and fakes without streaming).
    async fn exec(&self, request: api::ExecRequest) -> Result<String> {
        Err(unimplemented_streaming("Exec", &request.container_id))
    }
    /// Prepares a streaming `Attach` to a container; returns the runtime's streaming URL.
    async fn attach(&self, request: api::AttachRequest) -> Result<String> {
        Err(unimplemented_streaming("Attach", &request.container_id))
    }
    /// Prepares a streaming `PortForward` into a sandbox; returns the runtime's streaming URL.
    async fn port_forward(&self, request: api::PortForwardRequest) -> Result<String> {
        Err(unimplemented_streaming("PortForward", &request.pod_sandbox_id))
    }
    /// Resource usage of the containers `filter` selects (all when `None`): the kubelet reads
    /// their writable layers' use from it.
    async fn list_container_stats(&self, filter: Option<api::ContainerStatsFilter>) -> Result<Vec<api::ContainerStats>> {
        let _ = filter;
        Err(unimplemented("ListContainerStats"))
    }
}

/// What a command run with [`RuntimeService::exec_sync`] printed and how it exited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecSyncOutput {
    /// Everything the command wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to standard error.
    pub stderr: Vec<u8>,
    /// The command's exit status (0 is success).
    pub exit_code: i32,
}

/// A CRI call this runtime (usually a test fake) does not implement.
pub fn unimplemented(op: &'static str) -> CriError {
    CriError::Status { op, object: String::new(), code: tonic::Code::Unimplemented, message: "not implemented by this runtime".into() }
}

fn unimplemented_streaming(op: &'static str, object: &str) -> CriError {
    CriError::Status {
        op,
        object: object.to_owned(),
        code: tonic::Code::Unimplemented,
        message: "streaming is not supported by this runtime".into(),
    }
}

/// The image half of CRI.
#[async_trait::async_trait]
pub trait ImageService: Send + Sync + 'static {
    /// Lists images known to the runtime.
    async fn list_images(&self, filter: Option<api::ImageFilter>) -> Result<Vec<api::Image>>;
    /// Status of one image; `None` when the runtime does not have it.
    async fn image_status(&self, image: &api::ImageSpec) -> Result<Option<api::Image>>;
    /// Pulls an image; returns the image reference (digest) the runtime resolved.
    async fn pull_image(
        &self,
        image: api::ImageSpec,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String>;
    /// Removes an image.
    async fn remove_image(&self, image: &api::ImageSpec) -> Result<()>;
    /// The filesystems holding images and containers' writable layers, with what they use.
    async fn image_fs_info(&self) -> Result<api::ImageFsInfoResponse> {
        Err(unimplemented("ImageFsInfo"))
    }
}
