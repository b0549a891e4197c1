//! [`FakeVolumeApi`]: in-memory Secrets, ConfigMaps and a token issuer implementing
//! [`kubelet_types::volume_api::VolumeApi`], for the kubelet's volume manager tests.
//!
//! Tokens are `token-<n>` with the requested lifetime from the time the test sets; every
//! TokenRequest is recorded so tests can assert binding and refresh.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::api::certificates::v1::{ClusterTrustBundle, ClusterTrustBundleSpec, PodCertificateRequest};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubelet_types::api_error::ApiError;
use kubelet_types::volume_api::VolumeApi;

#[derive(Default)]
struct State {
    secrets: BTreeMap<(String, String), Secret>,
    runtime_classes: BTreeMap<String, k8s_openapi::api::node::v1::RuntimeClass>,
    service_accounts: BTreeMap<(String, String), k8s_openapi::api::core::v1::ServiceAccount>,
    config_maps: BTreeMap<(String, String), ConfigMap>,
    trust_bundles: BTreeMap<String, ClusterTrustBundle>,
    /// PodCertificateRequests by (namespace, name); created ones are named `req-<n>`.
    pod_certificate_requests: BTreeMap<(String, String), PodCertificateRequest>,
    pod_certificate_requests_created: usize,
    nodes: BTreeMap<String, String>,
    /// ClusterTrustBundle GETs and LISTs so far.
    trust_bundle_reads: usize,
    /// (namespace, service account, request) of every TokenRequest.
    token_requests: Vec<(String, String, TokenRequest)>,
    now: Option<SystemTime>,
    fail: Option<String>,
    /// Secret and ConfigMap GETs so far.
    object_gets: usize,
}

/// Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct FakeVolumeApi {
    state: Arc<Mutex<State>>,
}

