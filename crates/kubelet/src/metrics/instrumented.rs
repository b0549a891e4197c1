//! The runtime and image services with every CRI call counted and timed (upstream's
//! `instrumentedRuntimeService`): `kubelet_runtime_operations_total`,
//! `kubelet_runtime_operations_errors_total` and `kubelet_runtime_operations_duration_seconds`
//! by `operation_type`, upstream's operation names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kubelet_cri::{ExecSyncOutput, ImageService, Result, RuntimeService, api};

use super::KubeletMetrics;

/// A [`RuntimeService`] and [`ImageService`] that records each call.
pub struct InstrumentedRuntime<R: ?Sized, I: ?Sized> {
    runtime: Arc<R>,
    images: Arc<I>,
    metrics: Arc<KubeletMetrics>,
}

impl<R: ?Sized, I: ?Sized> InstrumentedRuntime<R, I> {
    /// Wraps `runtime` and `images`, recording every call into `metrics`.
    pub fn new(runtime: Arc<R>, images: Arc<I>, metrics: Arc<KubeletMetrics>) -> Self {
        InstrumentedRuntime { runtime, images, metrics }
    }

    async fn record<T>(&self, operation: &str, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let start = Instant::now();
        let out = call.await;
        let m = &self.metrics;
        m.runtime_operations.inc(&[operation]);
        m.runtime_operations_duration.observe(&[operation], start.elapsed().as_secs_f64());
        if out.is_err() {
            m.runtime_operations_errors.inc(&[operation]);
        }
        out
    }
}

#[async_trait]
impl<R: RuntimeService + ?Sized, I: Send + Sync + 'static + ?Sized> RuntimeService for InstrumentedRuntime<R, I> {
    async fn version(&self) -> Result<api::VersionResponse> {
        self.record("version", self.runtime.version()).await
    }
    async fn status(&self, verbose: bool) -> Result<api::StatusResponse> {
        self.record("status", self.runtime.status(verbose)).await
    }
    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig, runtime_handler: &str) -> Result<String> {
        self.record("run_podsandbox", self.runtime.run_pod_sandbox(config, runtime_handler)).await
    }
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.record("stop_podsandbox", self.runtime.stop_pod_sandbox(id)).await
    }
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.record("remove_podsandbox", self.runtime.remove_pod_sandbox(id)).await
    }
    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        self.record("podsandbox_status", self.runtime.pod_sandbox_status(id)).await
    }
    async fn list_pod_sandbox(&self, filter: Option<api::PodSandboxFilter>) -> Result<Vec<api::PodSandbox>> {
        self.record("list_podsandbox", self.runtime.list_pod_sandbox(filter)).await
    }
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        self.record("create_container", self.runtime.create_container(sandbox_id, config, sandbox_config)).await
    }
    async fn create_container_with(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        extras: &kubelet_cri::ContainerConfigExtras,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        self.record("create_container", self.runtime.create_container_with(sandbox_id, config, extras, sandbox_config)).await
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        self.record("start_container", self.runtime.start_container(id)).await
    }
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.record("stop_container", self.runtime.stop_container(id, timeout)).await
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        self.record("remove_container", self.runtime.remove_container(id)).await
    }
    async fn list_containers(&self, filter: Option<api::ContainerFilter>) -> Result<Vec<api::Container>> {
        self.record("list_containers", self.runtime.list_containers(filter)).await
    }
    async fn relist_pod_sandboxes(&self) -> Result<Vec<kubelet_cri::RelistEntry>> {
        self.record("list_podsandbox", self.runtime.relist_pod_sandboxes()).await
    }
    async fn relist_containers(&self) -> Result<Vec<kubelet_cri::RelistEntry>> {
        self.record("list_containers", self.runtime.relist_containers()).await
    }
    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        self.record("container_status", self.runtime.container_status(id)).await
    }
    async fn update_container_resources(&self, id: &str, linux: api::LinuxContainerResources) -> Result<()> {
        self.record("update_container", self.runtime.update_container_resources(id, linux)).await
    }
    async fn reopen_container_log(&self, id: &str) -> Result<()> {
        self.record("reopen_container_log", self.runtime.reopen_container_log(id)).await
    }
    async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout: Option<Duration>) -> Result<ExecSyncOutput> {
        self.record("exec_sync", self.runtime.exec_sync(id, cmd, timeout)).await
    }
    async fn exec(&self, request: api::ExecRequest) -> Result<String> {
        self.record("exec", self.runtime.exec(request)).await
    }
    async fn attach(&self, request: api::AttachRequest) -> Result<String> {
        self.record("attach", self.runtime.attach(request)).await
    }
    async fn port_forward(&self, request: api::PortForwardRequest) -> Result<String> {
        self.record("port_forward", self.runtime.port_forward(request)).await
    }
    async fn list_container_stats(&self, filter: Option<api::ContainerStatsFilter>) -> Result<Vec<api::ContainerStats>> {
        self.record("list_container_stats", self.runtime.list_container_stats(filter)).await
    }
}

#[async_trait]
impl<R: Send + Sync + 'static + ?Sized, I: ImageService + ?Sized> ImageService for InstrumentedRuntime<R, I> {
    async fn list_images(&self, filter: Option<api::ImageFilter>) -> Result<Vec<api::Image>> {
        self.record("list_images", self.images.list_images(filter)).await
    }
    async fn image_status(&self, image: &api::ImageSpec) -> Result<Option<api::Image>> {
        self.record("image_status", self.images.image_status(image)).await
    }
    async fn pull_image(
        &self,
        image: api::ImageSpec,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String> {
        self.record("pull_image", self.images.pull_image(image, auth, sandbox_config)).await
    }
    async fn remove_image(&self, image: &api::ImageSpec) -> Result<()> {
        self.record("remove_image", self.images.remove_image(image)).await
    }
    async fn image_fs_info(&self) -> Result<api::ImageFsInfoResponse> {
        self.record("image_fs_info", self.images.image_fs_info()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::FakeRuntime;

    #[tokio::test]
    async fn counts_calls_and_errors_by_operation() {
        let fake = Arc::new(FakeRuntime::new());
        let metrics = Arc::new(KubeletMetrics::new());
        let r = InstrumentedRuntime::new(fake.clone(), fake, metrics.clone());
        r.version().await.unwrap();
        r.version().await.unwrap();
        assert!(r.container_status("no-such-container").await.is_err());
        assert_eq!(metrics.runtime_operations.get(&["version"]), 2.0);
        assert_eq!(metrics.runtime_operations.get(&["container_status"]), 1.0);
        assert_eq!(metrics.runtime_operations_errors.get(&["container_status"]), 1.0);
        assert_eq!(metrics.runtime_operations_errors.get(&["version"]), 0.0);
        assert_eq!(metrics.runtime_operations_duration.count(&["version"]), 2);
    }
}
