//! Node registration and status reporting (upstream `registerWithAPIServer` and
//! `updateNodeStatus`): the I/O loop around the pure [`crate::node_status`] builders.
//!
//! It registers the node (backoff 100ms doubling to 7s; an existing node gets the kubelet's
//! labels reconciled), then every nodeStatusUpdateFrequency computes the status and patches it
//! when it changed or nodeStatusReportFrequency passed. A node deleted from the API is
//! registered again. Facts come through [`NodeFacts`] so tests use fakes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ContainerImage, Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubelet_cri::{ImageService, RuntimeService};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::NodeApi;
use crate::conditions::RuntimeHealth;
use crate::error::ApiError;
use crate::node_status::{NodeConfig, RuntimeInfo, StatusInputs, initial_node, node_labels, node_status, should_post, status_images};
use kubelet_types::machine::{HostPaths, MachineInfo, read_machine_info};
use kubelet_types::node::{DeviceCapacity, DeviceResources, KubeletHealthSource, Pressure};

const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(7);
/// How long after start-up a not-Ready node status is re-checked quickly, and how often.
const FAST_UPDATE_WINDOW: Duration = Duration::from_secs(120);
const FAST_UPDATE_PERIOD: Duration = Duration::from_secs(1);
/// Within that window, how often the runtime's readiness is looked at locally (upstream's
/// `fastStatusUpdateOnce` ticks every 100 ms): the status is posted as soon as it turns ready.
const FAST_READY_POLL: Duration = Duration::from_millis(100);
/// How many rounds may start early while the runtime already looks healthy.
const FAST_EARLY_ROUNDS: u32 = 3;

fn is_ready(status: &NodeStatus) -> bool {
    status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Where the node's facts come from.
#[async_trait]
pub trait NodeFacts: Send + Sync + 'static {
    /// Cores, memory, huge pages, filesystem size and the machine's IDs, read now.
    fn machine(&self) -> MachineInfo;
    /// The CRI runtime's name, version, health (with the kubelet's own not-ready reasons) and
    /// features.
    async fn runtime(&self) -> RuntimeInfo;
    /// The node's images for `status.images`, largest first, at most `max` (-1: all).
    async fn images(&self, max: i32) -> Vec<ContainerImage>;
    /// The eviction manager's pressure signals; none by default.
    fn pressure(&self) -> Pressure {
        Pressure::default()
    }
    /// Device plugin resources; none by default.
    fn devices(&self) -> DeviceCapacity {
        DeviceCapacity::default()
    }
}

/// Facts from the host and the CRI runtime.
pub struct HostNodeFacts {
    /// Where `/proc`, `/sys`, `/etc` and the kubelet root dir are read.
    pub paths: HostPaths,
    /// The CRI runtime service, asked for its version and status.
    pub runtime: Arc<dyn RuntimeService>,
    /// The CRI image service, asked for the image list.
    pub images: Arc<dyn ImageService>,
    /// The kubelet's eviction pressure and PLEG health.
    pub health: Arc<dyn KubeletHealthSource>,
    /// The device plugin manager, when it runs.
    pub devices: Option<Arc<dyn DeviceResources>>,
}

#[async_trait]
impl NodeFacts for HostNodeFacts {
    fn machine(&self) -> MachineInfo {
        read_machine_info(&self.paths)
    }

    async fn runtime(&self) -> RuntimeInfo {
        let (name, version) = match self.runtime.version().await {
            Ok(v) => (v.runtime_name, v.runtime_version),
            Err(_) => (String::new(), String::new()),
        };
        let response = self.runtime.status(false).await.ok();
        let mut health = RuntimeHealth::from_cri(response.as_ref().and_then(|s| s.status.as_ref()));
        health.errors.extend(self.health.not_ready_reasons());
        let info = RuntimeInfo { name, version, health, ..RuntimeInfo::default() };
        match &response {
            Some(r) => info.with_cri_features(r),
            None => info,
        }
    }

    fn pressure(&self) -> Pressure {
        self.health.pressure()
    }

    fn devices(&self) -> DeviceCapacity {
        self.devices.as_ref().map(|d| d.device_capacity()).unwrap_or_default()
    }

    async fn images(&self, max: i32) -> Vec<ContainerImage> {
        match self.images.list_images(None).await {
            Ok(images) => status_images(images, max),
            Err(e) => {
                tracing::warn!("listing images for the node status: {e}");
                Vec::new()
            }
        }
    }
}

