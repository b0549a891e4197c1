//! Fakes of kube-proxy's boundaries and object builders for its tests: a
//! recording [`RulesApplier`] that can be told to reject, a recording
//! [`ConntrackCleaner`], an in-memory [`FakeSysctl`], and Services and
//! EndpointSlices from short JSON. The real appliers live in `proxy::applier`.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::applier::{ApplyError, RulesApplier};
use proxy::conntrack::{ConntrackCleaner, ConntrackError, Deletion};
use proxy::sysctl::{Sysctl, SysctlError};
use serde_json::json;

/// Records every transaction; can be told to reject the next one.
#[derive(Debug, Default)]
pub struct FakeApplier {
    /// The text of every transaction accepted, in order.
    pub applied: Vec<String>,
    /// When set, the next transaction is rejected with this message (then it is cleared).
    pub fail_next: Option<String>,
}

impl RulesApplier for FakeApplier {
    fn apply(&mut self, transaction: &str) -> Result<(), ApplyError> {
        if let Some(message) = self.fail_next.take() {
            return Err(ApplyError::Rejected { tool: "nft".into(), message });
        }
        self.applied.push(transaction.to_string());
        Ok(())
    }
}

/// Records every conntrack deletion.
#[derive(Debug, Default)]
pub struct FakeConntrack {
    /// Every deletion asked for, in order.
    pub deleted: Vec<Deletion>,
}

impl ConntrackCleaner for FakeConntrack {
    fn delete(&mut self, deletion: &Deletion) -> Result<(), ConntrackError> {
        self.deleted.push(deletion.clone());
        Ok(())
    }
}

/// Sysctls in memory: `values` by name; names in `read_only` refuse writes
/// (like `nf_conntrack_max` outside the host network namespace); absent
/// names are missing (module not loaded). Records every write.
#[derive(Debug, Default)]
pub struct FakeSysctl {
    /// Current values by name, `/proc/sys`-relative (`net/netfilter/nf_conntrack_max`).
    pub values: std::collections::BTreeMap<String, String>,
    /// Names whose writes fail with permission denied.
    pub read_only: Vec<String>,
    /// Every successful write, `(name, value)`, in order.
    pub writes: Vec<(String, String)>,
}

impl FakeSysctl {
    /// Sysctls holding `values` (`(name, value)`), all writable.
    pub fn with(values: &[(&str, &str)]) -> Self {
        FakeSysctl { values: values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }
}

impl Sysctl for FakeSysctl {
    fn get(&self, name: &str) -> Result<String, SysctlError> {
        self.values.get(name).cloned().ok_or_else(|| SysctlError::Read { path: name.into(), source: std::io::ErrorKind::NotFound.into() })
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), SysctlError> {
        if self.read_only.iter().any(|n| n == name) || !self.values.contains_key(name) {
            return Err(SysctlError::Write {
                path: name.into(),
                value: value.to_string(),
                source: std::io::ErrorKind::PermissionDenied.into(),
            });
        }
        self.values.insert(name.to_string(), value.to_string());
        self.writes.push((name.to_string(), value.to_string()));
        Ok(())
    }
}

/// A Service from a JSON `spec` (and optional `status`).
pub fn service(ns: &str, name: &str, spec: serde_json::Value, status: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
        "status": status,
    }))
    .unwrap()
}

/// A one-port ClusterIP Service `ns/name` with port `p80` (80/TCP).
pub fn cluster_ip_service(ns: &str, name: &str, ip: &str) -> Service {
    service(ns, name, json!({"clusterIP": ip, "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}]}), json!({}))
}

/// An IPv4 EndpointSlice for `ns/svc` with port `p80` → `port` and the given
/// endpoints `(ip, nodeName)`.
pub fn slice(ns: &str, svc: &str, port: i32, endpoints: &[(&str, Option<&str>)]) -> EndpointSlice {
    let eps: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|(ip, node)| match node {
            Some(n) => json!({"addresses": [ip], "nodeName": n}),
            None => json!({"addresses": [ip]}),
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": format!("{svc}-1"), "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "p80", "port": port, "protocol": "TCP"}],
    }))
    .unwrap()
}
