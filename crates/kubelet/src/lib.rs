//! The kubelet's core, as a library the thin `kubelet` binary and the tests link.
//!
//! Responsibilities follow upstream's `pkg/kubelet` layout:
//! - [`kuberuntime`]: pod spec → CRI configs, and the pure plan of actions for one pod sync;
//! - [`pod_workers`]: one task per pod that drives it towards its desired state;
//! - [`admission`]: whether a new pod may run here (the [`sysctl`] allowlist), and a rejected pod's status;
//! - [`cm`]: QoS and pod cgroups (`cgroupsPerQOS`);
//! - [`devices`]: device plugin allocations at admission and in container configs;
//! - [`pleg`]: the pod lifecycle event generator that relists the runtime;
//! - [`status`]: runtime state → `v1.PodStatus` (phase, conditions, container statuses);
//! - [`volumemanager`]: pod volumes (emptyDir, hostPath, secret, configMap, downwardAPI, projected);
//! - [`server`]: `/healthz`, the read-only port and the authenticated port; [`health`]: what
//!   `/healthz` and the node status read of the kubelet's health.
//! - [`memory`]: handing freed heap back to the kernel after bursts.
//!
//! Everything that needs the API server comes in through the traits of `kubelet-types`
//! (volume objects, environment sources, events, reviews, ...), which cluster mode
//! (`kubelet-cluster`) implements; `kubelet-app` wires the two. This crate never depends on
//! the cluster-mode crate.

pub mod active_deadline;
pub mod admission;
pub mod allocation;
pub mod apparmor;
pub mod backoff;
pub mod cm;
pub mod container;
pub mod devices;
pub mod eviction;
pub mod health;
pub mod image_gc;
pub mod kuberuntime;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod node_info;
pub mod pleg;
pub mod pod_startup_latency;
pub mod pod_workers;
pub mod probe;
pub mod prober;
pub mod server;
pub mod shared_root;
pub mod stats;
pub mod status;
pub mod status_manager;
pub mod supervisor;
pub mod sync_loop;
pub mod sysctl;
pub mod volumemanager;
