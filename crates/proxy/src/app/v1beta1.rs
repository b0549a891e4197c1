//! `discovery.k8s.io/v1beta1` EndpointSlices, for API servers older than
//! 1.21 that do not serve `v1` (k8s-openapi no longer has the type). Only
//! the fields kube-proxy reads, and their conversion to `v1` (upstream's
//! conversion: `topology["kubernetes.io/hostname"]` → `nodeName`,
//! `topology["topology.kubernetes.io/zone"]` → `zone`).

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A `discovery.k8s.io/v1beta1` EndpointSlice (the fields kube-proxy reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// The slice's object metadata; its `kubernetes.io/service-name` label names the Service.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`: the kind of address in every endpoint of the slice.
    #[serde(default)]
    pub address_type: String,
    /// The API server sends `null` for an empty list.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub endpoints: Vec<Endpoint>,
    /// The ports every endpoint of the slice serves, named as in the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<v1::EndpointPort>>,
}

/// One endpoint of a `v1beta1` EndpointSlice (the fields kube-proxy reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The endpoint's addresses, of the slice's `addressType`; kube-proxy uses the first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub addresses: Vec<String>,
    /// Ready, serving and terminating, as in `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<v1::EndpointConditions>,
    /// The endpoint's hostname, carried over to `v1` unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The node hosting the endpoint (added in 1.20); when absent, the conversion takes
    /// `topology["kubernetes.io/hostname"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Topology labels; their hostname and zone become `v1`'s `nodeName` and `zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<BTreeMap<String, String>>,
    /// Topology-aware routing hints (zones that should consume the endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<v1::EndpointHints>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl k8s_openapi::Resource for EndpointSlice {
    const API_VERSION: &'static str = "discovery.k8s.io/v1beta1";
    const GROUP: &'static str = "discovery.k8s.io";
    const KIND: &'static str = "EndpointSlice";
    const VERSION: &'static str = "v1beta1";
    const URL_PATH_SEGMENT: &'static str = "endpointslices";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::ListableResource for EndpointSlice {
    const LIST_KIND: &'static str = "EndpointSliceList";
}

impl k8s_openapi::Metadata for EndpointSlice {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

impl From<EndpointSlice> for v1::EndpointSlice {
    fn from(s: EndpointSlice) -> Self {
        v1::EndpointSlice {
            metadata: s.metadata,
            address_type: s.address_type,
            ports: s.ports,
            endpoints: s
                .endpoints
                .into_iter()
                .map(|e| {
                    let topo = e.topology.unwrap_or_default();
                    v1::Endpoint {
                        addresses: e.addresses,
                        conditions: e.conditions,
                        hostname: e.hostname,
                        node_name: e.node_name.or_else(|| topo.get(HOSTNAME_LABEL).cloned()),
                        zone: topo.get(ZONE_LABEL).cloned(),
                        hints: e.hints,
                        ..Default::default()
                    }
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_topology_to_node_and_zone() {
        let s: EndpointSlice = serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
            "metadata": {"name": "s", "namespace": "ns", "labels": {"kubernetes.io/service-name": "svc"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["198.18.130.2"], "conditions": {"ready": true},
                           "topology": {"kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "z1"}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .unwrap();
        let v: v1::EndpointSlice = s.into();
        assert_eq!(v.endpoints.as_ref().unwrap()[0].node_name.as_deref(), Some("n1"));
        assert_eq!(v.endpoints.as_ref().unwrap()[0].zone.as_deref(), Some("z1"));
        assert_eq!(v.ports.unwrap()[0].port, Some(8080));
        let empty: EndpointSlice = serde_json::from_str(r#"{"addressType": "IPv4", "endpoints": null}"#).unwrap();
        assert!(empty.endpoints.is_empty());
    }
}
