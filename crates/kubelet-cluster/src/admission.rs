//! Node-side pod admission (upstream `lifecycle/predicate.go`): before running a pod bound to
//! this node, check it against the node — nodeName, nodeSelector and required node affinity
//! (`matchExpressions` on labels), host ports admitted pods already hold, NoExecute taints it does
//! not tolerate, the pod count (maxPods) and cpu / memory / ephemeral-storage requests against
//! allocatable minus what admitted pods request. A rejected pod is marked `Failed` with
//! upstream's reason (`OutOfcpu`, `OutOfmemory`, `OutOfpods`, `NodeAffinity`, `NodeName`,
//! `NodePorts`, `TaintToleration`) and message.
//! Node pressure conditions are checked first, as the eviction manager does upstream (`Evicted`).
//!
//! Pure: (node, admitted pods, pod) → verdict. [`crate::pod_source::PodStore::admit_new`] applies
//! it once per API pod; static pods count through their mirror pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, Pod, PodStatus};
use kubelet_config::quantity;

/// Why a pod was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Upstream's short reason, the pod's `status.reason` (`OutOfcpu`, `NodeAffinity`, ...).
    pub reason: String,
    /// The human-readable why, e.g. `Predicate NodePorts failed: ...`.
    pub message: String,
}

impl Rejection {
    /// The status a rejected pod gets.
    pub fn pod_status(&self) -> PodStatus {
        PodStatus {
            phase: Some("Failed".into()),
            reason: Some(self.reason.clone()),
            message: Some(format!("Pod was rejected: {}", self.message)),
            ..PodStatus::default()
        }
    }
}

/// Upstream's `PredicateFailureError`: reason the predicate's name, message
/// `Predicate <name> failed: <the scheduler plugin's reason>`.
fn predicate(name: &str, desc: &str) -> Rejection {
    Rejection { reason: name.into(), message: format!("Predicate {name} failed: {desc}") }
}

/// (host IP, protocol, port) of every host port the pod asks for (upstream `GetHostPorts`):
/// its containers' and its sidecars' (init containers that run for the pod's whole life).
/// An unset IP is every address, an unset protocol TCP.
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    sidecars
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| p.host_port.filter(|h| *h > 0).map(|h| (p, h)))
        .map(|(p, h)| {
            let ip = p.host_ip.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
            let protocol = p.protocol.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| "TCP".into());
            (ip, protocol, h)
        })
        .collect()
}

/// Whether two host ports collide (upstream `HostPortInfo.CheckConflict`): same protocol and
/// port, and the same address or either on every address.
fn ports_conflict(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    a.1 == b.1 && a.2 == b.2 && (a.0 == b.0 || a.0 == "0.0.0.0" || b.0 == "0.0.0.0")
}

/// Requests of a pod as upstream's `PodRequests` totals them (cpu in millicores): the regular
/// containers and sidecars (restartable init containers) summed, at least each plain init
/// container's request plus the sidecars started before it; pod-level requests
/// (`spec.resources`) stand for the containers' where set; then the overhead.
pub fn pod_requests(pod: &Pod) -> BTreeMap<String, i64> {
    let mut sum: BTreeMap<String, i64> = BTreeMap::new();
    let Some(spec) = pod.spec.as_ref() else { return sum };
    let amount = |r: &str, q: &str| quantity::parse(q).map(|q| kubelet_types::resources::amount(r, &q)).unwrap_or(0);
    let requests = |c: &k8s_openapi::api::core::v1::Container| c.resources.as_ref().and_then(|r| r.requests.clone()).unwrap_or_default();
    for c in &spec.containers {
        for (r, q) in requests(c) {
            *sum.entry(r.clone()).or_default() += amount(&r, &q.0);
        }
    }
    let mut sidecars: BTreeMap<String, i64> = BTreeMap::new();
    let mut init_peak: BTreeMap<String, i64> = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        for (r, q) in requests(c) {
            let v = amount(&r, &q.0);
            let before = sidecars.get(&r).copied().unwrap_or(0);
            let peak = init_peak.entry(r.clone()).or_default();
            *peak = (*peak).max(before + v);
            if sidecar {
                sidecars.insert(r.clone(), before + v);
            }
        }
    }
    for (r, v) in sidecars {
        *sum.entry(r).or_default() += v;
    }
    for (r, v) in init_peak {
        let e = sum.entry(r).or_default();
        *e = (*e).max(v);
    }
    for (r, q) in spec.resources.as_ref().and_then(|r| r.requests.as_ref()).into_iter().flatten() {
        if r == "cpu" || r == "memory" {
            sum.insert(r.clone(), amount(r, &q.0));
        }
    }
    for (r, q) in spec.overhead.iter().flatten() {
        *sum.entry(r.clone()).or_default() += amount(r, &q.0);
    }
    sum
}

fn requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.clone().unwrap_or_default();
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value.and_then(|v| v.parse::<i64>().ok()), values.first().and_then(|b| b.parse::<i64>().ok()))
            else {
                return false;
            };
            if req.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

fn node_affinity_matches(pod: &Pod, labels: &BTreeMap<String, String>) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        None => true,
        Some(r) => r.node_selector_terms.iter().any(|t| t.match_expressions.iter().flatten().all(|e| requirement_matches(e, labels))),
    }
}

