//! Which endpoints a service port uses on this node (upstream
//! `pkg/proxy/topology.go`, `CategorizeEndpoints`): ready endpoints; if none
//! are ready anywhere, serving-and-terminating ones; Local traffic policies
//! use this node's endpoints; topology hints (same node, then same zone) are
//! used only when every ready endpoint has hints and one is for this node/zone.
//!
//! Pure and order-preserving: results keep the input order (sorted by
//! `ip:port`), which the rule builders rely on.

use std::sync::Arc;

use crate::endpoints::EndpointInfo;
use crate::service::ServicePortInfo;

/// Well-known node label carrying the node's zone.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// The node kube-proxy runs on, as topology needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTopology {
    /// The Node's name (`metadata.name`); endpoints whose `nodeName` is this are local.
    pub name: String,
    /// The node's `topology.kubernetes.io/zone` label ("" if none).
    pub zone: String,
}

/// The result of [`categorize_endpoints`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Categorized {
    /// Endpoints for Cluster traffic policy.
    pub cluster: Vec<Arc<EndpointInfo>>,
    /// Endpoints for Local traffic policy.
    pub local: Vec<Arc<EndpointInfo>>,
    /// Union of both: every endpoint a rule may send traffic to.
    pub all_reachable: Vec<Arc<EndpointInfo>>,
    /// Some usable endpoint exists anywhere in the cluster.
    pub has_any: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopologyMode {
    None,
    PreferSameNode,
    PreferSameZone,
}

fn topology_mode(endpoints: &[Arc<EndpointInfo>], node: &NodeTopology) -> TopologyMode {
    let (mut for_node, mut all_node_hints) = (false, true);
    let (mut for_zone, mut all_zone_hints) = (false, true);
    for ep in endpoints.iter().filter(|e| e.ready) {
        if ep.node_hints.is_empty() {
            all_node_hints = false;
        } else if ep.node_hints.contains(&node.name) {
            for_node = true;
        }
        if ep.zone_hints.is_empty() {
            all_zone_hints = false;
        } else if ep.zone_hints.contains(&node.zone) {
            for_zone = true;
        }
    }
    if all_node_hints && for_node {
        TopologyMode::PreferSameNode
    } else if all_zone_hints && for_zone {
        TopologyMode::PreferSameZone
    } else {
        TopologyMode::None
    }
}

fn available(ep: &EndpointInfo, mode: TopologyMode, node: &NodeTopology) -> bool {
    match mode {
        TopologyMode::None => true,
        TopologyMode::PreferSameNode => ep.node_hints.contains(&node.name),
        TopologyMode::PreferSameZone => ep.zone_hints.contains(&node.zone),
    }
}

fn filter(eps: &[Arc<EndpointInfo>], keep: impl Fn(&EndpointInfo) -> bool) -> Vec<Arc<EndpointInfo>> {
    eps.iter().filter(|e| keep(e)).cloned().collect()
}

