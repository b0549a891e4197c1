//! [`DeviceManager`] (upstream `ManagerImpl`): owns the device state, the allocations and the
//! plugin endpoints behind one lock (never held across a call to a plugin), serves the
//! registration socket, and runs one `ListAndWatch` task per registered plugin.
//!
//! A registration is answered only after the plugin's `GetDevicePluginOptions` succeeded; a
//! plugin registering a resource again replaces the earlier one. `ListAndWatch` is called
//! once per registration: when it ends the resource's devices turn unhealthy and the plugin
//! must register again. Allocation is in `manager/allocator.rs`; this file owns lifecycle,
//! registration, capacity and the checkpoint.

mod allocator;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{PluginEndpoint, WatchEnd};
use crate::pod_devices::PodDevices;
use crate::state::{DeviceState, ENDPOINT_STOP_GRACE_PERIOD, ResourceCapacity};
use crate::v1beta1::{DEVICE_PLUGIN_PATH, Device, KUBELET_SOCKET_NAME, RegisterRequest};
use crate::validation::{RegistrationError, validate};
use crate::{ActivePods, checkpoint};

/// Where the manager lives and how long a stopped plugin's resource keeps its capacity.
#[derive(Debug, Clone)]
pub struct DeviceManagerConfig {
    /// The device plugin directory: the registration socket, the plugins' sockets and the
    /// checkpoint (upstream: always `/var/lib/kubelet/device-plugins/`).
    pub dir: PathBuf,
    /// Upstream's `endpointStopGracePeriod`.
    pub stop_grace_period: Duration,
}

impl Default for DeviceManagerConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from(DEVICE_PLUGIN_PATH), stop_grace_period: ENDPOINT_STOP_GRACE_PERIOD }
    }
}

/// Why the registration server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The device plugin directory could not be created.
    #[error("device plugin directory {path}: {source}")]
    Dir {
        /// The directory (`/var/lib/kubelet/device-plugins/`).
        path: PathBuf,
        /// The I/O error creating it.
        source: std::io::Error,
    },
    /// The registration socket could not be replaced or bound.
    #[error("device plugin registration socket {path}: {source}")]
    Socket {
        /// The socket's path (`<dir>/kubelet.sock`).
        path: PathBuf,
        /// The I/O error removing the stale socket or binding it.
        source: std::io::Error,
    },
}

#[derive(Default)]
struct Shared {
    devices: DeviceState,
    pods: PodDevices,
    /// The latest plugin of each resource (a stopped one stays until replaced).
    endpoints: BTreeMap<String, Arc<PluginEndpoint>>,
    generations: u64,
}

struct Inner {
    dir: PathBuf,
    active_pods: Arc<dyn ActivePods>,
    shared: Mutex<Shared>,
    /// Serializes checkpoint writes so the latest state is written last.
    checkpoint: Mutex<()>,
    /// Parent of every endpoint's token: cancelled when the manager stops.
    stop: CancellationToken,
}

/// The device plugin manager. Cheap to clone: clones share one manager.
#[derive(Clone)]
pub struct DeviceManager {
    inner: Arc<Inner>,
}

impl DeviceManager {
    /// A manager in `config.dir`, with the allocations and registered resources of its
    /// checkpoint (an unreadable checkpoint is logged and ignored, as upstream does).
    pub fn new(config: DeviceManagerConfig, active_pods: Arc<dyn ActivePods>) -> Self {
        let mut shared = Shared { devices: DeviceState::new(config.stop_grace_period), ..Shared::default() };
        match checkpoint::read(&config.dir) {
            Ok(Some(data)) => {
                let (pods, resources) = checkpoint::restore(data);
                let now = Instant::now();
                for resource in &resources {
                    shared.devices.restored(resource, now);
                }
                shared.pods = pods;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("continuing without the device plugin checkpoint; device allocations may not be up to date: {e}"),
        }
        let inner =
            Inner { dir: config.dir, active_pods, shared: Mutex::new(shared), checkpoint: Mutex::new(()), stop: CancellationToken::new() };
        Self { inner: Arc::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.inner.shared.lock().expect("device manager lock")
    }

    /// The registration socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.inner.dir.join(KUBELET_SOCKET_NAME)
    }

    /// Creates the directory, replaces a stale registration socket and binds it; returns the
    /// task serving registrations until `shutdown`, which then stops every plugin's
    /// `ListAndWatch` and removes the socket.
    pub fn start(&self, shutdown: CancellationToken) -> Result<impl Future<Output = ()> + Send + 'static, StartError> {
        let dir = &self.inner.dir;
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o750)
            .create(dir)
            .map_err(|source| StartError::Dir { path: dir.clone(), source })?;
        let socket = self.socket_path();
        let socket_error = |source| StartError::Socket { path: socket.clone(), source };
        match std::fs::remove_file(&socket) {
            Ok(()) => tracing::info!("removed the stale device plugin registration socket {}", socket.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(socket_error(e)),
        }
        let listener = UnixListener::bind(&socket).map_err(socket_error)?;
        tracing::info!("device plugin registration server listening on {}", socket.display());
        let manager = self.clone();
        Ok(async move {
            if let Err(e) = crate::server::serve(listener, manager.clone(), shutdown.cancelled_owned()).await {
                tracing::error!("device plugin registration server failed: {e}");
            }
            manager.inner.stop.cancel();
            let _ = std::fs::remove_file(&socket);
        })
    }