/// Registers the node and keeps its status current.
pub struct NodeController {
    /// Creates the Node and patches its status.
    pub api: Arc<dyn NodeApi>,
    /// The machine, runtime, image, pressure and device facts the status is computed from.
    pub facts: Arc<dyn NodeFacts>,
    /// The node's identity and settings.
    pub config: NodeConfig,
    /// `nodeStatusUpdateFrequency` of the KubeletConfiguration (default 10 s): how often the
    /// status is computed.
    pub update_frequency: Duration,
    /// `nodeStatusReportFrequency` (default 5 min): an unchanged status is still posted this often.
    pub report_frequency: Duration,
    /// Whether to create the node (`--register-node`).
    pub register: bool,
    /// The registered node's UID, published for the lease and mirror pods.
    pub registered: watch::Sender<Option<Node>>,
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

impl NodeController {
    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let started = Instant::now();
        let mut last_post: Option<(NodeStatus, Instant)> = None;
        let mut need_register = self.register;
        let mut early_rounds = 0;
        loop {
            if need_register {
                let Some(node) = self.register_with_backoff(&shutdown).await else { return };
                last_post = node.status.clone().map(|s| (s, Instant::now()));
                self.registered.send_replace(Some(node));
                need_register = false;
            } else {
                match self.update_status(&mut last_post).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() && self.register => {
                        tracing::warn!(node = %self.config.name, "node was deleted from the API server; registering it again");
                        need_register = true;
                        continue;
                    }
                    Err(e) => tracing::warn!(node = %self.config.name, "error updating node status, will retry: {e}"),
                }
            }
            // Right after start-up, a not-yet-Ready node is re-checked every second so it turns
            // Ready as soon as the runtime and PLEG are (upstream `fastStatusUpdateOnce`).
            let not_ready = last_post.as_ref().is_some_and(|(s, _)| !is_ready(s));
            if not_ready && started.elapsed() < FAST_UPDATE_WINDOW {
                // Cut the wait short when the runtime turns healthy during it, or (a few times,
                // as it may have before the first look) is healthy: a node NotReady for another
                // reason soon keeps to one round a second.
                let until = Instant::now() + self.update_frequency.min(FAST_UPDATE_PERIOD);
                let mut was_healthy = None;
                while Instant::now() < until {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(FAST_READY_POLL) => {}
                    }
                    let healthy = self.facts.runtime().await.health.errors.is_empty();
                    if healthy && (was_healthy == Some(false) || early_rounds < FAST_EARLY_ROUNDS) {
                        early_rounds += 1;
                        break;
                    }
                    was_healthy = Some(healthy);
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.update_frequency) => {}
                }
            }
        }
    }

    async fn status(&self, previous: Option<&NodeStatus>) -> NodeStatus {
        let machine = self.facts.machine();
        let runtime = self.facts.runtime().await;
        let images = self.facts.images(self.config.max_images).await;
        let inputs = StatusInputs {
            config: &self.config,
            machine: &machine,
            runtime: &runtime,
            images,
            pressure: self.facts.pressure(),
            devices: self.facts.devices(),
            now: now(),
        };
        node_status(inputs, previous)
    }

    async fn register_with_backoff(&self, shutdown: &CancellationToken) -> Option<Node> {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.try_register().await {
                Ok(node) => {
                    tracing::info!(node = %self.config.name, "successfully registered node");
                    return Some(node);
                }
                Err(e) => {
                    tracing::warn!(node = %self.config.name, "unable to register node with the API server, retrying in {wait:?}: {e}")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(REGISTER_BACKOFF_MAX);
        }
    }

    /// Creates the node; if it exists, reconciles the kubelet's labels on it.
    pub async fn try_register(&self) -> Result<Node, ApiError> {
        let mut node = initial_node(&self.config);
        node.status = Some(self.status(None).await);
        match self.api.create_node(&node).await {
            Ok(created) => Ok(created),
            Err(e) if e.is_already_exists() => {
                let existing = self.api.get_node(&self.config.name).await?.ok_or(e)?;
                let want = node_labels(&self.config);
                let have = existing.metadata.labels.clone().unwrap_or_default();
                if want.iter().all(|(k, v)| have.get(k) == Some(v)) {
                    return Ok(existing);
                }
                let patch = serde_json::json!({ "metadata": { "labels": want } });
                self.api.patch_node(&self.config.name, &patch).await
            }
            Err(e) => Err(e),
        }
    }

    async fn update_status(&self, last_post: &mut Option<(NodeStatus, Instant)>) -> Result<(), ApiError> {
        let node = self
            .api
            .get_node(&self.config.name)
            .await?
            .ok_or_else(|| ApiError::NotFound { what: format!("nodes/{}", self.config.name) })?;
        if self.registered.borrow().as_ref().and_then(|n| n.metadata.uid.clone()) != node.metadata.uid {
            self.registered.send_replace(Some(node.clone()));
        }
        let status = self.status(node.status.as_ref()).await;
        let since = last_post.as_ref().map_or(Duration::MAX, |(_, at)| at.elapsed());
        let posted = node.status.as_ref().or(last_post.as_ref().map(|(s, _)| s));
        if !should_post(posted, &status, since, self.report_frequency) {
            return Ok(());
        }
        let patch = serde_json::json!({ "status": status });
        self.api.patch_node_status(&self.config.name, &patch).await?;
        *last_post = Some((status, Instant::now()));
        Ok(())
    }
}