fn tolerates_no_execute_taints(pod: &Pod, node: &Node) -> bool {
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
    node.spec.iter().flat_map(|s| s.taints.iter().flatten()).filter(|t| t.effect == "NoExecute").all(|t| {
        tolerations.iter().any(|tol| {
            let effect_ok = tol.effect.as_deref().is_none_or(|e| e.is_empty() || e == t.effect);
            let key_ok = tol.key.as_deref().is_none_or(|k| k.is_empty() || k == t.key);
            let value_ok = match tol.operator.as_deref() {
                Some("Exists") => true,
                _ => tol.value.as_deref().unwrap_or_default() == t.value.as_deref().unwrap_or_default(),
            };
            effect_ok && key_ok && value_ok
        })
    })
}

fn is_best_effort(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    spec.containers.iter().chain(spec.init_containers.iter().flatten()).all(|c| {
        let r = c.resources.as_ref();
        let empty = |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.is_none_or(|m| m.iter().all(|(k, q)| (k != "cpu" && k != "memory") || quantity::parse(&q.0).is_ok_and(|q| q.is_zero())))
        };
        empty(r.and_then(|r| r.requests.as_ref())) && empty(r.and_then(|r| r.limits.as_ref()))
    })
}

fn tolerates_memory_pressure(pod: &Pod) -> bool {
    pod.spec.iter().flat_map(|s| s.tolerations.iter().flatten()).any(|t| {
        let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty() || k == "node.kubernetes.io/memory-pressure");
        let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "NoSchedule");
        let value_ok = t.operator.as_deref() == Some("Exists") || t.value.as_deref().unwrap_or_default().is_empty();
        key_ok && effect_ok && value_ok
    })
}

/// The eviction manager's admission (upstream `eviction.managerImpl.Admit`): under
/// MemoryPressure only non-BestEffort pods (or ones tolerating the memory-pressure taint) are
/// admitted; under DiskPressure or PIDPressure none are. Critical pods always are. The pressure
/// is read from the node's conditions as last posted.
pub fn admit_under_pressure(node: &Node, pod: &Pod) -> Result<(), Rejection> {
    let conditions: Vec<&str> = node
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter(|c| c.status == "True" && matches!(c.type_.as_str(), "MemoryPressure" | "DiskPressure" | "PIDPressure"))
        .map(|c| c.type_.as_str())
        .collect();
    if conditions.is_empty()
        || pod.spec.as_ref().and_then(|s| s.priority).is_some_and(|p| p >= kubelet_types::pod::SYSTEM_CRITICAL_PRIORITY)
    {
        return Ok(());
    }
    if conditions.contains(&"MemoryPressure") && (!is_best_effort(pod) || tolerates_memory_pressure(pod)) {
        return Ok(());
    }
    Err(Rejection { reason: "Evicted".into(), message: format!("The node had condition: [{}]. ", conditions.join(" ")) })
}

/// Admits `pod` onto `node` where `admitted` already run, or says why not.
pub fn admit(node: &Node, admitted: &[&Pod], pod: &Pod) -> Result<(), Rejection> {
    admit_under_pressure(node, pod)?;
    // Upstream's order (the scheduler's `AdmissionCheck`, then taints); the first failure is
    // the reason.
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
    let capacity = |r: &str| allocatable.get(r).and_then(|q| quantity::parse(&q.0).ok()).map(|q| kubelet_types::resources::amount(r, &q));
    if let Some(max) = capacity("pods") {
        let used = admitted.len() as i64;
        if used + 1 > max {
            return Err(Rejection {
                reason: "OutOfpods".into(),
                message: format!("Node didn't have enough resource: pods, requested: 1, used: {used}, capacity: {max}"),
            });
        }
    }
    let wanted = pod_requests(pod);
    for r in ["cpu", "memory", "ephemeral-storage"] {
        let (Some(req), Some(cap)) = (wanted.get(r).copied().filter(|v| *v > 0), capacity(r)) else { continue };
        let used: i64 = admitted.iter().map(|p| pod_requests(p).get(r).copied().unwrap_or(0)).sum();
        if used + req > cap {
            return Err(Rejection {
                reason: format!("OutOf{r}"),
                message: format!("Node didn't have enough resource: {r}, requested: {req}, used: {used}, capacity: {cap}"),
            });
        }
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if !node_affinity_matches(pod, &labels) {
        return Err(predicate("NodeAffinity", "node(s) didn't match Pod's node affinity/selector"));
    }
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty() && n != node_name) {
        return Err(predicate("NodeName", "node(s) didn't match the requested node name"));
    }
    let in_use: Vec<_> = admitted.iter().flat_map(|p| host_ports(p)).collect();
    if host_ports(pod).iter().any(|want| in_use.iter().any(|used| ports_conflict(want, used))) {
        return Err(predicate("NodePorts", "node(s) didn't have free ports for the requested pod ports"));
    }
    if !tolerates_no_execute_taints(pod, node) {
        return Err(predicate("TaintToleration", "node(s) had taints that the pod didn't tolerate"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
