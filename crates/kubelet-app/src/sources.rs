//! The pod sources (static pod files, a static pod URL, the API server) and the `PodConfig`
//! that merges their sets into the desired pods; and the view of those pods the device
//! manager gets.

use std::path::PathBuf;

use kubelet::supervisor::{Stage, Supervisor};
use kubelet_cluster::Cluster;
use kubelet_config::types::KubeletConfiguration;
use kubelet_podconfig::{DesiredPods, PodConfig, PodSource, StaticPodSource, UrlPodSource};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::AppError;

/// Starts the configured sources and the merger (stage `Sync`); returns the desired pods.
pub(crate) fn start(
    tasks: &mut Supervisor<AppError>,
    cfg: &KubeletConfiguration,
    node_name: &str,
    cluster: Option<&mut Cluster>,
    stop: &CancellationToken,
) -> watch::Receiver<DesiredPods> {
    let (updates_tx, updates_rx) = mpsc::channel(16);
    let mut sources = Vec::new();
    if !cfg.static_pod_path.is_empty() {
        sources.push(PodSource::File);
        let src = StaticPodSource::new(PathBuf::from(&cfg.static_pod_path), node_name.to_string(), cfg.file_check_frequency);
        tasks.spawn(Stage::Sync, "static pod source (file)", src.run(updates_tx.clone(), stop.clone()));
    }
    if !cfg.static_pod_url.is_empty() {
        sources.push(PodSource::Http);
        let src = UrlPodSource::new(
            cfg.static_pod_url.clone(),
            cfg.static_pod_url_header.clone(),
            node_name.to_string(),
            cfg.http_check_frequency,
        );
        tasks.spawn(Stage::Sync, "static pod source (URL)", src.run(updates_tx.clone(), stop.clone()));
    }
    if let Some(cluster) = cluster {
        sources.push(PodSource::Api);
        if let Some(t) = cluster.pod_source(updates_tx.clone(), stop.clone()) {
            tasks.spawn(Stage::Sync, t.name, t.future);
        }
    }
    drop(updates_tx);
    let (pod_config, desired) = PodConfig::new(&sources);
    tasks.spawn(Stage::Sync, "pod config", pod_config.run(updates_rx));
    desired
}

/// Which pods may hold devices (upstream `activePods`): the desired pods that have not finished,
/// once every source delivered its first set.
pub(crate) struct DesiredPodUids(pub watch::Receiver<DesiredPods>);

impl kubelet_deviceplugin::ActivePods for DesiredPodUids {
    fn active_pod_uids(&self) -> Option<std::collections::BTreeSet<String>> {
        let desired = self.0.borrow();
        let finished = |p: &k8s_openapi::api::core::v1::Pod| {
            kubelet::status::is_terminal_phase(p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default())
        };
        desired.sources_ready.then(|| desired.pods.iter().filter(|(_, p)| !finished(p)).map(|(uid, _)| uid.clone()).collect())
    }
}
