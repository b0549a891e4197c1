//! The kubelet's certificates from the cluster: TLS bootstrap of the client certificate
//! ([`bootstrap`]), the files in `--cert-dir` ([`store`]), signing requests ([`csr`]) and
//! rotation before expiry ([`rotation`]).

pub mod bootstrap;
pub mod csr;
pub mod rotation;
pub mod store;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, PostParams};

use crate::api::KubeApi;
use crate::error::ApiError;

/// `CertificateSigningRequest`s, as the kubelet uses them.
#[async_trait]
pub trait CsrApi: Send + Sync {
    /// Submits `csr` (named `node-csr-<digest>`); fails with [`ApiError::AlreadyExists`] when a
    /// previous attempt already did.
    async fn create_csr(&self, csr: &CertificateSigningRequest) -> Result<CertificateSigningRequest, ApiError>;
    /// `None` when it does not exist.
    async fn get_csr(&self, name: &str) -> Result<Option<CertificateSigningRequest>, ApiError>;
}

#[async_trait]
impl CsrApi for KubeApi {
    async fn create_csr(&self, csr: &CertificateSigningRequest) -> Result<CertificateSigningRequest, ApiError> {
        self.limiter.acquire().await;
        let name = csr.metadata.name.clone().unwrap_or_default();
        Api::<CertificateSigningRequest>::all(self.client())
            .create(&PostParams::default(), csr)
            .await
            .map_err(|e| crate::error::from_kube(format!("certificatesigningrequests/{name}"), e))
    }

    async fn get_csr(&self, name: &str) -> Result<Option<CertificateSigningRequest>, ApiError> {
        self.limiter.acquire().await;
        Api::<CertificateSigningRequest>::all(self.client())
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("certificatesigningrequests/{name}"), e))
    }
}
