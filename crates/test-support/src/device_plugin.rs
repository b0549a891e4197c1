//! [`FakeDevicePlugin`]: a device plugin serving the v1beta1 `DevicePlugin` API on a unix
//! socket, like upstream's node e2e `testdeviceplugin`: it records every call, lets a test make
//! any method fail (`ListAndWatch` also checks every second while streaming, so it can fail
//! after devices were listed), pushes device updates, and can be stopped. [`register`] is the
//! plugin side of `Registration.Register`.
//!
//! `Allocate` answers each container with `DEVICE_PLUGIN_DEVICES=<ids, comma-separated>` unless
//! the test sets its own answer; `GetPreferredAllocation` prefers the highest IDs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use kubelet_deviceplugin::v1beta1::device_plugin_server::{DevicePlugin, DevicePluginServer};
use kubelet_deviceplugin::v1beta1::registration_client::RegistrationClient;
use kubelet_deviceplugin::v1beta1::{
    AllocateRequest, AllocateResponse, ContainerAllocateResponse, ContainerPreferredAllocationResponse, Device, DevicePluginOptions, Empty,
    ListAndWatchResponse, PreStartContainerRequest, PreStartContainerResponse, PreferredAllocationRequest, PreferredAllocationResponse,
    RegisterRequest, VERSION,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Endpoint, Uri};
use tonic::{Request, Response, Status};

/// The environment variable the default `Allocate` answer sets.
pub const DEVICES_ENV: &str = "DEVICE_PLUGIN_DEVICES";

type AllocateAnswer = Arc<dyn Fn(&[String]) -> ContainerAllocateResponse + Send + Sync>;

struct State {
    calls: Mutex<Vec<String>>,
    failures: Mutex<BTreeMap<String, String>>,
    devices: watch::Sender<Vec<Device>>,
    options: Mutex<DevicePluginOptions>,
    allocate: Mutex<Option<AllocateAnswer>>,
    /// Every `Allocate` request's device IDs, per container request.
    allocations: Mutex<Vec<Vec<String>>>,
    stop: CancellationToken,
}

/// A fake device plugin. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeDevicePlugin {
    state: Arc<State>,
}

/// A device `id` with `health` (`Healthy` or `Unhealthy`).
pub fn device(id: &str, health: &str) -> Device {
    Device { id: id.into(), health: health.into(), topology: None }
}

impl FakeDevicePlugin {
    /// A plugin that will list `devices`.
    pub fn new(devices: Vec<Device>) -> Self {
        let state = State {
            calls: Mutex::default(),
            failures: Mutex::default(),
            devices: watch::channel(devices).0,
            options: Mutex::default(),
            allocate: Mutex::default(),
            allocations: Mutex::default(),
            stop: CancellationToken::new(),
        };
        Self { state: Arc::new(state) }
    }

    /// What `GetDevicePluginOptions` answers.
    pub fn set_options(&self, options: DevicePluginOptions) {
        *self.state.options.lock().unwrap() = options;
    }

    /// Makes `method` fail with `message` from now on (`ListAndWatch`: within a second).
    pub fn fail(&self, method: &str, message: &str) {
        self.state.failures.lock().unwrap().insert(method.into(), message.into());
    }

    /// Sets what `Allocate` answers for a container's device IDs.
    pub fn set_allocate_answer(&self, answer: impl Fn(&[String]) -> ContainerAllocateResponse + Send + Sync + 'static) {
        *self.state.allocate.lock().unwrap() = Some(Arc::new(answer));
    }

    /// Sends `devices` to the kubelet's `ListAndWatch`.
    pub fn update_devices(&self, devices: Vec<Device>) {
        self.state.devices.send_replace(devices);
    }

    /// The methods called so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }

    /// The device IDs of every `Allocate` container request so far.
    pub fn allocations(&self) -> Vec<Vec<String>> {
        self.state.allocations.lock().unwrap().clone()
    }

    fn record(&self, method: &str) -> Result<(), Status> {
        self.state.calls.lock().unwrap().push(method.into());
        self.failure(method)
    }

    fn failure(&self, method: &str) -> Result<(), Status> {
        match self.state.failures.lock().unwrap().get(method) {
            Some(message) => Err(Status::unknown(message.clone())),
            None => Ok(()),
        }
    }

