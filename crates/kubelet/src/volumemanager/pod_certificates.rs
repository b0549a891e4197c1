//! `podCertificate` projections (GA in 1.37, upstream `pkg/kubelet/podcertificate`): for each
//! such source of a pod the kubelet makes a private key, files a PodCertificateRequest for it
//! (`generateName: req-`, owned by the pod, naming the pod, its service account, the node and
//! the signer, with a stub PKCS#10 request signed by the key as proof of possession), waits for
//! the signer to answer in the request's status, and writes the key and the issued chain. From
//! `beginRefreshAt` (plus up to 5 minutes of jitter, as upstream) it files a new request with a
//! new key and keeps serving the current pair until the new one is issued.
//!
//! Per source the states are upstream's: nothing yet → waiting → issued (fresh) → waiting for
//! the refresh → issued, or denied / failed for good. A request that disappears while waited for
//! is given up after 10 minutes and filed again. The state advances when the volume is set up (at
//! every pod sync), not on a watch: an answer reaches the pod at its next sync.
//!
//! [`observe`] (what a request's status says) and [`new_key`] are pure; [`PodCertificates`]
//! holds the states and talks to the API server through [`VolumeApi`].
//!
//! Key types: `ED25519`, `ECDSAP256` and `ECDSAP384`. `ECDSAP521`, `RSA3072` and `RSA4096`,
//! which upstream also makes, are refused with a message naming them: the crypto library this
//! kubelet links (ring) cannot generate those keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{PodCertificateRequest, PodCertificateRequestSpec};
use k8s_openapi::api::core::v1::{Pod, PodCertificateProjection};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kubelet_types::api_error::ApiError;
use kubelet_types::volume_api::VolumeApi;

/// How long a request that cannot be found is waited for before a new one is filed.
const ASSUME_DELETED_AFTER: Duration = Duration::from_secs(10 * 60);
/// Upper bound of the random delay added to `beginRefreshAt` and to the give-up time.
const MAX_JITTER: Duration = Duration::from_secs(5 * 60);

