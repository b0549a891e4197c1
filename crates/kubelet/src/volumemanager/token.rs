//! Bound service-account tokens for projected volumes (upstream
//! `pkg/kubelet/token/token_manager.go`): one TokenRequest per (namespace, service account,
//! audience, expiration, pod), cached, and requested again once 80% of its lifetime has passed
//! or it is older than 24 hours.
//!
//! [`requires_refresh`] and [`token_request`] are pure; [`TokenManager`] holds the cache and
//! calls the API through [`VolumeApi`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use kubelet_types::api_error::ApiError;
use kubelet_types::volume_api::VolumeApi;

/// Tokens older than this are refreshed whatever their lifetime.
pub const MAX_TOKEN_AGE: Duration = Duration::from_secs(24 * 3600);
/// Upstream's default `expirationSeconds` of a serviceAccountToken projection.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// Why a service-account token could not be got (upstream's `failed to fetch token: ...`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The TokenRequest failed.
    #[error("failed to fetch token: {0}")]
    Request(#[source] ApiError),
    /// The API server answered the TokenRequest without a `status`.
    #[error("failed to fetch token: serviceaccounts/{namespace}/{service_account}/token answered without a status")]
    NoStatus {
        /// The service account's namespace.
        namespace: String,
        /// The service account's name.
        service_account: String,
    },
    /// The API server answered the TokenRequest without `status.token` or
    /// `status.expirationTimestamp`.
    #[error("failed to fetch token: serviceaccounts/{namespace}/{service_account}/token answered without a token or expiry")]
    Incomplete {
        /// The service account's namespace.
        namespace: String,
        /// The service account's name.
        service_account: String,
    },
}

/// One issued token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token (a JWT) from the TokenRequest's `status.token`.
    pub token: String,
    /// When the kubelet received it (its own clock), the start of its lifetime.
    pub issued_at: SystemTime,
    /// `status.expirationTimestamp`: when the API server stops accepting it.
    pub expires_at: SystemTime,
}

/// Whether `t` must be requested again at `now`: expired, past 80% of its lifetime, or older
/// than [`MAX_TOKEN_AGE`].
pub fn requires_refresh(t: &IssuedToken, now: SystemTime) -> bool {
    if now >= t.expires_at {
        return true;
    }
    let lifetime = t.expires_at.duration_since(t.issued_at).unwrap_or_default();
    let age = now.duration_since(t.issued_at).unwrap_or_default();
    age.as_secs_f64() > lifetime.as_secs_f64() * 0.8 || age > MAX_TOKEN_AGE
}