    /// Serves the plugin on `socket` until [`Self::stop`].
    pub fn serve(&self, socket: &Path) -> std::io::Result<()> {
        let listener = UnixListener::bind(socket)?;
        let (plugin, stop) = (self.clone(), self.state.stop.clone());
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(DevicePluginServer::new(plugin))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!("fake device plugin: {e}");
            }
        });
        Ok(())
    }

    /// Stops serving: open `ListAndWatch` streams fail (`Unavailable`) and the server exits.
    pub fn stop(&self) {
        self.state.stop.cancel();
    }
}

#[tonic::async_trait]
impl DevicePlugin for FakeDevicePlugin {
    async fn get_device_plugin_options(&self, _: Request<Empty>) -> Result<Response<DevicePluginOptions>, Status> {
        self.record("GetDevicePluginOptions")?;
        Ok(Response::new(*self.state.options.lock().unwrap()))
    }

    type ListAndWatchStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<ListAndWatchResponse, Status>> + Send>>;

    async fn list_and_watch(&self, _: Request<Empty>) -> Result<Response<Self::ListAndWatchStream>, Status> {
        self.record("ListAndWatch")?;
        let (tx, rx) = mpsc::channel(16);
        let plugin = self.clone();
        let mut devices = self.state.devices.subscribe();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                let list = ListAndWatchResponse { devices: devices.borrow_and_update().clone() };
                if tx.send(Ok(list)).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        changed = devices.changed() => if changed.is_err() { return } else { break },
                        _ = ticker.tick() => if let Err(status) = plugin.failure("ListAndWatch") {
                            let _ = tx.send(Err(status)).await;
                            return;
                        },
                        _ = plugin.state.stop.cancelled() => {
                            let _ = tx.send(Err(Status::unavailable("device plugin stopped"))).await;
                            return;
                        }
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_preferred_allocation(
        &self,
        request: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        self.record("GetPreferredAllocation")?;
        let container_responses = request
            .into_inner()
            .container_requests
            .into_iter()
            .map(|r| {
                let must: BTreeSet<String> = r.must_include_device_i_ds.into_iter().collect();
                let rest: BTreeSet<String> = r.available_device_i_ds.into_iter().filter(|d| !must.contains(d)).collect();
                let ids = must.into_iter().chain(rest.into_iter().rev()).take(usize::try_from(r.allocation_size).unwrap_or(0)).collect();
                ContainerPreferredAllocationResponse { device_i_ds: ids }
            })
            .collect();
        Ok(Response::new(PreferredAllocationResponse { container_responses }))
    }

    async fn allocate(&self, request: Request<AllocateRequest>) -> Result<Response<AllocateResponse>, Status> {
        self.record("Allocate")?;
        let answer = self.state.allocate.lock().unwrap().clone();
        let mut container_responses = Vec::new();
        for r in request.into_inner().container_requests {
            self.state.allocations.lock().unwrap().push(r.devices_ids.clone());
            container_responses.push(match &answer {
                Some(answer) => answer(&r.devices_ids),
                None => {
                    ContainerAllocateResponse { envs: [(DEVICES_ENV.to_string(), r.devices_ids.join(","))].into(), ..Default::default() }
                }
            });
        }
        Ok(Response::new(AllocateResponse { container_responses }))
    }

    async fn pre_start_container(&self, _: Request<PreStartContainerRequest>) -> Result<Response<PreStartContainerResponse>, Status> {
        self.record("PreStartContainer")?;
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

/// Registers a plugin listening on `endpoint` (a file name in the kubelet's device plugin
/// directory) for `resource` with the kubelet at `kubelet_socket`, as a device plugin does.
pub async fn register(kubelet_socket: &Path, endpoint: &str, resource: &str) -> Result<(), Status> {
    register_request(
        kubelet_socket,
        RegisterRequest { version: VERSION.into(), endpoint: endpoint.into(), resource_name: resource.into(), options: None },
    )
    .await
}

/// Sends `request` to the kubelet's registration socket.
pub async fn register_request(kubelet_socket: &Path, request: RegisterRequest) -> Result<(), Status> {
    let path = kubelet_socket.to_path_buf();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(&path).await?)) }
        }))
        .await
        .map_err(|e| Status::unavailable(format!("dial {}: {e}", kubelet_socket.display())))?;
    RegistrationClient::new(channel).register(request).await.map(|_| ())
}