/// Why a `podCertificate` source has no key and chain (yet, or for good); the text is the
/// volume's `MountVolume.SetUp` reason (upstream's words).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PodCertificateError {
    /// The projection's `keyType` is one upstream makes but this kubelet cannot (the key type).
    #[error("while generating keypair: key type {0:?} is not supported by this kubelet (ED25519, ECDSAP256 and ECDSAP384 are)")]
    UnsupportedKeyType(String),
    /// The projection's `keyType` is not a key type at all (the key type).
    #[error("while generating keypair: unknown key type {0:?}")]
    UnknownKeyType(String),
    /// The private key could not be generated.
    #[error("while generating {key_type} key: {source}")]
    GenerateKey {
        /// The projection's `keyType`.
        key_type: String,
        /// The crypto library's error.
        #[source]
        source: rcgen::Error,
    },
    /// The stub PKCS#10 request could not be signed with the key.
    #[error("while generating stub PKCS#10 request: {0}")]
    StubRequest(#[source] rcgen::Error),
    /// A standalone kubelet has no API server to file requests with.
    #[error("podCertificate projection is not supported in static kubelet mode")]
    StaticMode,
    /// The request was filed; the signer has not issued a certificate yet.
    #[error("credential bundle is not issued yet")]
    NotIssued,
    /// The pod has no `spec`.
    #[error("pod has no spec")]
    NoPodSpec,
    /// The pod has no `spec.nodeName`.
    #[error("pod is not bound to a node")]
    NotBound,
    /// The pod's service account could not be read.
    #[error("while fetching service account: {0}")]
    GetServiceAccount(#[source] ApiError),
    /// The pod's service account does not exist (its name).
    #[error("while fetching service account: serviceaccounts {0:?} not found")]
    ServiceAccountNotFound(String),
    /// The pod's node could not be read.
    #[error("while getting node object: {0}")]
    GetNode(#[source] ApiError),
    /// The pod's node does not exist (its name).
    #[error("while getting node object: nodes {0:?} not found")]
    NodeNotFound(String),
    /// The PodCertificateRequest could not be created.
    #[error("while creating PodCertificateRequest: {0}")]
    CreateRequest(#[source] ApiError),
    /// The PodCertificateRequest waited for could not be read.
    #[error("while getting PodCertificateRequest: {0}")]
    GetRequest(#[source] ApiError),
    /// The PodCertificateRequest waited for has been gone for longer than it is waited for; a
    /// new one is filed at the next sync.
    #[error("PodCertificateRequest {namespace}/{name} appears to have been deleted")]
    RequestDeleted {
        /// The pod's namespace.
        namespace: String,
        /// The request's name.
        name: String,
    },
    /// The signer denied the request (`Denied` condition): the source fails for good.
    #[error("PodCertificateRequest {namespace}/{name} was permanently denied: reason={reason:?} message={message:?}")]
    Denied {
        /// The pod's namespace.
        namespace: String,
        /// The request's name.
        name: String,
        /// The condition's `reason`.
        reason: String,
        /// The condition's `message`.
        message: String,
    },
    /// The signer could not issue a certificate (`Failed` condition): the source fails for good.
    #[error("PodCertificateRequest {namespace}/{name} was permanently failed: reason={reason:?} message={message:?}")]
    Failed {
        /// The pod's namespace.
        namespace: String,
        /// The request's name.
        name: String,
        /// The condition's `reason`.
        reason: String,
        /// The condition's `message`.
        message: String,
    },
}

/// A private key (PKCS#8 PEM) and the stub PKCS#10 request (DER) that proves its possession.
pub struct NewKey {
    /// The private key, PKCS#8 PEM: written into the volume once a certificate is issued for it.
    pub key_pem: Vec<u8>,
    /// A PKCS#10 request (DER) with an empty subject, signed by the key: the PodCertificateRequest's
    /// `spec.stubPKCS10Request`.
    pub stub_request: Vec<u8>,
}

/// A fresh key of `key_type` (the projection's `keyType`) with its stub request.
pub fn new_key(key_type: &str) -> Result<NewKey, PodCertificateError> {
    let alg = match key_type {
        "ED25519" => &rcgen::PKCS_ED25519,
        "ECDSAP256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ECDSAP384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        "ECDSAP521" | "RSA3072" | "RSA4096" => return Err(PodCertificateError::UnsupportedKeyType(key_type.to_string())),
        other => return Err(PodCertificateError::UnknownKeyType(other.to_string())),
    };
    let key =
        rcgen::KeyPair::generate_for(alg).map_err(|source| PodCertificateError::GenerateKey { key_type: key_type.to_string(), source })?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(PodCertificateError::StubRequest)?;
    Ok(NewKey { key_pem: key.serialize_pem().into_bytes(), stub_request: csr.der().to_vec() })
}

/// What a PodCertificateRequest's status says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// No `Issued`, `Denied` or `Failed` condition is `True` yet: the signer has not answered.
    Pending,
    /// The signer issued a certificate.
    Issued {
        /// `status.certificateChain`, re-encoded as plain PEM `CERTIFICATE` blocks.
        chain: Vec<u8>,
        /// `status.beginRefreshAt`: when to start requesting a replacement.
        begin_refresh_at: SystemTime,
        /// `status.notAfter`: when the leaf certificate expires.
        not_after: SystemTime,
    },
    /// The signer refused the request (`Denied` condition); the source fails for good.
    Denied {
        /// The condition's `reason`.
        reason: String,
        /// The condition's `message`.
        message: String,
    },
    /// The signer could not issue a certificate (`Failed` condition); the source fails for good.
    Failed {
        /// The condition's `reason`.
        reason: String,
        /// The condition's `message`.
        message: String,
    },
}

/// The signer's answer in `pcr`'s status (the first terminal condition), the chain re-encoded as
/// plain `CERTIFICATE` blocks (upstream's `cleanCertificateChain`).
pub fn observe(pcr: &PodCertificateRequest) -> Answer {
    let Some(status) = &pcr.status else { return Answer::Pending };
    for c in status.conditions.iter().flatten().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            "Denied" => return Answer::Denied { reason: c.reason.clone(), message: c.message.clone() },
            "Failed" => return Answer::Failed { reason: c.reason.clone(), message: c.message.clone() },
            "Issued" => {
                let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
                let blocks = pem::parse_many(status.certificate_chain.as_deref().unwrap_or_default()).unwrap_or_default();
                let chain = blocks
                    .into_iter()
                    .flat_map(|b| pem::encode_config(&pem::Pem::new("CERTIFICATE", b.into_contents()), config).into_bytes())
                    .collect();
                let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
                    t.as_ref().map(|t| SystemTime::from(t.0)).unwrap_or(SystemTime::UNIX_EPOCH)
                };
                return Answer::Issued { chain, begin_refresh_at: time(&status.begin_refresh_at), not_after: time(&status.not_after) };
            }
            _ => {}
        }
    }
    Answer::Pending
}

