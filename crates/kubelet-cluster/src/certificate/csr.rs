//! Certificate signing requests as the kubelet sends them (upstream `requestNodeCertificate`
//! and the certificate manager): an ECDSA P-256 key, a PKCS#10 request for
//! `CN=system:node:<node>, O=system:nodes` (with the node's names and addresses for a serving
//! certificate), the `CertificateSigningRequest` object with its signer and usages, named
//! `node-csr-<digest>` after the key, subject and usages so a retry finds the same request.
//! Then [`wait_for_certificate`] polls it (50 ms, doubling to 1 s; upstream watches it) until it
//! is issued, denied or failed.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rcgen::PublicKeyData;

use super::CsrApi;
use crate::error::ApiError;

/// `kubernetes.io/kube-apiserver-client-kubelet`: the node's client certificate.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubernetes.io/kubelet-serving`: the node's serving certificate.
pub const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// How often a pending request is looked at: soon at first (the controller-manager approves
/// and signs within a fraction of a second), then backing off to once a second.
const POLL_FIRST: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_secs(1);

/// Why no certificate came.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// The key, or the PKCS#10 request from it, could not be made or read.
    #[error("unable to generate a key or certificate request: {0}")]
    Generate(String),
    /// The API server refused to create the request (other than it already existing).
    #[error("cannot create certificate signing request: {0}")]
    Create(ApiError),
    /// A request of the same name exists but asks for something else.
    #[error("certificate signing request {name} exists with another request or signer; delete it to bootstrap again")]
    Incompatible {
        /// The request's name (`node-csr-<digest>`).
        name: String,
    },
    /// Reading the request back failed.
    #[error("certificate signing request {name}: {source}")]
    Get {
        /// The request's name (`node-csr-<digest>`).
        name: String,
        /// The API error.
        source: ApiError,
    },
    /// The request has a `Denied` condition.
    #[error("certificate signing request {name} is denied, reason: {reason}, message: {message}")]
    Denied {
        /// The request's name (`node-csr-<digest>`).
        name: String,
        /// The condition's `reason`.
        reason: String,
        /// The condition's `message`.
        message: String,
    },
    /// The request has a `Failed` condition (or its certificate is not text).
    #[error("certificate signing request {name} failed, reason: {reason}, message: {message}")]
    Failed {
        /// The request's name (`node-csr-<digest>`).
        name: String,
        /// The condition's `reason`.
        reason: String,
        /// The condition's `message`.
        message: String,
    },
    /// No certificate was issued within the timeout.
    #[error("timed out after {waited:?} waiting for certificate signing request {name} to be {}", if *approved { "issued (it is approved: is the signer running?)" } else { "approved and issued" })]
    Timeout {
        /// The request's name (`node-csr-<digest>`).
        name: String,
        /// How long the kubelet waited.
        waited: Duration,
        /// Whether the request had been approved (so the signer, not the approver, is missing).
        approved: bool,
    },
    /// The request disappeared while being waited for.
    #[error("certificate signing request {name} was deleted before it was issued")]
    Deleted {
        /// The request's name (`node-csr-<digest>`).
        name: String,
    },
}

/// A new ECDSA P-256 key, as PKCS#8 PEM.
pub fn new_key_pem() -> Result<String, CsrError> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map(|k| k.serialize_pem()).map_err(|e| CsrError::Generate(e.to_string()))
}

/// What a request asks for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The subject's CN: `system:node:<node>`.
    pub common_name: String,
    /// The subject's O: `system:nodes`.
    pub organization: String,
    /// DNS subject alternative names (a serving certificate's host names).
    pub dns_names: Vec<String>,
    /// IP subject alternative names (a serving certificate's node addresses).
    pub ips: Vec<IpAddr>,
    /// The `spec.signerName`: [`CLIENT_SIGNER`] or [`SERVING_SIGNER`].
    pub signer: &'static str,
    /// The `spec.usages` (`digital signature`, `client auth` / `server auth`).
    pub usages: Vec<&'static str>,
}

impl Request {
    /// The client certificate of node `node` (usages for an ECDSA key).
    pub fn client(node: &str) -> Self {
        Self {
            common_name: format!("system:node:{node}"),
            organization: "system:nodes".into(),
            dns_names: Vec::new(),
            ips: Vec::new(),
            signer: CLIENT_SIGNER,
            usages: vec!["digital signature", "client auth"],
        }
    }

    /// The serving certificate of node `node` for its host names and addresses.
    pub fn serving(node: &str, dns_names: Vec<String>, ips: Vec<IpAddr>) -> Self {
        Self {
            common_name: format!("system:node:{node}"),
            organization: "system:nodes".into(),
            dns_names,
            ips,
            signer: SERVING_SIGNER,
            usages: vec!["digital signature", "server auth"],
        }
    }

