//! The runtime manager (upstream `pkg/kubelet/kuberuntime`): everything between a `v1.Pod` and
//! CRI calls.
//!
//! Pure parts: [`labels`], [`hash`], [`dns`], [`sandbox`], [`env`], [`resources`],
//! [`security_context`], [`container_config`] and the sync planner [`actions`]. I/O parts:
//! [`runtime_state`] (reading the runtime back), [`pod_dirs`] (files under the kubelet root),
//! [`images`] and [`manager`].

pub mod actions;
pub mod container_config;
pub mod dns;
pub mod env;
pub mod ephemeral;
pub mod hash;
pub mod images;
pub mod labels;
pub mod lifecycle;
pub mod manager;
pub mod pod_dirs;
pub mod resources;
pub mod restart;
pub mod runtime_state;
pub mod sandbox;
pub mod security_context;

pub use actions::{PodActions, compute_pod_actions, pod_is_terminal};
pub use manager::{RuntimeManager, RuntimeManagerConfig, SyncOutcome};
