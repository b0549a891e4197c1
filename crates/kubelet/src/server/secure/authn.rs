//! Who is calling (upstream `BuildAuthn` in `cmd/kubelet/app/auth.go` with the apiserver's
//! delegating authenticator): a client certificate the TLS layer verified against `clientCAFile`
//! (user = CN, groups = O), else a bearer token reviewed by the API server (cached for
//! `authentication.webhook.cacheTTL`), else `system:anonymous` when anonymous auth is on.
//!
//! Authenticated users also get the group `system:authenticated`. A token the API server rejects
//! is a 401 even with anonymous auth on, as upstream. Tokens are never logged.

use std::sync::Arc;
use std::time::Duration;

use kubelet_types::review::{TokenReviewer, UserInfo};

use super::ttl_cache::TtlCache;

/// The user name given to an unauthenticated request when anonymous auth is on.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The only group of the anonymous user.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group added to every authenticated user (client certificate or reviewed token).
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Token → the user a review found (or `None`: rejected).
type TokenCache = TtlCache<String, Option<UserInfo>>;

/// The kubelet's authenticator chain.
pub struct Authenticator {
    tokens: Option<(Arc<dyn TokenReviewer>, TokenCache)>,
    anonymous: bool,
}

/// What a request presented: the verified client certificate's user (if any) and the
/// `Authorization` header.
#[derive(Debug, Default, Clone)]
pub struct Credentials<'a> {
    /// The user of the client certificate the TLS layer verified against `clientCAFile`
    /// (name = CN, groups = O); `None` when the client presented none.
    pub certificate_user: Option<UserInfo>,
    /// The raw `Authorization` header value, e.g. `Bearer <token>`.
    pub authorization: Option<&'a str>,
}

impl Authenticator {
    /// `tokens`: the TokenReview client when `authentication.webhook.enabled`; `cache_ttl` 0 disables
    /// the cache.
    pub fn new(tokens: Option<Arc<dyn TokenReviewer>>, cache_ttl: Duration, anonymous: bool) -> Self {
        Self { tokens: tokens.map(|t| (t, TtlCache::new())), anonymous }.with_ttl(cache_ttl)
    }

    fn with_ttl(mut self, ttl: Duration) -> Self {
        if let Some((_, cache)) = self.tokens.as_mut() {
            cache.set_ttls(ttl, ttl);
        }
        self
    }

    /// The user, or `None` for 401 Unauthorized.
    pub async fn authenticate(&self, creds: &Credentials<'_>) -> Option<UserInfo> {
        if let Some(user) = creds.certificate_user.clone() {
            return Some(with_authenticated_group(user));
        }
        if let (Some((reviewer, cache)), Some(token)) = (self.tokens.as_ref(), creds.authorization.and_then(bearer_token)) {
            if let Some(cached) = cache.get(token) {
                return cached.map(with_authenticated_group);
            }
            return match reviewer.review_token(token).await {
                Ok(user) => {
                    let user = user.filter(|u| !u.name.is_empty());
                    cache.insert(token.to_string(), user.clone(), user.is_some());
                    user.map(with_authenticated_group)
                }
                Err(e) => {
                    tracing::warn!("token review failed: {e}");
                    None
                }
            };
        }
        self.anonymous.then(|| UserInfo { name: ANONYMOUS_USER.into(), groups: vec![UNAUTHENTICATED_GROUP.into()], ..Default::default() })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.into());
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::auth::FakeReviewer;

    fn creds(auth: Option<&str>) -> Credentials<'_> {
        Credentials { certificate_user: None, authorization: auth }
    }

    #[tokio::test]
    async fn certificate_then_token_then_anonymous() {
        let reviewer = Arc::new(FakeReviewer::default());
        reviewer.add_token("good", "bob", &["devs"]);
        let authn = Authenticator::new(Some(reviewer.clone()), Duration::from_secs(60), true);

        let cert = Credentials {
            certificate_user: Some(UserInfo { name: "alice".into(), groups: vec!["ops".into()], ..Default::default() }),
            authorization: Some("Bearer good"),
        };
        let u = authn.authenticate(&cert).await.unwrap();
        assert_eq!((u.name.as_str(), u.groups.clone()), ("alice", vec!["ops".to_string(), AUTHENTICATED_GROUP.into()]));
        assert_eq!(reviewer.token_reviews(), 0, "a certificate wins before any token review");

        let u = authn.authenticate(&creds(Some("Bearer good"))).await.unwrap();
        assert_eq!(u.name, "bob");
        assert_eq!(u.groups, vec!["devs".to_string(), AUTHENTICATED_GROUP.into()]);
        // A rejected token is a 401 even with anonymous on.
        assert_eq!(authn.authenticate(&creds(Some("bearer bad"))).await, None);
        let anon = authn.authenticate(&creds(None)).await.unwrap();
        assert_eq!((anon.name.as_str(), anon.groups.clone()), (ANONYMOUS_USER, vec![UNAUTHENTICATED_GROUP.to_string()]));
        // Basic auth is not a token: anonymous.
        assert_eq!(authn.authenticate(&creds(Some("Basic Zm9vOmJhcg=="))).await.unwrap().name, ANONYMOUS_USER);
    }

    #[tokio::test(start_paused = true)]
    async fn token_reviews_are_cached_for_the_ttl() {
        let reviewer = Arc::new(FakeReviewer::default());
        reviewer.add_token("t", "bob", &[]);
        let authn = Authenticator::new(Some(reviewer.clone()), Duration::from_secs(120), false);
        for _ in 0..3 {
            assert_eq!(authn.authenticate(&creds(Some("Bearer t"))).await.unwrap().name, "bob");
            assert_eq!(authn.authenticate(&creds(Some("Bearer nope"))).await, None);
        }
        assert_eq!(reviewer.token_reviews(), 2);
        tokio::time::advance(Duration::from_secs(121)).await;
        authn.authenticate(&creds(Some("Bearer t"))).await.unwrap();
        assert_eq!(reviewer.token_reviews(), 3);
    }

    #[tokio::test]
    async fn no_credentials_without_anonymous_is_unauthorized() {
        let reviewer = Arc::new(FakeReviewer::default());
        reviewer.fail_with("apiserver down");
        let authn = Authenticator::new(Some(reviewer), Duration::ZERO, false);
        assert_eq!(authn.authenticate(&creds(None)).await, None);
        assert_eq!(authn.authenticate(&creds(Some("Bearer x"))).await, None, "review errors are 401");
        // Webhook off: a token is not looked at; anonymous decides.
        let authn = Authenticator::new(None, Duration::ZERO, true);
        assert_eq!(authn.authenticate(&creds(Some("Bearer x"))).await.unwrap().name, ANONYMOUS_USER);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer  abc "), Some("abc"));
    }
}
