//! List filters, honoured as containerd honours them: an ID filter accepts a unique prefix, every
//! set field must match, and a label selector matches when each of its pairs is among the labels.

use std::collections::HashMap;

use kubelet_cri::api;

use super::State;

/// True when every `key=value` of `selector` is in `labels`.
fn labels_match(selector: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector.iter().all(|(key, value)| labels.get(key) == Some(value))
}

/// Replaces ID prefixes in `filter` by the full IDs they name (unknown ones are kept, so they
/// match nothing).
pub(super) fn normalize_sandbox_filter(state: &State, filter: &mut api::PodSandboxFilter) {
    if let Some(id) = state.sandbox_id(&filter.id) {
        filter.id = id;
    }
}

pub(super) fn normalize_container_filter(state: &State, filter: &mut api::ContainerFilter) {
    if let Some(id) = state.container_id(&filter.id) {
        filter.id = id;
    }
    if let Some(id) = state.sandbox_id(&filter.pod_sandbox_id) {
        filter.pod_sandbox_id = id;
    }
}

pub(super) fn sandbox_matches(filter: &api::PodSandboxFilter, sandbox: &api::PodSandbox) -> bool {
    (filter.id.is_empty() || filter.id == sandbox.id)
        && filter.state.as_ref().is_none_or(|want| want.state == sandbox.state)
        && labels_match(&filter.label_selector, &sandbox.labels)
}

pub(super) fn container_matches(filter: &api::ContainerFilter, container: &api::Container) -> bool {
    (filter.id.is_empty() || filter.id == container.id)
        && (filter.pod_sandbox_id.is_empty() || filter.pod_sandbox_id == container.pod_sandbox_id)
        && filter.state.as_ref().is_none_or(|want| want.state == container.state)
        && labels_match(&filter.label_selector, &container.labels)
}