    /// Capacity and allocatable of the device plugin resources (upstream `GetCapacity`);
    /// forgets the resources whose plugin stopped more than the grace period ago.
    pub fn capacity(&self) -> ResourceCapacity {
        let mut shared = self.lock();
        let expired = shared.devices.expire(Instant::now());
        let capacity = shared.devices.capacity();
        drop(shared);
        if !expired.is_empty() {
            tracing::info!(resources = ?expired, "device plugin resources removed after their plugin stopped");
            self.write_checkpoint();
        }
        capacity
    }

    /// Handles one `Register`: validates it, dials the plugin at `<dir>/<endpoint>` and asks
    /// for its options; then the plugin replaces any earlier one of the resource and its
    /// `ListAndWatch` starts.
    pub(crate) async fn register(&self, req: RegisterRequest) -> Result<(), RegistrationError> {
        tracing::info!(resource = %req.resource_name, endpoint = %req.endpoint, "registration request from device plugin");
        validate(&req).inspect_err(|e| tracing::warn!(resource = %req.resource_name, "bad device plugin registration: {e}"))?;
        let socket = self.inner.dir.join(&req.endpoint);
        let (client, options) = crate::endpoint::connect(&socket)
            .await
            .inspect_err(|e| tracing::warn!(resource = %req.resource_name, "device plugin not used: {e}"))?;
        let resource = req.resource_name;
        let endpoint = {
            let mut shared = self.lock();
            shared.generations += 1;
            let endpoint =
                Arc::new(PluginEndpoint::new(&resource, socket, shared.generations, client, options, self.inner.stop.child_token()));
            if let Some(old) = shared.endpoints.insert(resource.clone(), endpoint.clone()) {
                old.stop.cancel();
            }
            shared.devices.connected(&resource, endpoint.generation);
            endpoint
        };
        tracing::info!(resource = %resource, socket = %endpoint.socket.display(), "device plugin connected");
        tokio::spawn(self.clone().watch(endpoint));
        Ok(())
    }

    /// The `ListAndWatch` task of one plugin.
    async fn watch(self, endpoint: Arc<PluginEndpoint>) {
        let end = endpoint.list_and_watch(|devices| self.devices_listed(&endpoint, devices)).await;
        let WatchEnd::Failed(why) = end else { return };
        tracing::warn!(resource = %endpoint.resource, "ListAndWatch ended unexpectedly for device plugin: {why}");
        endpoint.stop.cancel();
        let stopped = self.lock().devices.stopped(&endpoint.resource, endpoint.generation, Instant::now());
        if stopped {
            tracing::info!(resource = %endpoint.resource, "marked every device of the resource unhealthy");
            self.write_checkpoint();
        }
    }

    fn devices_listed(&self, endpoint: &PluginEndpoint, devices: Vec<Device>) {
        let (total, healthy) = (devices.len(), devices.iter().filter(|d| d.health == crate::v1beta1::HEALTHY).count());
        if self.lock().devices.update(&endpoint.resource, endpoint.generation, devices) {
            tracing::info!(resource = %endpoint.resource, total, healthy, "device plugin reported its devices");
            self.write_checkpoint();
        }
    }

    /// Writes the checkpoint; a failure is logged (the next change writes it again).
    fn write_checkpoint(&self) {
        let _writing = self.inner.checkpoint.lock().expect("checkpoint lock");
        let data = {
            let shared = self.lock();
            checkpoint::snapshot(&shared.pods, shared.devices.registered_devices())
        };
        if let Err(e) = checkpoint::write(&self.inner.dir, &data) {
            tracing::warn!("writing the device plugin checkpoint: {e}");
        }
    }
}

/// The node status reads the device plugin resources through this.
impl kubelet_types::node::DeviceResources for DeviceManager {
    fn device_capacity(&self) -> kubelet_types::node::DeviceCapacity {
        let c = self.capacity();
        kubelet_types::node::DeviceCapacity { capacity: c.capacity, allocatable: c.allocatable }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::v1beta1::HEALTHY;

    struct NoPods;

    impl ActivePods for NoPods {
        fn active_pod_uids(&self) -> Option<BTreeSet<String>> {
            None
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_plugins_resource_keeps_its_capacity_for_five_minutes() {
        const R: &str = "test.device/r";
        let dir = tempfile::tempdir().unwrap();
        let manager = DeviceManager::new(DeviceManagerConfig { dir: dir.path().into(), ..Default::default() }, Arc::new(NoPods));
        {
            let mut shared = manager.lock();
            shared.devices.connected(R, 1);
            let device = |id: &str| Device { id: id.into(), health: HEALTHY.into(), topology: None };
            shared.devices.update(R, 1, vec![device("0"), device("1")]);
            shared.devices.stopped(R, 1, Instant::now());
        }
        let values = |m: &DeviceManager| {
            let c = m.capacity();
            (c.allocatable[R], c.capacity[R])
        };
        assert_eq!(values(&manager), (0, 2));
        tokio::time::advance(ENDPOINT_STOP_GRACE_PERIOD).await;
        assert_eq!(values(&manager), (0, 2));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(values(&manager), (0, 0));
        // The checkpoint no longer lists the resource.
        let data = checkpoint::read(dir.path()).unwrap().unwrap();
        assert_eq!(data.registered_devices, Some(BTreeMap::new()));
    }
}
