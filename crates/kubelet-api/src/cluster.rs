//! Starts the cluster-mode tasks for a kubelet with `--kubeconfig`: the API pod source, node
//! registration and status, the node lease, events, the pod status syncer and mirror pods, and
//! gives the environment source for containers. The
//! kubelet calls these in order as it builds its parts; each task stops at `shutdown`.
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
use crate::machine::HostPaths;
use crate::mirror::MirrorPodManager;
use crate::node_controller::{DeviceResources, HostNodeFacts, KubeletHealthSource, NodeController};
use crate::node_status::NodeConfig;
use crate::pod_source::{ApiPodSource, PodStore};
use crate::rate_limit::RateLimiter;
use crate::status_sync::{PodStatusProvider, StatusSyncer};

/// The connection and the shared views the cluster tasks publish.
pub struct Cluster {
    pub api: KubeApi,
    pub node_name: String,
    /// The node's API pods (one writer: the pod source).
    pub store: watch::Receiver<PodStore>,
    store_tx: Option<watch::Sender<PodStore>>,
    /// The registered Node (one writer: the node controller).
    pub node: watch::Receiver<Option<Node>>,
    node_tx: Option<watch::Sender<Option<Node>>>,
}

impl Cluster {
    /// Builds the client from `--kubeconfig` (no request is sent yet).
    pub async fn connect(opts: &KubeletOptions, node_name: &str) -> Result<Option<Cluster>, ClientError> {
        let Some(kubeconfig) = opts.flags.kubeconfig.clone() else { return Ok(None) };
        let api = connect(&ClientOptions { kubeconfig, qps: opts.config.kube_api_qps, burst: opts.config.kube_api_burst }).await?;
        let (store_tx, store) = watch::channel(PodStore::default());
        let (node_tx, node) = watch::channel(None);
        Ok(Some(Cluster { api, node_name: node_name.into(), store, store_tx: Some(store_tx), node, node_tx: Some(node_tx) }))
    }

    /// Starts the API pod source, sending `PodSource::Api` updates on `updates`.
    pub fn start_pod_source(&mut self, updates: mpsc::Sender<PodUpdate>, shutdown: CancellationToken) {
        let Some(store_tx) = self.store_tx.take() else { return };
        let src = ApiPodSource { api: Arc::new(self.api.clone()), node_name: self.node_name.clone(), node: self.node.clone() };
        tokio::spawn(src.run(updates, store_tx, shutdown));
    }

    /// Starts node registration and status updates, and the node lease.
    #[allow(clippy::too_many_arguments)]
    pub fn start_node(
        &mut self,
        opts: &KubeletOptions,
        node_ip: IpAddr,
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        health: Arc<dyn KubeletHealthSource>,
        devices: Option<Arc<dyn DeviceResources>>,
        shutdown: CancellationToken,
    ) {
        let Some(node_tx) = self.node_tx.take() else { return };
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
        tokio::spawn(controller.run(shutdown.clone()));
        let lease = LeaseController {
            leases: api.clone(),
            nodes: api,
            node_name: self.node_name.clone(),
            duration_seconds: cfg.node_lease_duration_seconds,
            clock: micro_now,
        };
        tokio::spawn(lease.run(shutdown));
    }

    /// Starts the event sender; returns the sink pods' events go to.
    pub fn start_events(&self, opts: &KubeletOptions, shutdown: CancellationToken) -> EventSink {
        // Events have their own budget (eventRecordQPS/eventBurst, as upstream's separate event
        // client): they must not spend the kubeAPIQPS tokens pod statuses need.
        let events_api = KubeApi::new(self.api.client().clone(), RateLimiter::unlimited());
        let (sink, sender) = EventSink::new(Arc::new(events_api), &self.node_name, opts.config.event_record_qps, opts.config.event_burst);
        tokio::spawn(sender.run(shutdown));
        sink
    }

    /// ConfigMaps, Secrets and Services for container environments.
    pub fn env_source(&self) -> ApiEnvSource {
        ApiEnvSource::new(Arc::new(self.api.clone()))
    }

    /// Starts the pod status syncer and the mirror pod manager.
    pub fn start_pod_sync(&self, provider: Arc<dyn PodStatusProvider>, desired: watch::Receiver<DesiredPods>, shutdown: CancellationToken) {
        let api = Arc::new(self.api.clone());
        let syncer = StatusSyncer { api: api.clone(), provider: provider.clone(), store: self.store.clone() };
        tokio::spawn(syncer.run(shutdown.clone()));
        let mirrors = MirrorPodManager { api, node_name: self.node_name.clone(), desired, store: self.store.clone(), node: self.node.clone(), known: provider };
        tokio::spawn(mirrors.run(shutdown));
    }
}
