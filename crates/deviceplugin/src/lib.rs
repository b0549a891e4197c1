//! The device plugin manager (upstream `pkg/kubelet/cm/devicemanager`): device plugins register
//! on the kubelet's socket, report their devices and health through `ListAndWatch`, and get
//! asked to `Allocate` devices for the containers that request their extended resource.
//!
//! - [`v1beta1`]: the wire API (generated from `proto/api.proto`) and its constants;
//! - [`validation`]: what a `RegisterRequest` must satisfy;
//! - [`state`]: each resource's devices, their health and its plugin's endpoint → node
//!   capacity and allocatable (pure);
//! - [`pod_devices`], [`allocation`]: which devices each container holds and which ones a
//!   new container gets (pure);
//! - [`run_options`]: the plugins' `ContainerAllocateResponse`s merged for one container (pure);
//! - [`checkpoint`]: the allocations on disk (`kubelet_internal_checkpoint`, upstream's format);
//! - [`manager`]: [`DeviceManager`], which owns the above, the registration server and one
//!   `ListAndWatch` task per plugin.
//!
//! What the kubelet consumes is behind two traits: [`DeviceAllocator`] (admission and container
//! start) and [`ActivePods`] (which pods still hold devices). Fakes live in `test-support`.

pub mod allocation;
pub mod checkpoint;
mod endpoint;
pub mod manager;
pub mod pod_devices;
pub mod run_options;
mod server;
pub mod state;
pub mod validation;

use std::collections::BTreeSet;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod};

pub use allocation::AllocationError;
pub use manager::{DeviceManager, DeviceManagerConfig, StartError};
pub use run_options::RunContainerOptions;
pub use state::ResourceCapacity;

/// The v1beta1 device plugin API (package `v1beta1`, as upstream's
/// `k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1`) and its constants. The messages and services
/// are generated from the `.proto` (the API's own comments are upstream's, not copied here).
#[allow(missing_docs)]
pub mod v1beta1 {
    tonic::include_proto!("v1beta1");

    /// A device that can be allocated.
    pub const HEALTHY: &str = "Healthy";
    /// A device that must not be allocated.
    pub const UNHEALTHY: &str = "Unhealthy";
    /// The API version this kubelet speaks.
    pub const VERSION: &str = "v1beta1";
    /// Every version a plugin may register with.
    pub const SUPPORTED_VERSIONS: [&str; 1] = [VERSION];
    /// Where plugins put their sockets and the kubelet its registration socket.
    pub const DEVICE_PLUGIN_PATH: &str = "/var/lib/kubelet/device-plugins/";
    /// The registration socket's file name in [`DEVICE_PLUGIN_PATH`].
    pub const KUBELET_SOCKET_NAME: &str = "kubelet.sock";
    /// The registration socket.
    pub const KUBELET_SOCKET: &str = "/var/lib/kubelet/device-plugins/kubelet.sock";
    /// How long a `PreStartContainer` call may take.
    pub const PRE_START_CONTAINER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
}

/// Device allocation as the kubelet's pod workers and runtime manager use it.
#[async_trait]
pub trait DeviceAllocator: Send + Sync + 'static {
    /// Allocates devices to every container of `pod` that requests a device plugin resource
    /// (upstream: the resource allocation admit handler). On error nothing stays allocated to
    /// the pod; the error's text is what upstream puts after `Allocate failed due to`.
    async fn allocate_pod(&self, pod: &Pod) -> Result<(), AllocationError>;

    /// What container `container` of `pod` needs to use its devices (upstream
    /// `GetDeviceRunContainerOptions`): calls `PreStartContainer` when a plugin asks for it, and
    /// allocates if the container has no devices yet.
    async fn container_options(&self, pod: &Pod, container: &Container) -> Result<RunContainerOptions, AllocationError>;

    /// Frees the devices of a pod that was removed from the node.
    fn remove_pod(&self, pod_uid: &str);
}

/// Which pods may hold devices: allocations of any other pod are freed before new ones are made
/// (upstream `UpdateAllocatedDevices` over `activePods`).
pub trait ActivePods: Send + Sync + 'static {
    /// The UIDs of the node's pods, or `None` while the pod sources are not all ready yet (then
    /// nothing is freed).
    fn active_pod_uids(&self) -> Option<BTreeSet<String>>;
}
