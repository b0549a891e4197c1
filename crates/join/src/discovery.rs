//! kubeadm's token discovery, the pure part: the `cluster-info` ConfigMap in `kube-public`
//! holds a kubeconfig (the API server's address and the cluster CA) and, for every bootstrap
//! token allowed to sign, `jws-kubeconfig-<token id>`: a detached JWS (HS256, keyed with the
//! token's secret) of that kubeconfig, written by the controller-manager's bootstrapsigner.
//! A joining node trusts the kubeconfig when the signature verifies with its token and the
//! CA's public key matches a pinned `sha256:<hex>` hash of its SubjectPublicKeyInfo.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::token::BootstrapToken;

/// The key of the kubeconfig in `cluster-info`, and the prefix of its signatures.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// The prefix of a signature's key in `cluster-info`; the token ID follows it.
pub const SIGNATURE_PREFIX: &str = "jws-kubeconfig-";

/// What discovery yields: where the API server is and the CA bundle (PEM) to trust it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The API server's `https://` URL, from the kubeconfig's first cluster.
    pub server: String,
    /// The cluster CA bundle (PEM), decoded from `certificate-authority-data`.
    pub ca_pem: Vec<u8>,
}

/// Why token discovery refused `cluster-info` or a `--ca-cert-hash`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// `cluster-info` has no kubeconfig.
    #[error("cluster-info has no `{KUBECONFIG_KEY}` key")]
    NoKubeconfig,
    /// `cluster-info` has no signature for this token.
    #[error(
        "cluster-info is not signed for token id {id:?}: the token must exist, be a signing token \
         (usage-bootstrap-signing: \"true\") and the controller-manager must run the bootstrapsigner controller"
    )]
    NotSigned {
        /// The bootstrap token's ID (the part before the dot).
        id: String,
    },
    /// The signature does not verify with the token's secret.
    #[error("cluster-info's signature for token id {id:?} does not verify: the token's secret is wrong")]
    BadSignature {
        /// The bootstrap token's ID (the part before the dot).
        id: String,
    },
    /// The signature is not a detached HS256 JWS for this token.
    #[error("cluster-info's signature for token id {id:?} is malformed: {reason}")]
    MalformedSignature {
        /// The bootstrap token's ID (the part before the dot).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The signed kubeconfig is unusable (no cluster, no CA, not `https://`); what is wrong.
    #[error("cluster-info's kubeconfig: {0}")]
    Kubeconfig(String),
    /// A `--ca-cert-hash` not of the form `sha256:<64 hex digits>`; the value as given.
    #[error("--ca-cert-hash {0:?}: expected sha256:<64 hexadecimal digits> (kubeadm token create --print-join-command prints it)")]
    BadPin(String),
    /// The CA's public key matches none of the pins.
    #[error(
        "the cluster CA's public key hash is {actual}, not the pinned {pinned}: refusing to trust {server} \
         (check --ca-cert-hash against `openssl x509 -pubkey -in ca.crt | openssl pkey -pubin -outform der | sha256sum`)"
    )]
    HashMismatch {
        /// The hashes of the CA bundle's certificates, comma-separated.
        actual: String,
        /// The `--ca-cert-hash` pins, comma-separated.
        pinned: String,
        /// The API server URL that would have been trusted.
        server: String,
    },
    /// The verified second fetch of `cluster-info` differs from the first.
    #[error("cluster-info changed between the first fetch and the fetch verified against its CA")]
    Changed,
}

