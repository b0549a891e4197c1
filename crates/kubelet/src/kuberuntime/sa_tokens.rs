//! [`ServiceAccountTokens`] over the API server: the ServiceAccount object, and tokens from
//! the TokenRequest API bound to the pod, cached and refreshed as projected tokens are
//! ([`TokenManager`]; the token lives an hour, upstream leaves `expirationSeconds` unset and
//! the API server's default is the same).

use std::sync::Arc;
use std::time::SystemTime;

use kubelet_api::volume_api::VolumeApi;

use super::credential_plugins::{PullingPod, ServiceAccountInfo, ServiceAccountTokens};
use crate::volumemanager::token::TokenManager;

pub struct ApiServiceAccountTokens {
    pub api: Arc<dyn VolumeApi>,
    pub tokens: TokenManager,
}

#[async_trait::async_trait]
impl ServiceAccountTokens for ApiServiceAccountTokens {
    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccountInfo>, String> {
        let account = self.api.get_service_account(namespace, name).await.map_err(|e| e.to_string())?;
        Ok(account.map(|a| ServiceAccountInfo { uid: a.metadata.uid.unwrap_or_default(), annotations: a.metadata.annotations.unwrap_or_default() }))
    }

    async fn token(&self, pod: &PullingPod, audience: &str) -> Result<String, String> {
        self.tokens.get(self.api.as_ref(), &pod.namespace, &pod.service_account, Some(audience), None, &pod.name, &pod.uid, SystemTime::now()).await
    }
}
