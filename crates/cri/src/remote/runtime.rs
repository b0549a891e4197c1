//! [`RuntimeService`] over gRPC: sandboxes and containers, each call under its deadline.

use std::time::Duration;

use async_trait::async_trait;

use super::{RemoteRuntime, missing, request, unary};
use crate::{ContainerConfigExtras, Result, RuntimeService, api};

/// The CRI version string sent in `VersionRequest`, as upstream sends it.
const CRI_VERSION: &str = "v1";

/// `namespace/name` of the pod a sandbox config describes, for error messages.
fn pod_name(config: &api::PodSandboxConfig) -> String {
    match &config.metadata {
        Some(meta) => format!("{}/{}", meta.namespace, meta.name),
        None => String::new(),
    }
}

impl RemoteRuntime {
    fn timeout(&self) -> Option<Duration> {
        Some(self.request_timeout)
    }

    /// A call the generated client cannot make: `message` sent and the answer decoded by
    /// `codec` (a request in its wire form with fields newer than [`api`], or an answer read
    /// into a lean message, see [`crate::relist`]). `op`, `object` and the deadline as
    /// [`unary`]'s; `path` is `/runtime.v1.RuntimeService/<op>`.
    async fn unary_with_codec<Req, Resp>(
        &self,
        op: &'static str,
        object: &str,
        path: &'static str,
        message: Req,
        codec: tonic_prost::ProstCodec<Req, Resp>,
    ) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let deadline = self.timeout();
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(super::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(super::MAX_MESSAGE_SIZE);
        let call = async move {
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
            grpc.unary(request(message, deadline), path, codec).await
        };
        unary(op, object, deadline, call).await
    }
}