#[derive(Clone, Debug)]
struct Issued {
    key_pem: Vec<u8>,
    chain: Vec<u8>,
    begin_refresh_at: SystemTime,
}

#[derive(Clone, Debug)]
struct Waiting {
    key_pem: Vec<u8>,
    pcr: String,
    give_up_at: SystemTime,
}

#[derive(Clone, Debug, Default)]
enum State {
    #[default]
    Initial,
    Wait(Waiting),
    Fresh(Issued),
    WaitRefresh(Issued, Waiting),
    /// Denied or failed for good: the error it fails with.
    Denied(PodCertificateError),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    pod_uid: String,
    volume: String,
    index: usize,
}

/// A private key and its certificate chain, PEM each.
pub type KeyAndChain = (Vec<u8>, Vec<u8>);

/// The state of every `podCertificate` source of the node's pods.
#[derive(Default)]
pub struct PodCertificates {
    states: Mutex<HashMap<Key, State>>,
}

fn jitter() -> Duration {
    Duration::from_millis(fastrand::u64(0..MAX_JITTER.as_millis() as u64))
}

impl PodCertificates {
    /// The private key (PEM) and certificate chain (PEM) for source `index` of volume `volume`,
    /// advancing its state first; an error until a certificate is issued, or for good once the
    /// signer denied or failed the request.
    pub async fn bundle(
        &self,
        api: Option<&dyn VolumeApi>,
        pod: &Pod,
        volume: &str,
        index: usize,
        src: &PodCertificateProjection,
        now: SystemTime,
    ) -> Result<KeyAndChain, PodCertificateError> {
        let api = api.ok_or(PodCertificateError::StaticMode)?;
        let key = Key { pod_uid: pod.metadata.uid.clone().unwrap_or_default(), volume: volume.into(), index };
        let state = self.lock().get(&key).cloned().unwrap_or_default();
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let (next, result) = match state {
            State::Initial => {
                let waiting = self.file_request(api, pod, src, now).await?;
                (State::Wait(waiting), Err(PodCertificateError::NotIssued))
            }
            State::Wait(w) => match api.get_pod_certificate_request(ns, &w.pcr).await.map_err(PodCertificateError::GetRequest)? {
                None if now > w.give_up_at => {
                    (State::Initial, Err(PodCertificateError::RequestDeleted { namespace: ns.to_string(), name: w.pcr }))
                }
                None => (State::Wait(w), Err(PodCertificateError::NotIssued)),
                Some(pcr) => on_answer(ns, w, observe(&pcr), |w| (State::Wait(w), Err(PodCertificateError::NotIssued))),
            },
            State::Fresh(issued) if now >= issued.begin_refresh_at => {
                let out = Ok((issued.key_pem.clone(), issued.chain.clone()));
                match self.file_request(api, pod, src, now).await {
                    Ok(waiting) => (State::WaitRefresh(issued, waiting), out),
                    Err(e) => {
                        tracing::warn!(pod = %key.pod_uid, volume, "podCertificate refresh: {e}");
                        (State::Fresh(issued), out)
                    }
                }
            }
            State::Fresh(issued) => {
                let out = Ok((issued.key_pem.clone(), issued.chain.clone()));
                (State::Fresh(issued), out)
            }
            State::WaitRefresh(current, w) => {
                let out = Ok((current.key_pem.clone(), current.chain.clone()));
                match api.get_pod_certificate_request(ns, &w.pcr).await {
                    Err(e) => {
                        tracing::warn!(pod = %key.pod_uid, volume, "podCertificate refresh: {e}");
                        (State::WaitRefresh(current, w), out)
                    }
                    Ok(None) if now > w.give_up_at => (State::Fresh(current), out),
                    Ok(None) => (State::WaitRefresh(current, w), out),
                    // As upstream, a refused refresh ends the projection.
                    Ok(Some(pcr)) => on_answer(ns, w, observe(&pcr), |w| (State::WaitRefresh(current, w), out)),
                }
            }
            State::Denied(e) => (State::Denied(e.clone()), Err(e)),
        };
        self.lock().insert(key, next);
        result
    }

