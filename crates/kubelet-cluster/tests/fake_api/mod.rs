//! An in-memory API server for the controllers' integration tests: nodes and leases with
//! resource versions, UIDs and conflicts, plus switches to fail requests (an API outage).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kubelet_cluster::ApiError;
use kubelet_cluster::api::{LeaseApi, NodeApi};

#[derive(Default)]
pub struct FakeApi {
    pub nodes: Mutex<BTreeMap<String, Node>>,
    pub leases: Mutex<BTreeMap<String, Lease>>,
    pub status_patches: AtomicU64,
    pub lease_updates: AtomicU64,
    pub down: AtomicBool,
    next: AtomicU64,
}

impl FakeApi {
    fn rv(&self) -> String {
        (self.next.fetch_add(1, Ordering::SeqCst) + 1).to_string()
    }

    fn check_up(&self, what: &str) -> Result<(), ApiError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ApiError::Transport { what: what.into(), message: "connection refused".into() });
        }
        Ok(())
    }

    pub fn node(&self, name: &str) -> Option<Node> {
        self.nodes.lock().unwrap().get(name).cloned()
    }

    pub fn lease(&self, name: &str) -> Option<Lease> {
        self.leases.lock().unwrap().get(name).cloned()
    }
}

fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[async_trait]
impl NodeApi for FakeApi {
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiError> {
        self.check_up("nodes")?;
        Ok(self.node(name))
    }

    async fn create_node(&self, node: &Node) -> Result<Node, ApiError> {
        self.check_up("nodes")?;
        let name = node.metadata.name.clone().unwrap();
        let mut nodes = self.nodes.lock().unwrap();
        if nodes.contains_key(&name) {
            return Err(ApiError::AlreadyExists { what: format!("nodes/{name}") });
        }
        let mut n = node.clone();
        n.metadata.uid = Some(format!("uid-{}", self.rv()));
        n.metadata.resource_version = Some(self.rv());
        nodes.insert(name, n.clone());
        Ok(n)
    }

    async fn patch_node(&self, name: &str, patch: &serde_json::Value) -> Result<Node, ApiError> {
        self.patch_node_status(name, patch).await
    }

    async fn patch_node_status(&self, name: &str, patch: &serde_json::Value) -> Result<Node, ApiError> {
        self.check_up("nodes")?;
        let mut nodes = self.nodes.lock().unwrap();
        let Some(n) = nodes.get_mut(name) else { return Err(ApiError::NotFound { what: format!("nodes/{name}") }) };
        let mut v = serde_json::to_value(&*n).unwrap();
        merge(&mut v, patch);
        *n = serde_json::from_value(v).unwrap();
        n.metadata.resource_version = Some(self.rv());
        self.status_patches.fetch_add(1, Ordering::SeqCst);
        Ok(n.clone())
    }
}

#[async_trait]
impl LeaseApi for FakeApi {
    async fn get_lease(&self, _namespace: &str, name: &str) -> Result<Option<Lease>, ApiError> {
        self.check_up("leases")?;
        Ok(self.lease(name))
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease, ApiError> {
        self.check_up("leases")?;
        let name = lease.metadata.name.clone().unwrap();
        let mut leases = self.leases.lock().unwrap();
        if leases.contains_key(&name) {
            return Err(ApiError::AlreadyExists { what: format!("leases/{name}") });
        }
        let mut l = lease.clone();
        l.metadata.resource_version = Some(self.rv());
        leases.insert(name, l.clone());
        Ok(l)
    }

    async fn update_lease(&self, lease: &Lease) -> Result<Lease, ApiError> {
        self.check_up("leases")?;
        let name = lease.metadata.name.clone().unwrap();
        let mut leases = self.leases.lock().unwrap();
        let Some(current) = leases.get_mut(&name) else { return Err(ApiError::NotFound { what: format!("leases/{name}") }) };
        if current.metadata.resource_version != lease.metadata.resource_version {
            return Err(ApiError::Conflict { what: format!("leases/{name}"), message: "the object has been modified".into() });
        }
        *current = lease.clone();
        current.metadata.resource_version = Some(self.rv());
        self.lease_updates.fetch_add(1, Ordering::SeqCst);
        Ok(current.clone())
    }
}
