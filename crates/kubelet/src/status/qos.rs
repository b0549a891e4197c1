//! Pod QoS class (upstream `pkg/apis/core/v1/helper/qos.ComputePodQOS`).
//!
//! Owns the Guaranteed / Burstable / BestEffort computation and the small quantity arithmetic it
//! needs. It does not touch cgroups; the container manager consumes the class elsewhere.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// QoS class (`status.qosClass`) of a pod whose every container has cpu and memory limits
/// equal to its requests.
pub const QOS_GUARANTEED: &str = "Guaranteed";
/// QoS class of a pod with some cpu or memory request or limit that is not Guaranteed.
pub const QOS_BURSTABLE: &str = "Burstable";
/// QoS class of a pod with no cpu or memory request or limit on any container.
pub const QOS_BEST_EFFORT: &str = "BestEffort";

/// Only these resources take part in the QoS computation.
const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// Computes the pod's QoS class from its containers' and init containers' requests and limits.
///
/// A pod is BestEffort when no container sets a positive cpu/memory request or limit; Guaranteed
/// when every container has positive cpu and memory limits and the summed requests equal the summed
/// limits; Burstable otherwise. Unparseable quantities count as zero.
pub fn pod_qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return QOS_BEST_EFFORT;
    };
    // Pod-level resources (`spec.resources`, beta and on by default) decide alone, as
    // upstream's `ComputePodQOS`.
    if let Some(r) = spec.resources.as_ref().filter(|r| pod_level_set(r)) {
        return requirements_qos(r);
    }
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec.containers.iter().chain(spec.init_containers.iter().flatten());
    for container in all {
        add_positive(&mut requests, container_resources(container, false));
        let found = add_positive(&mut limits, container_resources(container, true));
        if !QOS_RESOURCES.iter().all(|r| found.contains(r)) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return QOS_BEST_EFFORT;
    }
    if guaranteed {
        guaranteed = requests.iter().all(|(name, req)| limits.get(name) == Some(req));
    }
    if guaranteed && requests.len() == limits.len() { QOS_GUARANTEED } else { QOS_BURSTABLE }
}

/// Whether pod-level requirements name CPU or memory (upstream `IsPodLevelResourcesSet`).
fn pod_level_set(r: &ResourceRequirements) -> bool {
    let names = |l: Option<&BTreeMap<String, Quantity>>| l.into_iter().flatten().any(|(k, _)| QOS_RESOURCES.contains(&k.as_str()));
    names(r.requests.as_ref()) || names(r.limits.as_ref())
}

fn amount(list: Option<&BTreeMap<String, Quantity>>, name: &str) -> i128 {
    list.and_then(|l| l.get(name)).and_then(|q| kubelet_config::quantity::parse(q.0.trim()).ok()).map_or(0, |q| q.nanos())
}

/// Upstream `requirementsQOS` over one set of requirements: BestEffort when nothing is set,
/// Guaranteed when CPU and memory both have equal non-zero request and limit, else Burstable.
fn requirements_qos(r: &ResourceRequirements) -> &'static str {
    let mut class = None;
    for res in QOS_RESOURCES {
        let (req, lim) = (amount(r.requests.as_ref(), res), amount(r.limits.as_ref(), res));
        let this = if req != lim {
            QOS_BURSTABLE
        } else if req == 0 {
            QOS_BEST_EFFORT
        } else {
            QOS_GUARANTEED
        };
        match class {
            None => class = Some(this),
            Some(c) if c != this => return QOS_BURSTABLE,
            _ => {}
        }
        if this == QOS_BURSTABLE {
            return QOS_BURSTABLE;
        }
    }
    class.unwrap_or(QOS_BEST_EFFORT)
}

fn container_resources(container: &Container, limits: bool) -> Option<&BTreeMap<String, Quantity>> {
    let resources = container.resources.as_ref()?;
    if limits { resources.limits.as_ref() } else { resources.requests.as_ref() }
}

