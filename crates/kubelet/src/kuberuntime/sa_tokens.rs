//! [`ServiceAccountTokens`] over the API server: the ServiceAccount object, and tokens from
//! the TokenRequest API bound to the pod, with the service account's UID as a precondition
//! (as upstream: a service account made again under the same name is another one), cached and
//! refreshed as projected tokens are
//! ([`TokenManager`]; the token lives an hour, upstream leaves `expirationSeconds` unset and
//! the API server's default is the same).

use std::sync::Arc;
use std::time::SystemTime;

use kubelet_types::volume_api::VolumeApi;

use super::credential_plugins::{PullingPod, ServiceAccountInfo, ServiceAccountTokenError, ServiceAccountTokens};
use crate::volumemanager::token::{TokenFor, TokenManager};

/// Service accounts and pod-bound tokens for credential provider plugins, read from the API
/// server.
pub struct ApiServiceAccountTokens {
    /// The API server client the ServiceAccount objects are read through.
    pub api: Arc<dyn VolumeApi>,
    /// Requests the tokens (TokenRequest API) and caches them until they need refreshing.
    pub tokens: TokenManager,
}

#[async_trait::async_trait]
impl ServiceAccountTokens for ApiServiceAccountTokens {
    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccountInfo>, ServiceAccountTokenError> {
        let account = self.api.get_service_account(namespace, name).await?;
        Ok(account.map(|a| ServiceAccountInfo {
            uid: a.metadata.uid.unwrap_or_default(),
            annotations: a.metadata.annotations.unwrap_or_default(),
        }))
    }

    async fn token(&self, pod: &PullingPod, service_account_uid: &str, audience: &str) -> Result<String, ServiceAccountTokenError> {
        let want = TokenFor {
            namespace: &pod.namespace,
            service_account: &pod.service_account,
            service_account_uid: Some(service_account_uid).filter(|u| !u.is_empty()),
            audience: Some(audience),
            expiration_seconds: None,
            pod_name: &pod.name,
            pod_uid: &pod.uid,
        };
        Ok(self.tokens.get(self.api.as_ref(), want, SystemTime::now()).await?)
    }
}
