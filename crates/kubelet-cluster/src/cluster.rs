//! Builds the cluster-mode tasks for a kubelet with `--kubeconfig`: the API pod source, node
//! registration and status, the node lease, events, the pod status syncer and mirror pods, and
//! gives the environment source for containers. The kubelet calls these in order as it builds
//! its parts and owns the [`ClusterTask`]s they return (it spawns and supervises them; nothing
//! here is spawned and forgotten); each task stops at the token it was given.
//!
//! Owns only the wiring: every task's logic lives in its own module.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use kubelet_config::KubeletOptions;
use kubelet_cri::{ImageService, RuntimeService};
use kubelet_podconfig::{DesiredPods, PodUpdate};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::api::KubeApi;
use crate::client::{ClientError, ClientOptions, connect};
use crate::env::ApiEnvSource;
use crate::events::EventSink;
use crate::lease::{LeaseController, micro_now};
use crate::mirror::MirrorPodManager;
use crate::node_controller::{HostNodeFacts, NodeController};
use crate::node_status::NodeConfig;
use crate::pod_source::{ApiPodSource, PodStore};
use crate::status_sync::StatusSyncer;
use kubelet_types::machine::HostPaths;
use kubelet_types::node::{DeviceResources, KubeletHealthSource};
use kubelet_types::rate_limit::RateLimiter;
use kubelet_types::startup::PodStartupObserver;
use kubelet_types::status::PodStatusProvider;

/// One long-lived cluster task, named for the kubelet's log when it fails.
pub struct ClusterTask {
    /// The task's name (`API pod source`, ...), for the log.
    pub name: &'static str,
    /// The task itself; it ends when its cancellation token fires.
    pub future: futures::future::BoxFuture<'static, ()>,
}

fn task(name: &'static str, future: impl std::future::Future<Output = ()> + Send + 'static) -> ClusterTask {
    ClusterTask { name, future: Box::pin(future) }
}

/// The connection and the shared views the cluster tasks publish.
pub struct Cluster {
    /// The rate-limited API client every task shares.
    pub api: KubeApi,
    /// This node's name (the Node object's `metadata.name`).
    pub node_name: String,
    /// The node's API pods (one writer: the pod source).
    pub store: watch::Receiver<PodStore>,
    store_tx: Option<watch::Sender<PodStore>>,
    /// The registered Node (one writer: the node controller).
    pub node: watch::Receiver<Option<Node>>,
    node_tx: Option<watch::Sender<Option<Node>>>,
    /// Told of pods received and statuses stored (the pod startup latency SLI), when set before
    /// the tasks are made.
    pub startup: Option<Arc<dyn PodStartupObserver>>,
}

impl Cluster {
    /// Builds the client from `--kubeconfig` (no request is sent yet).
    pub async fn connect(opts: &KubeletOptions, node_name: &str) -> Result<Option<Cluster>, ClientError> {
        let Some(kubeconfig) = opts.flags.kubeconfig.clone() else { return Ok(None) };
        let api = connect(&ClientOptions { kubeconfig, qps: opts.config.kube_api_qps, burst: opts.config.kube_api_burst }).await?;
        let (store_tx, store) = watch::channel(PodStore::default());
        let (node_tx, node) = watch::channel(None);
        Ok(Some(Cluster { api, node_name: node_name.into(), store, store_tx: Some(store_tx), node, node_tx: Some(node_tx), startup: None }))
    }

    /// The API pod source, sending `PodSource::Api` updates on `updates` (once: `None` after).
    pub fn pod_source(&mut self, updates: mpsc::Sender<PodUpdate>, shutdown: CancellationToken) -> Option<ClusterTask> {
        let store_tx = self.store_tx.take()?;
        let src = ApiPodSource {
            api: Arc::new(self.api.clone()),
            node_name: self.node_name.clone(),
            node: self.node.clone(),
            startup: self.startup.clone(),
        };
        Some(task("API pod source", src.run(updates, store_tx, shutdown)))
    }

    /// Node registration and status updates, and the node lease (once: empty after).
    #[allow(clippy::too_many_arguments)]
    pub fn node_tasks(
        &mut self,
        opts: &KubeletOptions,
        node_ip: IpAddr,
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        health: Arc<dyn KubeletHealthSource>,
        devices: Option<Arc<dyn DeviceResources>>,
        shutdown: CancellationToken,
    ) -> Vec<ClusterTask> {
        let Some(node_tx) = self.node_tx.take() else { return Vec::new() };
        let cfg = &opts.config;
        let api = Arc::new(self.api.clone());
        let controller = NodeController {
            api: api.clone(),
            facts: Arc::new(HostNodeFacts { paths: HostPaths::host(&opts.flags.root_dir), runtime, images, health, devices }),
            config: NodeConfig::from_options(opts, &self.node_name, node_ip),
            update_frequency: cfg.node_status_update_frequency,
            report_frequency: cfg.node_status_report_frequency,
            register: cfg.register_node,
            registered: node_tx,
        };
        let node_status = task("node status", controller.run(shutdown.clone()));
        let lease = LeaseController {
            leases: api.clone(),
            nodes: api,
            node_name: self.node_name.clone(),
            duration_seconds: cfg.node_lease_duration_seconds,
            clock: micro_now,
        };
        vec![node_status, task("node lease", lease.run(shutdown))]
    }

    /// The sink pods' events go to, and the task that sends them.
    pub fn events(&self, opts: &KubeletOptions, shutdown: CancellationToken) -> (EventSink, ClusterTask) {
        // Events have their own budget (eventRecordQPS/eventBurst, as upstream's separate event
        // client): they must not spend the kubeAPIQPS tokens pod statuses need.
        let events_api = self.api.with_limiter(RateLimiter::unlimited());
        let (sink, sender) = EventSink::new(Arc::new(events_api), &self.node_name, opts.config.event_record_qps, opts.config.event_burst);
        (sink, task("event sender", sender.run(shutdown)))
    }

    /// ConfigMaps, Secrets and Services for container environments.
    pub fn env_source(&self) -> ApiEnvSource {
        ApiEnvSource::new(Arc::new(self.api.clone()))
    }

    /// The pod status syncer and the mirror pod manager.
    pub fn pod_sync_tasks(
        &self,
        provider: Arc<dyn PodStatusProvider>,
        desired: watch::Receiver<DesiredPods>,
        shutdown: CancellationToken,
    ) -> Vec<ClusterTask> {
        let api = Arc::new(self.api.clone());
        let syncer =
            StatusSyncer { api: api.clone(), provider: provider.clone(), store: self.store.clone(), startup: self.startup.clone() };
        let statuses = task("pod status syncer", syncer.run(shutdown.clone()));
        let mirrors = MirrorPodManager {
            api,
            node_name: self.node_name.clone(),
            desired,
            store: self.store.clone(),
            node: self.node.clone(),
            known: provider,
        };
        vec![statuses, task("mirror pods", mirrors.run(shutdown))]
    }
}