/// Adds the positive cpu/memory quantities of `list` into `totals`; returns the names it added.
fn add_positive(totals: &mut BTreeMap<&'static str, i128>, list: Option<&BTreeMap<String, Quantity>>) -> Vec<&'static str> {
    let mut found = Vec::new();
    for (name, quantity) in list.into_iter().flatten() {
        let Some(resource) = QOS_RESOURCES.iter().find(|r| **r == name.as_str()) else {
            continue;
        };
        let value = kubelet_config::quantity::parse(quantity.0.trim()).map(|q| q.nanos()).unwrap_or(0);
        if value > 0 {
            let total = totals.entry(resource).or_insert(0);
            *total = total.saturating_add(value);
            found.push(*resource);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn q(list: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        if list.is_empty() {
            return None;
        }
        Some(list.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
    }

    fn container(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements { requests: q(requests), limits: q(limits), ..Default::default() }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec { containers, init_containers: if init.is_empty() { None } else { Some(init) }, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn best_effort_without_resources() {
        assert_eq!(pod_qos_class(&pod(vec![Container::default()], vec![])), QOS_BEST_EFFORT);
        assert_eq!(pod_qos_class(&Pod::default()), QOS_BEST_EFFORT);
        // Zero and non-compute resources don't count.
        let c = container("a", &[("cpu", "0"), ("ephemeral-storage", "1Gi")], &[("nvidia.com/gpu", "1")]);
        assert_eq!(pod_qos_class(&pod(vec![c], vec![])), QOS_BEST_EFFORT);
    }

    #[test]
    fn guaranteed_when_requests_equal_limits_everywhere() {
        let full = [("cpu", "500m"), ("memory", "1Gi")];
        let c = container("a", &full, &[("cpu", "0.5"), ("memory", "1073741824")]);
        let i = container("init", &full, &full);
        assert_eq!(pod_qos_class(&pod(vec![c.clone()], vec![i])), QOS_GUARANTEED);
        // Limits without requests (API defaulting would copy them; here they are really absent):
        // the request and limit sets differ in size, so not Guaranteed.
        let limits_only = container("b", &[], &full);
        assert_eq!(pod_qos_class(&pod(vec![limits_only], vec![])), QOS_BURSTABLE);
    }

    #[test]
    fn pod_level_resources_decide_alone() {
        let mut p = pod(vec![container("a", &[("cpu", "10m")], &[]), Container::default()], vec![]);
        let r = |req: &[(&str, &str)], lim: &[(&str, &str)]| {
            Some(ResourceRequirements { requests: q(req), limits: q(lim), ..Default::default() })
        };
        p.spec.as_mut().unwrap().resources = r(&[("cpu", "100m"), ("memory", "100Mi")], &[("cpu", "0.1"), ("memory", "100Mi")]);
        assert_eq!(pod_qos_class(&p), QOS_GUARANTEED);
        p.spec.as_mut().unwrap().resources = r(&[("cpu", "100m"), ("memory", "100Mi")], &[]);
        assert_eq!(pod_qos_class(&p), QOS_BURSTABLE);
        // Only non-compute resources at pod level: the containers decide.
        p.spec.as_mut().unwrap().resources = r(&[("hugepages-2Mi", "2Mi")], &[]);
        assert_eq!(pod_qos_class(&p), QOS_BURSTABLE);
        let mut be = pod(vec![Container::default()], vec![]);
        be.spec.as_mut().unwrap().resources = r(&[], &[]);
        assert_eq!(pod_qos_class(&be), QOS_BEST_EFFORT);
    }

    #[test]
    fn burstable_cases() {
        let full = [("cpu", "1"), ("memory", "1Gi")];
        // Request lower than limit.
        let c = container("a", &[("cpu", "500m"), ("memory", "1Gi")], &full);
        assert_eq!(pod_qos_class(&pod(vec![c], vec![])), QOS_BURSTABLE);
        // One container has only a cpu limit.
        let a = container("a", &full, &full);
        let b = container("b", &[("cpu", "1")], &[("cpu", "1")]);
        assert_eq!(pod_qos_class(&pod(vec![a.clone(), b], vec![])), QOS_BURSTABLE);
        // A best-effort container next to a guaranteed one.
        assert_eq!(pod_qos_class(&pod(vec![a, Container::default()], vec![])), QOS_BURSTABLE);
        // Request only.
        let r = container("r", &[("memory", "10Mi")], &[]);
        assert_eq!(pod_qos_class(&pod(vec![r], vec![])), QOS_BURSTABLE);
    }
}