impl FakeVolumeApi {
    /// An API server with no objects, answering every call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) Secret `namespace/name` with `data` (`(key, value)`, stored as bytes).
    pub fn put_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let s = Secret {
            data: Some(data.iter().map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.as_bytes().to_vec()))).collect()),
            ..Default::default()
        };
        self.state.lock().unwrap().secrets.insert((namespace.into(), name.into()), s);
    }

    /// Adds (or replaces) ConfigMap `namespace/name` with `data` (`(key, value)`).
    pub fn put_config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let cm = ConfigMap { data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), ..Default::default() };
        self.state.lock().unwrap().config_maps.insert((namespace.into(), name.into()), cm);
    }

    /// Adds ServiceAccount `namespace/name` with `uid` and `annotations`.
    pub fn put_service_account(&self, namespace: &str, name: &str, uid: &str, annotations: &[(&str, &str)]) {
        let mut sa = k8s_openapi::api::core::v1::ServiceAccount::default();
        sa.metadata.name = Some(name.into());
        sa.metadata.namespace = Some(namespace.into());
        sa.metadata.uid = Some(uid.into());
        sa.metadata.annotations = Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        self.state.lock().unwrap().service_accounts.insert((namespace.into(), name.into()), sa);
    }

    /// Adds RuntimeClass `name` with CRI handler `handler`.
    pub fn put_runtime_class(&self, name: &str, handler: &str) {
        let mut rc = k8s_openapi::api::node::v1::RuntimeClass { handler: handler.into(), ..Default::default() };
        rc.metadata.name = Some(name.into());
        self.state.lock().unwrap().runtime_classes.insert(name.into(), rc);
    }

    /// Adds (or replaces) ClusterTrustBundle `name` of `signer` (`None`: a bundle named for no
    /// signer) with `labels` and the PEM text `bundle`.
    pub fn put_trust_bundle(&self, name: &str, signer: Option<&str>, labels: &[(&str, &str)], bundle: &str) {
        let mut ctb = ClusterTrustBundle {
            spec: ClusterTrustBundleSpec { signer_name: signer.map(Into::into), trust_bundle: bundle.into() },
            ..Default::default()
        };
        ctb.metadata.name = Some(name.into());
        ctb.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        self.state.lock().unwrap().trust_bundles.insert(name.into(), ctb);
    }

    /// Adds Node `name` with `uid`.
    pub fn put_node(&self, name: &str, uid: &str) {
        self.state.lock().unwrap().nodes.insert(name.into(), uid.into());
    }

    /// Every PodCertificateRequest, in creation order.
    pub fn pod_certificate_requests(&self) -> Vec<PodCertificateRequest> {
        let mut all: Vec<_> = self.state.lock().unwrap().pod_certificate_requests.values().cloned().collect();
        all.sort_by_key(|r| r.metadata.name.as_deref().and_then(|n| n.strip_prefix("req-")?.parse::<usize>().ok()));
        all
    }

    /// Replaces the status of PodCertificateRequest `namespace/name` (a signer's answer).
    pub fn set_pod_certificate_status(
        &self,
        namespace: &str,
        name: &str,
        status: k8s_openapi::api::certificates::v1::PodCertificateRequestStatus,
    ) {
        let mut st = self.state.lock().unwrap();
        st.pod_certificate_requests.get_mut(&(namespace.into(), name.into())).expect("known request").status = Some(status);
    }

    /// Removes PodCertificateRequest `namespace/name`.
    pub fn delete_pod_certificate_request(&self, namespace: &str, name: &str) {
        self.state.lock().unwrap().pod_certificate_requests.remove(&(namespace.into(), name.into()));
    }

    /// How many ClusterTrustBundle GETs and LISTs were answered so far.
    pub fn trust_bundle_reads(&self) -> usize {
        self.state.lock().unwrap().trust_bundle_reads
    }

    /// Marks Secret and ConfigMap `namespace/name` (those that exist) `immutable: true`.
    pub fn set_immutable(&self, namespace: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        let key = (namespace.to_string(), name.to_string());
        if let Some(s) = st.secrets.get_mut(&key) {
            s.immutable = Some(true);
        }
        if let Some(c) = st.config_maps.get_mut(&key) {
            c.immutable = Some(true);
        }
    }

    /// How many Secret and ConfigMap GETs were answered so far.
    pub fn object_gets(&self) -> usize {
        self.state.lock().unwrap().object_gets
    }

    /// Removes Secret `namespace/name`.
    pub fn delete_secret(&self, namespace: &str, name: &str) {
        self.state.lock().unwrap().secrets.remove(&(namespace.into(), name.into()));
    }

    /// The issue time of the next tokens (default: the system clock).
    pub fn set_now(&self, now: SystemTime) {
        self.state.lock().unwrap().now = Some(now);
    }

    /// Makes every call fail with a 500 carrying `message` (`None` heals it).
    pub fn fail_with(&self, message: Option<&str>) {
        self.state.lock().unwrap().fail = message.map(Into::into);
    }

    /// Every TokenRequest so far: (namespace, service account, request).
    pub fn token_requests(&self) -> Vec<(String, String, TokenRequest)> {
        self.state.lock().unwrap().token_requests.clone()
    }

    fn check(&self, what: String) -> Result<(), ApiError> {
        match &self.state.lock().unwrap().fail {
            Some(m) => Err(ApiError::Status { what, code: 500, reason: "InternalError".into(), message: m.clone() }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl VolumeApi for FakeVolumeApi {
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError> {
        self.check(format!("secrets/{namespace}/{name}"))?;
        let mut st = self.state.lock().unwrap();
        st.object_gets += 1;
        Ok(st.secrets.get(&(namespace.into(), name.into())).cloned())
    }

    async fn get_config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        self.check(format!("configmaps/{namespace}/{name}"))?;
        let mut st = self.state.lock().unwrap();
        st.object_gets += 1;
        Ok(st.config_maps.get(&(namespace.into(), name.into())).cloned())
    }

    async fn get_runtime_class(&self, name: &str) -> Result<Option<k8s_openapi::api::node::v1::RuntimeClass>, ApiError> {
        self.check(format!("runtimeclasses/{name}"))?;
        Ok(self.state.lock().unwrap().runtime_classes.get(name).cloned())
    }

    async fn get_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<k8s_openapi::api::core::v1::ServiceAccount>, ApiError> {
        self.check(format!("serviceaccounts/{namespace}/{name}"))?;
        Ok(self.state.lock().unwrap().service_accounts.get(&(namespace.into(), name.into())).cloned())
    }

    async fn get_cluster_trust_bundle(&self, name: &str) -> Result<Option<ClusterTrustBundle>, ApiError> {
        self.check(format!("clustertrustbundles/{name}"))?;
        let mut st = self.state.lock().unwrap();
        st.trust_bundle_reads += 1;
        Ok(st.trust_bundles.get(name).cloned())
    }

    /// Understands the selectors the kubelet sends: empty, or `k=v` terms joined by commas.
    async fn list_cluster_trust_bundles(&self, signer_name: &str, label_selector: &str) -> Result<Vec<ClusterTrustBundle>, ApiError> {
        self.check("clustertrustbundles".into())?;
        let mut st = self.state.lock().unwrap();
        st.trust_bundle_reads += 1;
        let terms: Vec<(&str, &str)> = label_selector.split(',').filter(|t| !t.is_empty()).filter_map(|t| t.split_once('=')).collect();
        let matches = |c: &ClusterTrustBundle| {
            let labels = c.metadata.labels.clone().unwrap_or_default();
            c.spec.signer_name.as_deref() == Some(signer_name) && terms.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        };
        Ok(st.trust_bundles.values().filter(|c| matches(c)).cloned().collect())
    }

    async fn create_pod_certificate_request(&self, request: &PodCertificateRequest) -> Result<PodCertificateRequest, ApiError> {
        let ns = request.metadata.namespace.clone().unwrap_or_default();
        self.check(format!("podcertificaterequests/{ns}"))?;
        let mut st = self.state.lock().unwrap();
        let mut stored = request.clone();
        st.pod_certificate_requests_created += 1;
        let name = format!("req-{}", st.pod_certificate_requests_created);
        stored.metadata.name = Some(name.clone());
        stored.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::try_from(st.now.unwrap_or_else(SystemTime::now)).expect("time in range"),
        ));
        st.pod_certificate_requests.insert((ns, name), stored.clone());
        Ok(stored)
    }

    async fn get_pod_certificate_request(&self, namespace: &str, name: &str) -> Result<Option<PodCertificateRequest>, ApiError> {
        self.check(format!("podcertificaterequests/{namespace}/{name}"))?;
        Ok(self.state.lock().unwrap().pod_certificate_requests.get(&(namespace.into(), name.into())).cloned())
    }

    async fn get_node(&self, name: &str) -> Result<Option<k8s_openapi::api::core::v1::Node>, ApiError> {
        self.check(format!("nodes/{name}"))?;
        Ok(self.state.lock().unwrap().nodes.get(name).map(|uid| {
            let mut node = k8s_openapi::api::core::v1::Node::default();
            node.metadata.name = Some(name.into());
            node.metadata.uid = Some(uid.clone());
            node
        }))
    }

    async fn create_token(&self, namespace: &str, service_account: &str, request: &TokenRequest) -> Result<TokenRequest, ApiError> {
        self.check(format!("serviceaccounts/{namespace}/{service_account}/token"))?;
        let mut st = self.state.lock().unwrap();
        st.token_requests.push((namespace.into(), service_account.into(), request.clone()));
        let now = st.now.unwrap_or_else(SystemTime::now);
        let lifetime = Duration::from_secs(request.spec.as_ref().and_then(|s| s.expiration_seconds).unwrap_or(3600).max(0) as u64);
        let expires = k8s_openapi::jiff::Timestamp::try_from(now + lifetime).expect("token expiry in range");
        let mut answer = request.clone();
        answer.status = Some(TokenRequestStatus {
            token: Some(format!("token-{}", st.token_requests.len())),
            expiration_timestamp: Some(Time(expires)),
        });
        Ok(answer)
    }
}
