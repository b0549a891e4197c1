//! The node's housekeeping tasks, all in stage `Sync` but the stats collector (`Report`):
//! container log rotation, image garbage collection, the eviction manager (with node-level
//! reclaim), the PLEG, the memory trimmer, and the stats collector whose snapshots eviction and
//! the stats endpoints read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kubelet::eviction::EvictionManager;
use kubelet::eviction::observe::SignalPaths;
use kubelet::eviction::requests::EvictionRequests;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::metrics::KubeletMetrics;
use kubelet::pleg::{Pleg, RELIST_PERIOD, Relist};
use kubelet::stats::{StatsConfig, StatsStore};
use kubelet::status_manager::StatusManager;
use kubelet::supervisor::{Stage, Supervisor};
use kubelet_config::KubeletOptions;
use kubelet_types::clock::SystemClock;
use kubelet_types::events::EventRecorder;
use kubelet_types::node::Pressure;
use tokio::sync::{mpsc, watch};

use crate::runtime::Runtime;
use crate::{AppError, CONTAINER_LOGS_DIR, PROC_ROOT, Stops};

/// What the housekeeping tasks work on.
pub(crate) struct Parts<'a> {
    pub opts: &'a KubeletOptions,
    pub runtime: &'a Runtime,
    pub events: Arc<dyn EventRecorder>,
    pub status: &'a StatusManager,
    pub metrics: &'a Arc<KubeletMetrics>,
    /// Where the eviction manager's pod evictions go.
    pub evictions: EvictionRequests,
    /// The stats collector's settings.
    pub stats: StatsConfig,
}

/// What the rest of the kubelet reads from housekeeping.
pub(crate) struct Housekeeping {
    /// The eviction manager's latest pressure (node conditions).
    pub pressure: watch::Receiver<Pressure>,
    /// The PLEG's latest relist (health, the sync loop's orphan sweeps).
    pub relist: watch::Receiver<Relist>,
    /// Pods whose runtime state the PLEG saw change.
    pub pleg_events: mpsc::Receiver<PodRef>,
    /// The latest stats snapshot.
    pub stats: StatsStore,
}

/// Spawns the housekeeping tasks.
pub(crate) fn start(p: Parts<'_>, tasks: &mut Supervisor<AppError>, stops: &Stops) -> Housekeeping {
    let cfg = &p.opts.config;
    let runtime = p.runtime.service.clone();
    let root_dir = p.opts.flags.root_dir.clone();
    // The stats collector's snapshots feed eviction too.
    let stats = StatsStore::default();
    // Image garbage collection: on its own period, and for eviction's disk reclaim.
    let image_gc = kubelet::image_gc::ImageGcManager::new(
        runtime.clone(),
        p.runtime.images.clone(),
        Arc::new(kubelet::image_gc::RuntimeImageFs(p.runtime.images.clone())),
        p.events,
        Arc::new(SystemClock),
        kubelet::image_gc::records::ImageGcPolicy {
            high_threshold_percent: cfg.image_gc_high_threshold_percent,
            low_threshold_percent: cfg.image_gc_low_threshold_percent,
            min_age: cfg.image_minimum_gc_age,
            max_age: cfg.image_maximum_gc_age,
        },
    )
    .with_metrics(p.metrics.clone());
    let image_gc = Arc::new(match &p.runtime.pull_records {
        Some(records) => image_gc.with_pull_records(records.clone()),
        None => image_gc,
    });
    let log_manager = kubelet::logs::ContainerLogManager::new(runtime.clone(), kubelet::logs::LogRotationPolicy::from_config(cfg));
    tasks.spawn(Stage::Sync, "container log manager", log_manager.run(stops.sync.clone()));
    tasks.spawn(Stage::Sync, "image garbage collector", image_gc.clone().run(kubelet::image_gc::IMAGE_GC_PERIOD, stops.sync.clone()));
    let memory_cgroup = kubelet::eviction::memory_watch::v1_root_memory_cgroup(Path::new("/sys/fs/cgroup"));
    let signal_paths = SignalPaths { proc_root: PROC_ROOT.into(), node_fs: root_dir.clone(), image_fs: root_dir.clone(), memory_cgroup };
    let eviction_manager = EvictionManager::from_config(cfg, signal_paths)
        .with_pods(kubelet::eviction::PodEvictions {
            pods: Arc::new(p.status.clone()),
            stats: Arc::new(stats.clone()),
            requests: p.evictions,
        })
        .with_reclaim(Arc::new(kubelet::image_gc::DiskReclaim {
            gc: image_gc,
            containers: Some(kubelet::kuberuntime::container_gc::ContainerReclaim {
                runtime: runtime.clone(),
                container_logs_dir: PathBuf::from(CONTAINER_LOGS_DIR),
                pods: Arc::new(p.status.clone()),
            }),
            node_fs: root_dir,
        }));
    let (pressure_tx, pressure) = watch::channel(Pressure::default());
    tasks.spawn(Stage::Sync, "eviction manager", eviction_manager.run(pressure_tx, stops.sync.clone()));

    let (pleg_tx, pleg_events) = mpsc::channel(256);
    let (relist_tx, relist) = watch::channel(Relist::default());
    let pleg = Pleg::new(runtime.clone(), RELIST_PERIOD).with_metrics(p.metrics.clone());
    tasks.spawn(Stage::Sync, "PLEG", pleg.run(pleg_tx, relist_tx, stops.sync.clone()));
    let trimmer = kubelet::memory::MemoryTrimmer::default().run(stops.sync.clone());
    tasks.spawn(Stage::Sync, "memory trimmer", async move {
        trimmer.await;
    });

    // Stats: sampled on the housekeeping interval, served from the latest snapshot.
    let collector = kubelet::stats::StatsCollector::new(
        p.stats,
        kubelet::stats::cgroup::CgroupReader::new(kubelet::cm::cgroupfs::Cgroupfs::detect(Path::new("/sys/fs/cgroup"))),
        Arc::new(p.status.clone()),
        runtime,
        p.runtime.images.clone(),
        stats.clone(),
    );
    tasks.spawn(Stage::Report, "stats collector", collector.run(stops.report.clone()));
    Housekeeping { pressure, relist, pleg_events, stats }
}
