//! Cluster mode's parts at start: the API client (after TLS bootstrap), the object watches and
//! the pod startup SLI; events and Service environment from the API server, or their
//! standalone stand-ins; and the node's and the pods' reporting tasks.

use std::net::IpAddr;
use std::sync::Arc;

use kubelet::kuberuntime::env::{EnvSources, NoEnvSources};
use kubelet::metrics::KubeletMetrics;
use kubelet::pod_startup_latency::PodStartupLatencyTracker;
use kubelet::status_manager::StatusManager;
use kubelet::supervisor::{Stage, Supervisor};
use kubelet_cluster::Cluster;
use kubelet_config::KubeletOptions;
use kubelet_types::clock::SystemClock;
use kubelet_types::events::{EventRecorder, LogEventRecorder};

use crate::{AppError, Stops, certificates};

/// The API server's client, with `--kubeconfig` (cluster mode), and the pod startup latency
/// tracker it reports to; `None` in standalone mode.
pub(crate) async fn connect(
    opts: &KubeletOptions,
    node_name: &str,
    metrics: &Arc<KubeletMetrics>,
) -> Result<(Option<Cluster>, Option<Arc<PodStartupLatencyTracker>>), AppError> {
    certificates::bootstrap_if_needed(opts, node_name).await?;
    let Some(mut cluster) = Cluster::connect(opts, node_name).await? else { return Ok((None, None)) };
    // Secrets and ConfigMaps: watched one by one (the default), or a GET at every read (`Get`;
    // `Cache`, upstream's TTL cache, reads as `Get` here).
    if opts.config.config_map_and_secret_change_detection_strategy == "Watch" {
        cluster.api = cluster.api.with_object_watches();
    }
    // The pod startup latency SLI: only API pods are tracked, so only cluster mode has one.
    let tracker = Arc::new(PodStartupLatencyTracker::new(Arc::new(SystemClock), metrics.clone()));
    cluster.startup = Some(tracker.clone());
    Ok((Some(cluster), Some(tracker)))
}

/// Where events go (the API server, else the log) and where Service environment variables
/// come from (the API server's Services, else none); the event sender and the Service list's
/// warm-up are spawned.
pub(crate) fn events_and_env(
    cluster: Option<&Cluster>,
    opts: &KubeletOptions,
    node_name: &str,
    tasks: &mut Supervisor<AppError>,
    stops: &Stops,
) -> (Arc<dyn EventRecorder>, Arc<dyn EnvSources + Send>) {
    let Some(c) = cluster else { return (Arc::new(LogEventRecorder), Arc::new(NoEnvSources)) };
    let (sink, sender) = c.events(opts, stops.report.clone());
    tasks.spawn(Stage::Report, sender.name, sender.future);
    let env = c.env_source();
    tasks.spawn(Stage::Sync, "service list warm-up", env.clone().warm_up(stops.sync.clone()));
    (Arc::new(kubelet_cluster::events::ClusterEventRecorder { sink, node: node_name.to_string() }), Arc::new(env))
}

/// What cluster mode reports from: for the node status and lease the kubelet's health, its
/// runtime and devices; for the pods' statuses and mirror pods the status manager and the
/// desired pods.
pub(crate) struct Reporting {
    /// The node's pressure and the PLEG's health, for the node's conditions.
    pub health: Arc<kubelet::health::NodeHealth>,
    /// The runtime, for the node's runtime version and handlers.
    pub runtime: Arc<dyn kubelet_cri::RuntimeService>,
    /// The image service, for the node's images.
    pub images: Arc<dyn kubelet_cri::ImageService>,
    /// The device plugins' resources, for capacity and allocatable.
    pub devices: Arc<kubelet_deviceplugin::DeviceManager>,
    /// The pods' statuses as the kubelet sees them.
    pub status: StatusManager,
    /// The desired pods (for static pods' mirror pods).
    pub desired: tokio::sync::watch::Receiver<kubelet_podconfig::DesiredPods>,
}

/// Spawns the node's reporting (registration, status, lease) and the pods' (status sync, mirror
/// pods), all in stage `Report`.
pub(crate) fn spawn_reporting(
    cluster: &mut Cluster,
    opts: &KubeletOptions,
    host_ip: IpAddr,
    r: Reporting,
    tasks: &mut Supervisor<AppError>,
    stops: &Stops,
) {
    let node = cluster.node_tasks(opts, host_ip, r.runtime, r.images, r.health, Some(r.devices), stops.report.clone());
    let pod_sync = cluster.pod_sync_tasks(Arc::new(r.status), r.desired, stops.report.clone());
    for t in node.into_iter().chain(pod_sync) {
        tasks.spawn(Stage::Report, t.name, t.future);
    }
}