/// Upstream `CategorizeEndpoints` (with `PreferSameTrafficDistribution` on).
pub fn categorize_endpoints(endpoints: &[Arc<EndpointInfo>], svc: &ServicePortInfo, node: &NodeTopology) -> Categorized {
    let mut out = Categorized::default();
    if svc.uses_cluster_endpoints() {
        let mode = topology_mode(endpoints, node);
        out.cluster = filter(endpoints, |e| e.ready && available(e, mode, node));
        if out.cluster.is_empty() {
            out.cluster = filter(endpoints, |e| e.serving && e.terminating && available(e, mode, node));
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !svc.uses_local_endpoints() {
        out.all_reachable = out.cluster.clone();
        return out;
    }
    let (mut local_ready, mut local_serving_terminating) = (false, false);
    for e in endpoints {
        if e.ready {
            out.has_any = true;
            local_ready |= e.is_local;
        } else if e.serving && e.terminating {
            out.has_any = true;
            local_serving_terminating |= e.is_local;
        }
    }
    if local_ready {
        out.local = filter(endpoints, |e| e.is_local && e.ready);
    } else if local_serving_terminating {
        out.local = filter(endpoints, |e| e.is_local && e.serving && e.terminating);
    }
    if !svc.uses_cluster_endpoints() {
        out.all_reachable = out.local.clone();
        return out;
    }
    // Merge, keeping the input (sorted) order and dropping duplicates.
    out.all_reachable = filter(endpoints, |e| out.cluster.iter().any(|c| **c == *e) || out.local.iter().any(|l| **l == *e));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{NamespacedName, Protocol, ServicePortName};

    fn ep(ip: &str, ready: bool, local: bool, zones: &[&str]) -> Arc<EndpointInfo> {
        Arc::new(EndpointInfo {
            ip: ip.parse().unwrap(),
            port: 80,
            ready,
            serving: ready,
            terminating: false,
            is_local: local,
            zone_hints: zones.iter().map(|z| z.to_string()).collect(),
            node_hints: Default::default(),
        })
    }

    fn svc(internal_local: bool, external_local: bool, node_port: u16) -> ServicePortInfo {
        ServicePortInfo {
            name: ServicePortName { service: NamespacedName::new("ns", "s"), port: "p".into(), protocol: Protocol::Tcp },
            cluster_ip: "172.30.0.1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            node_port,
            external_ips: vec![],
            load_balancer_vips: vec![],
            load_balancer_source_ranges: vec![],
            sticky_max_age_seconds: None,
            external_policy_local: external_local,
            internal_policy_local: internal_local,
            health_check_node_port: 0,
        }
    }

    fn node() -> NodeTopology {
        NodeTopology { name: "n1".into(), zone: "a".into() }
    }

    fn ips(v: &[Arc<EndpointInfo>]) -> Vec<String> {
        v.iter().map(|e| e.ip.to_string()).collect()
    }

    #[test]
    fn ready_then_serving_terminating() {
        let mut term = (*ep("10.0.0.3", false, false, &[])).clone();
        term.serving = true;
        term.terminating = true;
        let eps = vec![ep("10.0.0.1", false, false, &[]), Arc::new(term)];
        let c = categorize_endpoints(&eps, &svc(false, false, 0), &node());
        assert_eq!(ips(&c.cluster), ["10.0.0.3"]);
        assert!(c.has_any);
        let eps = vec![ep("10.0.0.1", true, false, &[]), ep("10.0.0.2", true, false, &[])];
        let c = categorize_endpoints(&eps, &svc(false, false, 0), &node());
        assert_eq!(ips(&c.cluster), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn zone_hints_only_when_all_have_them() {
        let eps = vec![ep("10.0.0.1", true, false, &["a"]), ep("10.0.0.2", true, false, &["b"])];
        let c = categorize_endpoints(&eps, &svc(false, false, 0), &node());
        assert_eq!(ips(&c.cluster), ["10.0.0.1"]);
        let eps = vec![ep("10.0.0.1", true, false, &["a"]), ep("10.0.0.2", true, false, &[])];
        let c = categorize_endpoints(&eps, &svc(false, false, 0), &node());
        assert_eq!(ips(&c.cluster), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn local_policies() {
        let eps = vec![ep("10.0.0.1", true, false, &[]), ep("10.0.0.2", true, true, &[])];
        let c = categorize_endpoints(&eps, &svc(true, false, 0), &node());
        assert!(c.cluster.is_empty());
        assert_eq!(ips(&c.local), ["10.0.0.2"]);
        assert_eq!(ips(&c.all_reachable), ["10.0.0.2"]);
        let c = categorize_endpoints(&eps, &svc(false, true, 30000), &node());
        assert_eq!(ips(&c.cluster), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&c.local), ["10.0.0.2"]);
        assert_eq!(ips(&c.all_reachable), ["10.0.0.1", "10.0.0.2"]);
        let remote_only = vec![ep("10.0.0.1", true, false, &[])];
        let c = categorize_endpoints(&remote_only, &svc(true, false, 0), &node());
        assert!(c.local.is_empty() && c.has_any);
    }
}
