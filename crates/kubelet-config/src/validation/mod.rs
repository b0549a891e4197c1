//! Upstream's `ValidateKubeletConfiguration`, for the rules that matter to
//! this kubelet, plus the quantity/threshold checks upstream does when it
//! parses those strings. Each error names the field (and its flag).
//! Pure: takes a defaulted configuration, returns the first problem found.
//!
//! This module owns the order the rules run in (so which problem is reported
//! first); the rules for each topic live in a submodule.

use crate::error::{ConfigError, Origin};
use crate::features::FeatureGates;
use crate::types::KubeletConfiguration;

mod durations;
mod node;
mod numbers;
mod options;
mod resources;

/// A failed rule: (field path, message).
type Problem = (String, String);

/// Validates a defaulted configuration; `origin` is named in the error.
pub fn validate(c: &KubeletConfiguration, origin: &Origin) -> Result<(), ConfigError> {
    check(c).map_err(|(field, message)| ConfigError::invalid(origin, field, message))
}

fn req(ok: bool, field: &str, message: impl FnOnce() -> String) -> Result<(), Problem> {
    if ok { Ok(()) } else { Err((field.to_string(), message())) }
}

fn one_of(value: &str, field: &str, allowed: &[&str]) -> Result<(), Problem> {
    let name = field.split(' ').next().unwrap_or(field);
    req(allowed.contains(&value), name, || format!("{value:?} specified for {field}; valid options are {allowed:?}"))
}

/// Every rule, in upstream's order: the first problem found is the one reported.
fn check(c: &KubeletConfiguration) -> Result<(), Problem> {
    let gates = FeatureGates::new(&c.feature_gates);
    numbers::numbers(c)?;
    durations::durations(c, &gates)?;
    req(c.system_cgroups.is_empty() || !c.cgroup_root.is_empty(), "systemCgroups", || {
        "systemCgroups (--system-cgroups) was specified and cgroupRoot (--cgroup-root) was not specified".into()
    })?;
    if let Some(n) = c.max_parallel_image_pulls {
        req(n >= 1, "maxParallelImagePulls", || format!("{n} must be a positive number"))?;
        req(!(c.serialize_image_pulls && n > 1), "maxParallelImagePulls", || {
            "cannot be larger than 1 unless serializeImagePulls (--serialize-image-pulls) is set to false".into()
        })?;
    }
    req(!c.server_tls_bootstrap || gates.enabled("RotateKubeletServerCertificate"), "serverTLSBootstrap", || {
        "requires feature gate RotateKubeletServerCertificate".into()
    })?;
    req(!c.run_once, "runOnce", || "runOnce (--runonce) mode has been deprecated and should not be set".into())?;
    node::register_with_taints(c)?;
    options::enumerated(c, &gates)?;
    resources::node_allocatable(c)?;
    options::image_pull_policy(c, &gates)?;
    resources::reserved_system_cpus(c)?;
    req(c.memory_throttling_factor > 0.0 && c.memory_throttling_factor <= 1.0, "memoryThrottlingFactor", || {
        format!("{} must be greater than 0 and less than or equal to 1.0", c.memory_throttling_factor)
    })?;
    req(!c.container_runtime_endpoint.is_empty(), "containerRuntimeEndpoint", || "was not specified or empty".into())?;
    req(!c.enable_system_log_query || gates.enabled("NodeLogQuery"), "enableSystemLogQuery", || {
        "NodeLogQuery feature gate is required for enableSystemLogQuery".into()
    })?;
    req(!c.enable_system_log_query || c.enable_system_log_handler, "enableSystemLogQuery", || {
        "enableSystemLogHandler is required for enableSystemLogQuery".into()
    })?;
    node::pod_logs_dir(&c.pod_logs_dir)?;
    node::addresses(c)?;
    resources::quantities(c)
}
