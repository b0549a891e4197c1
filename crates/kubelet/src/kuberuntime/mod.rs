//! The runtime manager (upstream `pkg/kubelet/kuberuntime`): everything between a `v1.Pod` and
//! CRI calls.
//!
//! Pure parts: [`labels`], [`hash`], [`dns`], [`sandbox`], [`env`](mod@env), [`env_file`], [`resources`],
//! [`security_context`], [`sub_path`]'s checks, [`container_config`] and the sync planner [`actions`]. I/O parts:
//! [`runtime_state`] (reading the runtime back), [`pod_dirs`] (files under the kubelet root),
//! [`file_key_ref`] (env files in pod volumes), [`images`] and [`manager`].

pub mod actions;
pub mod container_config;
pub mod container_gc;
pub mod credential_plugins;
pub mod credentials;
pub mod dns;
pub mod env;
pub mod env_file;
pub mod ephemeral;
pub mod file_key_ref;
pub mod hash;
pub mod images;
pub mod labels;
pub mod lifecycle;
pub mod manager;
pub mod orphans;
pub mod pod_dirs;
pub mod pull_records;
pub mod resize;
pub mod resources;
pub mod restart;
pub mod runtime_state;
pub mod sa_tokens;
pub mod sandbox;
pub mod security_context;
pub mod sub_path;
pub mod userns;

pub use actions::{PodActions, compute_pod_actions, pod_is_terminal};
pub use manager::{RuntimeManager, RuntimeManagerConfig, SyncError, SyncOutcome};