    /// `node-csr-<base64url(SHA-512/256(...))>` of the public key, subject and usages (each
    /// part base64url-encoded and followed by `|`, as upstream's `digestedName`).
    pub fn name(&self, key_pem: &str) -> Result<String, CsrError> {
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| CsrError::Generate(e.to_string()))?;
        let encode = |d: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d);
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA512_256);
        let mut write = |d: &[u8]| {
            ctx.update(encode(d).as_bytes());
            ctx.update(b"|");
        };
        write(&key.subject_public_key_info());
        write(self.common_name.as_bytes());
        write(self.organization.as_bytes());
        for u in &self.usages {
            write(u.as_bytes());
        }
        Ok(format!("node-csr-{}", encode(ctx.finish().as_ref())))
    }

    /// The PKCS#10 request, PEM.
    pub fn pem(&self, key_pem: &str) -> Result<String, CsrError> {
        let g = |e: rcgen::Error| CsrError::Generate(e.to_string());
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(g)?;
        let mut params = rcgen::CertificateParams::new(self.dns_names.clone()).map_err(g)?;
        params.subject_alt_names.extend(self.ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, self.organization.clone());
        params.distinguished_name.push(rcgen::DnType::CommonName, self.common_name.clone());
        params.serialize_request(&key).map_err(g)?.pem().map_err(g)
    }

    /// The `CertificateSigningRequest` object.
    pub fn object(&self, key_pem: &str) -> Result<CertificateSigningRequest, CsrError> {
        Ok(CertificateSigningRequest {
            metadata: ObjectMeta { name: Some(self.name(key_pem)?), ..Default::default() },
            spec: CertificateSigningRequestSpec {
                request: ByteString(self.pem(key_pem)?.into_bytes()),
                signer_name: self.signer.into(),
                usages: Some(self.usages.iter().map(|u| u.to_string()).collect()),
                ..Default::default()
            },
            status: None,
        })
    }
}

/// Creates the request (or finds the one a previous attempt created with the same key) and
/// waits up to `timeout` for its certificate; returns the certificate PEM.
pub async fn request_certificate(api: &dyn CsrApi, req: &Request, key_pem: &str, timeout: Duration) -> Result<String, CsrError> {
    let csr = req.object(key_pem)?;
    let name = csr.metadata.name.clone().unwrap_or_default();
    match api.create_csr(&csr).await {
        Ok(_) => tracing::info!(csr = %name, signer = req.signer, "created certificate signing request"),
        Err(e) if e.is_already_exists() => {
            let existing = api.get_csr(&name).await.map_err(|source| CsrError::Get { name: name.clone(), source })?;
            let same = existing.as_ref().is_some_and(|e| {
                e.spec.request == csr.spec.request || (e.spec.signer_name == csr.spec.signer_name && e.spec.usages == csr.spec.usages)
            });
            if !same {
                return Err(CsrError::Incompatible { name });
            }
            tracing::info!(csr = %name, "certificate signing request already exists; waiting for it");
        }
        Err(e) => return Err(CsrError::Create(e)),
    }
    wait_for_certificate(api, &name, timeout).await
}

/// Polls request `name` until it carries a certificate, is denied or failed, or `timeout`.
pub async fn wait_for_certificate(api: &dyn CsrApi, name: &str, timeout: Duration) -> Result<String, CsrError> {
    let start = tokio::time::Instant::now();
    let mut approved = false;
    let mut poll = POLL_FIRST;
    loop {
        let csr = api
            .get_csr(name)
            .await
            .map_err(|source| CsrError::Get { name: name.into(), source })?
            .ok_or_else(|| CsrError::Deleted { name: name.into() })?;
        let status = csr.status.unwrap_or_default();
        for c in status.conditions.iter().flatten() {
            let (reason, message) = (c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default());
            match c.type_.as_str() {
                "Denied" => return Err(CsrError::Denied { name: name.into(), reason, message }),
                "Failed" => return Err(CsrError::Failed { name: name.into(), reason, message }),
                "Approved" => approved = true,
                _ => {}
            }
        }
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            return String::from_utf8(cert.0).map_err(|_| CsrError::Failed {
                name: name.into(),
                reason: "NotPEM".into(),
                message: "the issued certificate is not text".into(),
            });
        }
        if start.elapsed() >= timeout {
            return Err(CsrError::Timeout { name: name.into(), waited: timeout, approved });
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(POLL_MAX);
    }
}
