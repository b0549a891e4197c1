//! One registered device plugin as the kubelet calls it (upstream `endpoint` and the plugin
//! client): the gRPC channel to `<dir>/<endpoint>`, the options it answered at registration,
//! and its calls — `ListAndWatch` (run once: never retried), `GetPreferredAllocation`,
//! `Allocate` and `PreStartContainer`. What the answers mean is the manager's business.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::allocation::AllocationError;
use crate::v1beta1::device_plugin_client::DevicePluginClient;
use crate::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse, ContainerPreferredAllocationRequest, Device, DevicePluginOptions,
    Empty, PRE_START_CONTAINER_TIMEOUT, PreStartContainerRequest, PreferredAllocationRequest,
};
use crate::validation::RegistrationError;

/// How long dialing a plugin may take (upstream's dial timeout).
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A gRPC error as Go prints it, which plugins and users know: `rpc error: code = ... desc = ...`.
pub(crate) fn rpc_error(status: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", status.code(), status.message())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Connects to the plugin listening on `socket` and asks for its options.
pub(crate) async fn connect(socket: &Path) -> Result<(DevicePluginClient<Channel>, DevicePluginOptions), RegistrationError> {
    let path = socket.to_path_buf();
    // The URI is required by tonic but unused: the connector always dials the socket.
    let endpoint = Endpoint::from_static("http://localhost");
    let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(&path).await?)) }
    }));
    let channel = match tokio::time::timeout(DIAL_TIMEOUT, connect).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return Err(RegistrationError::Dial(format!("{}: {}", socket.display(), error_chain(&e)))),
        Err(_) => return Err(RegistrationError::Dial(format!("{}: timed out after {DIAL_TIMEOUT:?}", socket.display()))),
    };
    let mut client = DevicePluginClient::new(channel);
    let options = client.get_device_plugin_options(Empty {}).await.map_err(|s| RegistrationError::Options(rpc_error(&s)))?;
    Ok((client, options.into_inner()))
}

/// A connected plugin.
#[derive(Debug)]
pub(crate) struct PluginEndpoint {
    pub resource: String,
    pub socket: PathBuf,
    /// Tells this registration from earlier and later ones of the same resource.
    pub generation: u64,
    pub options: DevicePluginOptions,
    client: DevicePluginClient<Channel>,
    /// Cancelled when the plugin is replaced or the kubelet stops.
    pub stop: CancellationToken,
}

/// How a `ListAndWatch` stream ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WatchEnd {
    /// The plugin failed it or went away; the text says how.
    Failed(String),
    /// The endpoint was stopped by the kubelet.
    Cancelled,
}

impl PluginEndpoint {
    pub fn new(
        resource: &str,
        socket: PathBuf,
        generation: u64,
        client: DevicePluginClient<Channel>,
        options: DevicePluginOptions,
        stop: CancellationToken,
    ) -> Self {
        Self { resource: resource.into(), socket, generation, options, client, stop }
    }

    /// Calls `ListAndWatch` once and hands every list to `on_list` until the stream ends.
    pub async fn list_and_watch(&self, mut on_list: impl FnMut(Vec<Device>)) -> WatchEnd {
        let mut client = self.client.clone();
        let response = tokio::select! {
            _ = self.stop.cancelled() => return WatchEnd::Cancelled,
            r = client.list_and_watch(Empty {}) => r,
        };
        let mut stream = match response {
            Ok(r) => r.into_inner(),
            Err(status) => return WatchEnd::Failed(rpc_error(&status)),
        };
        loop {
            let message = tokio::select! {
                _ = self.stop.cancelled() => return WatchEnd::Cancelled,
                m = stream.message() => m,
            };
            match message {
                Ok(Some(list)) => on_list(list.devices),
                Ok(None) => return WatchEnd::Failed("the stream ended".into()),
                Err(status) => return WatchEnd::Failed(rpc_error(&status)),
            }
        }
    }

    fn check_running(&self) -> Result<(), AllocationError> {
        if self.stop.is_cancelled() { Err(AllocationError::PluginStopped(self.resource.clone())) } else { Ok(()) }
    }

    /// The plugin's preferred `size` devices of `available`, including `must_include`.
    pub async fn preferred_allocation(
        &self,
        available: Vec<String>,
        must_include: Vec<String>,
        size: usize,
    ) -> Result<Vec<String>, AllocationError> {
        self.check_running()?;
        let request = PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: available,
                must_include_device_i_ds: must_include,
                allocation_size: i32::try_from(size).unwrap_or(i32::MAX),
            }],
        };
        let response =
            self.client.clone().get_preferred_allocation(request).await.map_err(|s| AllocationError::PreferredAllocation(rpc_error(&s)))?;
        Ok(response.into_inner().container_responses.into_iter().next().map(|r| r.device_i_ds).unwrap_or_default())
    }

    /// `Allocate` for one container's devices; the plugin's answer for it.
    pub async fn allocate(&self, devices: Vec<String>) -> Result<ContainerAllocateResponse, AllocationError> {
        self.check_running()?;
        let request = AllocateRequest { container_requests: vec![ContainerAllocateRequest { devices_ids: devices }] };
        let response = self.client.clone().allocate(request).await.map_err(|s| AllocationError::Allocate(rpc_error(&s)))?.into_inner();
        let text = format!("{response:?}");
        response.container_responses.into_iter().next().ok_or(AllocationError::EmptyResponse(text))
    }

    /// `PreStartContainer` for a container's devices, within upstream's 30 seconds.
    pub async fn pre_start_container(&self, devices: Vec<String>) -> Result<(), AllocationError> {
        self.check_running()?;
        let mut request = tonic::Request::new(PreStartContainerRequest { devices_ids: devices });
        request.set_timeout(PRE_START_CONTAINER_TIMEOUT);
        match tokio::time::timeout(PRE_START_CONTAINER_TIMEOUT, self.client.clone().pre_start_container(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(s)) => Err(AllocationError::PreStartContainer(rpc_error(&s))),
            Err(_) => Err(AllocationError::PreStartContainer(format!("timed out after {PRE_START_CONTAINER_TIMEOUT:?}"))),
        }
    }
}