#[async_trait]
impl RuntimeService for RemoteRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        let deadline = self.timeout();
        let message = api::VersionRequest { version: CRI_VERSION.to_owned() };
        unary("Version", "", deadline, self.runtime.clone().version(request(message, deadline))).await
    }

    async fn status(&self, verbose: bool) -> Result<api::StatusResponse> {
        let deadline = self.timeout();
        let message = api::StatusRequest { verbose };
        let response = unary("Status", "", deadline, self.runtime.clone().status(request(message, deadline))).await?;
        if response.status.is_none() {
            return Err(missing("Status", "", "status"));
        }
        Ok(response)
    }

    async fn runtime_config(&self) -> Result<api::RuntimeConfigResponse> {
        let deadline = self.timeout();
        let message = api::RuntimeConfigRequest {};
        unary("RuntimeConfig", "", deadline, self.runtime.clone().runtime_config(request(message, deadline))).await
    }

    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig, runtime_handler: &str) -> Result<String> {
        const OP: &str = "RunPodSandbox";
        // Upstream doubles the timeout here: creating the network namespace and pulling the
        // sandbox image can be slow.
        let deadline = Some(self.request_timeout.saturating_mul(2));
        let object = pod_name(&config);
        let message = api::RunPodSandboxRequest { config: Some(config), runtime_handler: runtime_handler.to_owned() };
        let mut client = self.runtime.clone();
        let call = client.run_pod_sandbox(request(message, deadline));
        let response = unary(OP, &object, deadline, call).await?;
        if response.pod_sandbox_id.is_empty() {
            return Err(missing(OP, &object, "pod_sandbox_id"));
        }
        Ok(response.pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()> {
        let deadline = self.timeout();
        let message = api::StopPodSandboxRequest { pod_sandbox_id: pod_sandbox_id.to_owned() };
        let mut client = self.runtime.clone();
        let call = client.stop_pod_sandbox(request(message, deadline));
        unary("StopPodSandbox", pod_sandbox_id, deadline, call).await.map(drop)
    }

    async fn remove_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()> {
        let deadline = self.timeout();
        let message = api::RemovePodSandboxRequest { pod_sandbox_id: pod_sandbox_id.to_owned() };
        let mut client = self.runtime.clone();
        let call = client.remove_pod_sandbox(request(message, deadline));
        unary("RemovePodSandbox", pod_sandbox_id, deadline, call).await.map(drop)
    }

    async fn pod_sandbox_status(&self, pod_sandbox_id: &str) -> Result<api::PodSandboxStatus> {
        const OP: &str = "PodSandboxStatus";
        let deadline = self.timeout();
        let message = api::PodSandboxStatusRequest { pod_sandbox_id: pod_sandbox_id.to_owned(), verbose: false };
        let mut client = self.runtime.clone();
        let call = client.pod_sandbox_status(request(message, deadline));
        let response = unary(OP, pod_sandbox_id, deadline, call).await?;
        response.status.ok_or_else(|| missing(OP, pod_sandbox_id, "status"))
    }

    async fn list_pod_sandbox(&self, filter: Option<api::PodSandboxFilter>) -> Result<Vec<api::PodSandbox>> {
        let deadline = self.timeout();
        let mut client = self.runtime.clone();
        let call = client.list_pod_sandbox(request(api::ListPodSandboxRequest { filter }, deadline));
        Ok(unary("ListPodSandbox", "", deadline, call).await?.items)
    }

    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        self.create_container_with(pod_sandbox_id, config, &ContainerConfigExtras::default(), sandbox_config).await
    }

    async fn create_container_with(
        &self,
        pod_sandbox_id: &str,
        config: api::ContainerConfig,
        extras: &ContainerConfigExtras,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        const OP: &str = "CreateContainer";
        let deadline = self.timeout();
        let container = config.metadata.as_ref().map_or("", |meta| meta.name.as_str()).to_owned();
        let object = format!("{}/{container}", pod_name(&sandbox_config));
        let response = if extras.is_empty() {
            let message = api::CreateContainerRequest {
                pod_sandbox_id: pod_sandbox_id.to_owned(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            };
            let mut client = self.runtime.clone();
            let call = client.create_container(request(message, deadline));
            unary(OP, &object, deadline, call).await?
        } else {
            let wire = crate::newer::create_container_request(pod_sandbox_id, config, &sandbox_config, extras);
            let codec = tonic_prost::ProstCodec::<crate::newer::Encoded, api::CreateContainerResponse>::default();
            let path = "/runtime.v1.RuntimeService/CreateContainer";
            self.unary_with_codec(OP, &object, path, crate::newer::Encoded(wire), codec).await?
        };
        if response.container_id.is_empty() {
            return Err(missing(OP, &object, "container_id"));
        }
        Ok(response.container_id)
    }

    async fn start_container(&self, container_id: &str) -> Result<()> {
        let deadline = self.timeout();
        let message = api::StartContainerRequest { container_id: container_id.to_owned() };
        let mut client = self.runtime.clone();
        let call = client.start_container(request(message, deadline));
        unary("StartContainer", container_id, deadline, call).await.map(drop)
    }

    async fn update_container_resources(&self, container_id: &str, linux: api::LinuxContainerResources) -> Result<()> {
        let deadline = self.timeout();
        let message =
            api::UpdateContainerResourcesRequest { container_id: container_id.to_owned(), linux: Some(linux), ..Default::default() };
        let mut client = self.runtime.clone();
        let call = client.update_container_resources(request(message, deadline));
        unary("UpdateContainerResources", container_id, deadline, call).await.map(drop)
    }

    async fn reopen_container_log(&self, container_id: &str) -> Result<()> {
        let deadline = self.timeout();
        let message = api::ReopenContainerLogRequest { container_id: container_id.to_owned() };
        let mut client = self.runtime.clone();
        let call = client.reopen_container_log(request(message, deadline));
        unary("ReopenContainerLog", container_id, deadline, call).await.map(drop)
    }

    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()> {
        // The runtime may take the whole grace period before it kills, so the call's deadline is
        // the grace period plus the ordinary request timeout, as upstream.
        let deadline = Some(timeout.saturating_add(self.request_timeout));
        let seconds = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
        let message = api::StopContainerRequest { container_id: container_id.to_owned(), timeout: seconds };
        let mut client = self.runtime.clone();
        let call = client.stop_container(request(message, deadline));
        unary("StopContainer", container_id, deadline, call).await.map(drop)
    }

    async fn remove_container(&self, container_id: &str) -> Result<()> {
        let deadline = self.timeout();
        let message = api::RemoveContainerRequest { container_id: container_id.to_owned() };
        let mut client = self.runtime.clone();
        let call = client.remove_container(request(message, deadline));
        unary("RemoveContainer", container_id, deadline, call).await.map(drop)
    }

    async fn list_containers(&self, filter: Option<api::ContainerFilter>) -> Result<Vec<api::Container>> {
        let deadline = self.timeout();
        let mut client = self.runtime.clone();
        let call = client.list_containers(request(api::ListContainersRequest { filter }, deadline));
        Ok(unary("ListContainers", "", deadline, call).await?.containers)
    }

    async fn relist_pod_sandboxes(&self) -> Result<Vec<crate::RelistEntry>> {
        let codec = tonic_prost::ProstCodec::<api::ListPodSandboxRequest, crate::relist::LeanSandboxList>::default();
        let list = self
            .unary_with_codec(
                "ListPodSandbox",
                "",
                "/runtime.v1.RuntimeService/ListPodSandbox",
                api::ListPodSandboxRequest { filter: None },
                codec,
            )
            .await?;
        Ok(list.items.into_iter().map(Into::into).collect())
    }

    async fn relist_containers(&self) -> Result<Vec<crate::RelistEntry>> {
        let codec = tonic_prost::ProstCodec::<api::ListContainersRequest, crate::relist::LeanContainerList>::default();
        let list = self
            .unary_with_codec(
                "ListContainers",
                "",
                "/runtime.v1.RuntimeService/ListContainers",
                api::ListContainersRequest { filter: None },
                codec,
            )
            .await?;
        Ok(list.containers.into_iter().map(Into::into).collect())
    }

    async fn list_container_stats(&self, filter: Option<api::ContainerStatsFilter>) -> Result<Vec<api::ContainerStats>> {
        let deadline = self.timeout();
        let mut client = self.runtime.clone();
        let call = client.list_container_stats(request(api::ListContainerStatsRequest { filter }, deadline));
        Ok(unary("ListContainerStats", "", deadline, call).await?.stats)
    }

    async fn exec_sync(&self, container_id: &str, cmd: Vec<String>, timeout: Option<Duration>) -> Result<crate::ExecSyncOutput> {
        // The command's timeout travels in the request; the call itself may take that long plus
        // the usual request timeout (upstream adds the same margin). No timeout: no deadline.
        let deadline = timeout.map(|t| t + self.request_timeout);
        let message =
            api::ExecSyncRequest { container_id: container_id.to_owned(), cmd, timeout: timeout.map_or(0, |t| t.as_secs().max(1) as i64) };
        let mut client = self.runtime.clone();
        let call = client.exec_sync(request(message, deadline));
        let response = unary("ExecSync", container_id, deadline, call).await?;
        Ok(crate::ExecSyncOutput { stdout: response.stdout, stderr: response.stderr, exit_code: response.exit_code })
    }

    async fn exec(&self, message: api::ExecRequest) -> Result<String> {
        let deadline = self.timeout();
        let object = message.container_id.clone();
        let mut client = self.runtime.clone();
        let call = client.exec(request(message, deadline));
        streaming_url("Exec", &object, unary("Exec", &object, deadline, call).await?.url)
    }

    async fn attach(&self, message: api::AttachRequest) -> Result<String> {
        let deadline = self.timeout();
        let object = message.container_id.clone();
        let mut client = self.runtime.clone();
        let call = client.attach(request(message, deadline));
        streaming_url("Attach", &object, unary("Attach", &object, deadline, call).await?.url)
    }

    async fn port_forward(&self, message: api::PortForwardRequest) -> Result<String> {
        let deadline = self.timeout();
        let object = message.pod_sandbox_id.clone();
        let mut client = self.runtime.clone();
        let call = client.port_forward(request(message, deadline));
        let url = unary("PortForward", &object, deadline, call).await?.url;
        streaming_url("PortForward", &object, url)
    }

    async fn container_status(&self, container_id: &str) -> Result<api::ContainerStatus> {
        const OP: &str = "ContainerStatus";
        let deadline = self.timeout();
        let message = api::ContainerStatusRequest { container_id: container_id.to_owned(), verbose: false };
        let mut client = self.runtime.clone();
        let call = client.container_status(request(message, deadline));
        let status = unary(OP, container_id, deadline, call).await?.status.ok_or_else(|| missing(OP, container_id, "status"))?;
        // Upstream rejects statuses without these: the kubelet keys on them.
        if status.id.is_empty() {
            return Err(missing(OP, container_id, "status.id"));
        }
        if status.metadata.is_none() {
            return Err(missing(OP, container_id, "status.metadata"));
        }
        if status.created_at == 0 {
            return Err(missing(OP, container_id, "status.created_at"));
        }
        Ok(status)
    }
}

/// A streaming call must name where to stream.
fn streaming_url(op: &'static str, object: &str, url: String) -> Result<String> {
    if url.is_empty() {
        return Err(missing(op, object, "url"));
    }
    Ok(url)
}