    /// Forgets the states (keys included) of pod `uid`.
    pub fn forget_pod(&self, uid: &str) {
        self.lock().retain(|k, _| k.pod_uid != uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a key and files its request; returns what to wait for.
    async fn file_request(
        &self,
        api: &dyn VolumeApi,
        pod: &Pod,
        src: &PodCertificateProjection,
        now: SystemTime,
    ) -> Result<Waiting, PodCertificateError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let spec = pod.spec.as_ref().ok_or(PodCertificateError::NoPodSpec)?;
        let sa_name = spec.service_account_name.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "default".into());
        let sa = api
            .get_service_account(&ns, &sa_name)
            .await
            .map_err(PodCertificateError::GetServiceAccount)?
            .ok_or_else(|| PodCertificateError::ServiceAccountNotFound(sa_name.clone()))?;
        let node_name = spec.node_name.clone().ok_or(PodCertificateError::NotBound)?;
        let node = api
            .get_node(&node_name)
            .await
            .map_err(PodCertificateError::GetNode)?
            .ok_or_else(|| PodCertificateError::NodeNotFound(node_name.clone()))?;
        let key = new_key(&src.key_type)?;
        let mut request = PodCertificateRequest {
            spec: PodCertificateRequestSpec {
                signer_name: src.signer_name.clone(),
                pod_name: pod.metadata.name.clone().unwrap_or_default(),
                pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
                service_account_name: sa_name,
                service_account_uid: sa.metadata.uid.unwrap_or_default(),
                node_name,
                node_uid: node.metadata.uid.unwrap_or_default(),
                max_expiration_seconds: src.max_expiration_seconds,
                stub_pkc_s10_request: ByteString(key.stub_request),
                unverified_user_annotations: src.user_annotations.clone(),
            },
            ..Default::default()
        };
        request.metadata.namespace = Some(ns.clone());
        request.metadata.generate_name = Some("req-".into());
        request.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: request.spec.pod_name.clone(),
            uid: request.spec.pod_uid.clone(),
            ..Default::default()
        }]);
        let created = api.create_pod_certificate_request(&request).await.map_err(PodCertificateError::CreateRequest)?;
        let created_at = created.metadata.creation_timestamp.as_ref().map(|t| SystemTime::from(t.0)).unwrap_or(now);
        Ok(Waiting {
            key_pem: key.key_pem,
            pcr: created.metadata.name.unwrap_or_default(),
            give_up_at: created_at + ASSUME_DELETED_AFTER + jitter(),
        })
    }
}

/// A state and what the volume gets in it.
type Step = (State, Result<KeyAndChain, PodCertificateError>);

/// The step once the signer answered request `w`; `pending` makes the one of no answer yet.
fn on_answer(ns: &str, w: Waiting, answer: Answer, pending: impl FnOnce(Waiting) -> Step) -> Step {
    match answer {
        Answer::Pending => pending(w),
        Answer::Issued { chain, begin_refresh_at, .. } => {
            let issued = Issued { key_pem: w.key_pem, chain, begin_refresh_at: begin_refresh_at + jitter() };
            let out = Ok((issued.key_pem.clone(), issued.chain.clone()));
            (State::Fresh(issued), out)
        }
        Answer::Denied { reason, message } => terminal(PodCertificateError::Denied { namespace: ns.into(), name: w.pcr, reason, message }),
        Answer::Failed { reason, message } => terminal(PodCertificateError::Failed { namespace: ns.into(), name: w.pcr, reason, message }),
    }
}

/// The state and error for a request the signer denied or failed: the source fails for good.
fn terminal(e: PodCertificateError) -> Step {
    (State::Denied(e.clone()), Err(e))
}

#[cfg(test)]
#[path = "pod_certificates_tests.rs"]
mod tests;
