//! The kubelet's boundary with the parts that talk to the API server (upstream keeps these
//! interfaces beside the kubelet: `pkg/kubelet/types`, the status manager's provider, the
//! volume plugins' getters).
//!
//! They go both ways: the kubelet's core (`kubelet`) calls [`volume_api`], [`env`](mod@env), [`events`]
//! and [`review`], which the cluster-mode crate (`kubelet-cluster`) implements; cluster mode reads
//! the kubelet through [`status`], [`node`], [`startup`], [`client_metrics`] and
//! [`certificate_metrics`], which the core
//! implements. The binary's wiring (`kubelet-app`) joins the two; fakes live in `test-support`. Nothing here does I/O but [`machine`], which reads the
//! host's facts from paths it is given.
//!
//! - [`api_error`]: a failed API request, reduced to what callers decide on;
//! - [`volume_api`]: the objects pod volumes read; [`env`](mod@env): the objects container environments
//!   read; [`review`]: token and access reviews for the kubelet server;
//! - [`events`]: pod and node events; [`status`]: pod statuses for the API; [`startup`]: what the
//!   startup latency SLI hears; [`client_metrics`]: what the API client reports of requests;
//!   [`certificate_metrics`]: what certificate rotation reports;
//! - [`node`]: pressure, the kubelet's health and device resources for the node status;
//! - [`clock`]: the wall clock, injected so tests can control it;
//! - [`pod`]: static, mirror and critical pods; [`machine`], [`resources`]: capacity and
//!   allocatable; [`rate_limit`]: the token bucket of `kubeAPIQPS` and `registryPullQPS`.

pub mod api_error;
pub mod certificate_metrics;
pub mod client_metrics;
pub mod clock;
pub mod env;
pub mod events;
pub mod machine;
pub mod node;
pub mod pod;
pub mod rate_limit;
pub mod resources;
pub mod review;
pub mod startup;
pub mod status;
pub mod volume_api;