/// A `--ca-cert-hash` value, normalized to lowercase `sha256:<hex>`.
pub fn parse_pin(text: &str) -> Result<String, DiscoveryError> {
    let hex = text.trim().strip_prefix("sha256:").ok_or_else(|| DiscoveryError::BadPin(text.into()))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DiscoveryError::BadPin(text.into()));
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// `sha256:<hex>` of each certificate's SubjectPublicKeyInfo in a PEM bundle.
pub fn ca_cert_hashes(pem: &[u8]) -> Result<Vec<String>, DiscoveryError> {
    let mut hashes = Vec::new();
    for item in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let item = item.map_err(|e| DiscoveryError::Kubeconfig(format!("certificate-authority-data: {e}")))?;
        let cert = item.parse_x509().map_err(|e| DiscoveryError::Kubeconfig(format!("certificate-authority-data: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
        hashes.push(format!("sha256:{}", digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()));
    }
    if hashes.is_empty() {
        return Err(DiscoveryError::Kubeconfig("certificate-authority-data holds no certificate".into()));
    }
    Ok(hashes)
}

/// Checks the signature of `cluster-info` for `token` and reads its kubeconfig.
pub fn verify(data: &std::collections::BTreeMap<String, String>, token: &BootstrapToken) -> Result<ClusterInfo, DiscoveryError> {
    let kubeconfig = data.get(KUBECONFIG_KEY).ok_or(DiscoveryError::NoKubeconfig)?;
    let id = token.id.clone();
    let jws = data.get(&format!("{SIGNATURE_PREFIX}{id}")).ok_or_else(|| DiscoveryError::NotSigned { id: id.clone() })?;
    verify_detached_jws(kubeconfig.as_bytes(), jws, token)?;
    parse_kubeconfig(kubeconfig)
}

/// Checks that the CA matches one of the pins (kubeadm's `--discovery-token-ca-cert-hash`).
pub fn check_pins(info: &ClusterInfo, pins: &[String]) -> Result<(), DiscoveryError> {
    let hashes = ca_cert_hashes(&info.ca_pem)?;
    if pins.iter().any(|p| hashes.contains(p)) {
        return Ok(());
    }
    Err(DiscoveryError::HashMismatch { actual: hashes.join(", "), pinned: pins.join(", "), server: info.server.clone() })
}

fn verify_detached_jws(payload: &[u8], jws: &str, token: &BootstrapToken) -> Result<(), DiscoveryError> {
    let malformed = |reason: &str| DiscoveryError::MalformedSignature { id: token.id.clone(), reason: reason.into() };
    let mut parts = jws.trim().split('.');
    let (Some(header), Some(""), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("expected a detached JWS, <header>..<signature>"));
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: Option<String>,
    }
    let decoded = URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed("the header is not base64url"))?;
    let parsed: Header = serde_json::from_slice(&decoded).map_err(|_| malformed("the header is not JSON with `alg`"))?;
    if parsed.alg != "HS256" {
        return Err(malformed(&format!("algorithm {:?}, expected HS256", parsed.alg)));
    }
    if parsed.kid.as_deref().is_some_and(|kid| kid != token.id) {
        return Err(malformed("its key id is another token's"));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed("the signature is not base64url"))?;
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.secret().as_bytes());
    ring::hmac::verify(&key, input.as_bytes(), &signature).map_err(|_| DiscoveryError::BadSignature { id: token.id.clone() })
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
}
#[derive(Deserialize)]
struct NamedCluster {
    cluster: Cluster,
}
#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
}

fn parse_kubeconfig(text: &str) -> Result<ClusterInfo, DiscoveryError> {
    let kc: Kubeconfig = serde_saphyr::from_str(text).map_err(|e| DiscoveryError::Kubeconfig(e.to_string()))?;
    let cluster = kc.clusters.into_iter().next().ok_or_else(|| DiscoveryError::Kubeconfig("no cluster".into()))?.cluster;
    let data = cluster.ca_data.ok_or_else(|| DiscoveryError::Kubeconfig("no certificate-authority-data".into()))?;
    let ca_pem = STANDARD.decode(data.trim()).map_err(|e| DiscoveryError::Kubeconfig(format!("certificate-authority-data: {e}")))?;
    if !cluster.server.starts_with("https://") {
        return Err(DiscoveryError::Kubeconfig(format!("server {:?} is not https://", cluster.server)));
    }
    Ok(ClusterInfo { server: cluster.server, ca_pem })
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