/// The TokenRequest for a pod's projection, bound to the pod so it dies with it.
pub fn token_request(audience: Option<&str>, expiration_seconds: Option<i64>, pod_name: &str, pod_uid: &str) -> TokenRequest {
    TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(audience.filter(|a| !a.is_empty()).map(|a| vec![a.to_string()]).unwrap_or_default()),
            expiration_seconds: Some(expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name.into()),
                uid: Some(pod_uid.into()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What identifies a cached token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TokenKey {
    namespace: String,
    service_account: String,
    /// The service account's UID when the request names it (credential provider plugins'
    /// tokens): one made again under the same name gets a token of its own.
    service_account_uid: String,
    audience: String,
    expiration_seconds: i64,
    pod_uid: String,
}

/// A token wanted: whose, for what, bound to which pod.
#[derive(Clone, Copy, Debug)]
pub struct TokenFor<'a> {
    /// The namespace of the service account (the pod's).
    pub namespace: &'a str,
    /// The service account's name (the pod's `serviceAccountName`, `default` when unset).
    pub service_account: &'a str,
    /// Sent as the request's `metadata.uid` precondition when set.
    pub service_account_uid: Option<&'a str>,
    /// The token's intended audience; `None` or empty for the API server's default audiences.
    pub audience: Option<&'a str>,
    /// The requested lifetime in seconds; `None` for [`DEFAULT_EXPIRATION_SECONDS`].
    pub expiration_seconds: Option<i64>,
    /// The name of the pod the token is bound to.
    pub pod_name: &'a str,
    /// The UID of the pod the token is bound to; its tokens are forgotten with it.
    pub pod_uid: &'a str,
}

/// The token cache.
#[derive(Default)]
pub struct TokenManager {
    cache: Mutex<HashMap<TokenKey, IssuedToken>>,
}

impl TokenManager {
    /// The token `want` describes, from the cache or a new TokenRequest.
    pub async fn get(&self, api: &dyn VolumeApi, want: TokenFor<'_>, now: SystemTime) -> Result<String, TokenError> {
        let TokenFor { namespace, service_account, service_account_uid, audience, expiration_seconds, pod_name, pod_uid } = want;
        let mut request = token_request(audience, expiration_seconds, pod_name, pod_uid);
        request.metadata.uid = service_account_uid.map(str::to_owned);
        let key = TokenKey {
            namespace: namespace.into(),
            service_account: service_account.into(),
            service_account_uid: service_account_uid.unwrap_or_default().into(),
            audience: audience.unwrap_or_default().into(),
            expiration_seconds: request.spec.as_ref().and_then(|s| s.expiration_seconds).unwrap_or_default(),
            pod_uid: pod_uid.into(),
        };
        if let Some(t) = self.cache.lock().expect("token cache").get(&key)
            && !requires_refresh(t, now)
        {
            return Ok(t.token.clone());
        }
        let answer = api.create_token(namespace, service_account, &request).await.map_err(TokenError::Request)?;
        let status =
            answer.status.ok_or_else(|| TokenError::NoStatus { namespace: namespace.into(), service_account: service_account.into() })?;
        let incomplete = || TokenError::Incomplete { namespace: namespace.into(), service_account: service_account.into() };
        let expires_at = SystemTime::from(status.expiration_timestamp.ok_or_else(incomplete)?.0);
        let issued = IssuedToken { token: status.token.ok_or_else(incomplete)?, issued_at: now, expires_at };
        let mut cache = self.cache.lock().expect("token cache");
        // Expired tokens go (a pod's are also forgotten with it; credential plugins' tokens
        // only expire).
        cache.retain(|_, t| t.expires_at > now);
        cache.insert(key, issued.clone());
        Ok(issued.token)
    }

    /// Forgets the tokens of a removed pod.
    pub fn forget_pod(&self, pod_uid: &str) {
        self.cache.lock().expect("token cache").retain(|k, _| k.pod_uid != pod_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_eighty_percent_of_lifetime_or_a_day() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = IssuedToken { token: "t".into(), issued_at: t0, expires_at: t0 + Duration::from_secs(3600) };
        assert!(!requires_refresh(&hour, t0));
        assert!(!requires_refresh(&hour, t0 + Duration::from_secs(2880)));
        assert!(requires_refresh(&hour, t0 + Duration::from_secs(2881)));
        assert!(requires_refresh(&hour, t0 + Duration::from_secs(4000)));
        let week = IssuedToken { token: "t".into(), issued_at: t0, expires_at: t0 + Duration::from_secs(7 * 86400) };
        assert!(!requires_refresh(&week, t0 + Duration::from_secs(86400)));
        assert!(requires_refresh(&week, t0 + Duration::from_secs(86401)));
    }

    #[test]
    fn requests_are_bound_to_the_pod() {
        let r = token_request(Some("vault"), None, "web", "u-1");
        let spec = r.spec.unwrap();
        assert_eq!(spec.audiences, Some(vec!["vault".to_string()]));
        assert_eq!(spec.expiration_seconds, Some(3600));
        let bound = spec.bound_object_ref.unwrap();
        assert_eq!((bound.kind.as_deref(), bound.name.as_deref(), bound.uid.as_deref()), (Some("Pod"), Some("web"), Some("u-1")));
        assert!(token_request(Some(""), Some(600), "web", "u").spec.unwrap().audiences.unwrap_or_default().is_empty());
    }

    #[tokio::test]
    async fn a_service_account_made_again_gets_a_token_of_its_own() {
        let api = test_support::FakeVolumeApi::new();
        let tokens = TokenManager::default();
        let want = |uid| TokenFor {
            namespace: "ns",
            service_account: "sa",
            service_account_uid: Some(uid),
            audience: Some("registry"),
            expiration_seconds: None,
            pod_name: "p",
            pod_uid: "pu",
        };
        let now = SystemTime::now();
        let first = tokens.get(&api, want("sa-1"), now).await.unwrap();
        assert_eq!(tokens.get(&api, want("sa-1"), now).await.unwrap(), first, "cached");
        assert_ne!(tokens.get(&api, want("sa-2"), now).await.unwrap(), first);
        let requests = api.token_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1].2.metadata.uid.as_deref(), Some("sa-2"), "the UID is the request's precondition");

        api.fail_with(Some("down"));
        let err = tokens.get(&api, want("sa-3"), now).await.unwrap_err();
        assert!(matches!(&err, TokenError::Request(e) if !e.is_not_found()), "{err}");
        assert_eq!(err.to_string(), "failed to fetch token: serviceaccounts/ns/sa/token: API server answered 500 InternalError: down");
    }
}
