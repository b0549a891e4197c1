//! May this user do this (upstream `BuildAuthz`): `AlwaysAllow`, or `Webhook`, which asks the API
//! server with a `SubjectAccessReview` and caches allowed answers for `cacheAuthorizedTTL` and
//! denied ones for `cacheUnauthorizedTTL`.

use std::sync::Arc;
use std::time::Duration;

use kubelet_types::review::{AccessReviewer, RequestAttributes, ReviewError, UserInfo};

use super::ttl_cache::TtlCache;

/// The authorizer of `authorization.mode`.
pub enum Authorizer {
    /// `AlwaysAllow`: every authenticated request is allowed.
    AlwaysAllow,
    /// `Webhook`: each request is decided by a `SubjectAccessReview` to the API server.
    Webhook {
        /// Sends the `SubjectAccessReview`s.
        reviewer: Arc<dyn AccessReviewer>,
        /// Recent decisions per user and request attributes (`true` = allowed), kept for
        /// `cacheAuthorizedTTL` when allowed and `cacheUnauthorizedTTL` when denied.
        cache: TtlCache<(UserInfo, RequestAttributes), bool>,
    },
}

impl Authorizer {
    /// A `Webhook` authorizer asking `reviewer`, caching allowed decisions for `authorized_ttl` and
    /// denied ones for `unauthorized_ttl` (`authorization.webhook.cacheAuthorizedTTL` /
    /// `cacheUnauthorizedTTL`).
    pub fn webhook(reviewer: Arc<dyn AccessReviewer>, authorized_ttl: Duration, unauthorized_ttl: Duration) -> Self {
        let mut cache = TtlCache::new();
        cache.set_ttls(authorized_ttl, unauthorized_ttl);
        Authorizer::Webhook { reviewer, cache }
    }

    /// `Ok(true)` allow, `Ok(false)` deny (403), `Err` could not decide (500).
    pub async fn authorize(&self, user: &UserInfo, attrs: &RequestAttributes) -> Result<bool, ReviewError> {
        let (reviewer, cache) = match self {
            Authorizer::AlwaysAllow => return Ok(true),
            Authorizer::Webhook { reviewer, cache } => (reviewer, cache),
        };
        let key = (user.clone(), attrs.clone());
        if let Some(allowed) = cache.get(&key) {
            return Ok(allowed);
        }
        let decision = reviewer.review_access(user, attrs).await?;
        if !decision.allowed {
            tracing::debug!(user = %user.name, verb = %attrs.verb, subresource = %attrs.subresource, reason = %decision.reason, "access denied");
        }
        cache.insert(key, decision.allowed, decision.allowed);
        Ok(decision.allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::secure::attributes::request_attributes;
    use test_support::auth::FakeReviewer;

    fn user(name: &str) -> UserInfo {
        UserInfo { name: name.into(), ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn webhook_decisions_are_cached_per_ttl() {
        let reviewer = Arc::new(FakeReviewer::default());
        reviewer.allow("admin", "get", "log");
        let authz = Authorizer::webhook(reviewer.clone(), Duration::from_secs(300), Duration::from_secs(30));
        let logs = request_attributes("GET", "/logs/", "n").remove(0);
        let exec = request_attributes("POST", "/exec/a/b/c", "n").remove(0);
        for _ in 0..3 {
            assert!(authz.authorize(&user("admin"), &logs).await.unwrap());
            assert!(!authz.authorize(&user("admin"), &exec).await.unwrap());
            assert!(!authz.authorize(&user("nobody"), &logs).await.unwrap());
        }
        assert_eq!(reviewer.access_reviews(), 3);
        let seen = reviewer.last_access_review().unwrap();
        assert_eq!((seen.0.name.as_str(), seen.1.subresource.as_str(), seen.1.name.as_str()), ("nobody", "log", "n"));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(authz.authorize(&user("admin"), &logs).await.unwrap());
        assert!(!authz.authorize(&user("nobody"), &logs).await.unwrap());
        assert_eq!(reviewer.access_reviews(), 4, "only the denial expired");
    }

    #[tokio::test]
    async fn always_allow_and_review_errors() {
        assert!(Authorizer::AlwaysAllow.authorize(&user("x"), &request_attributes("DELETE", "/pods", "n")[0]).await.unwrap());
        let reviewer = Arc::new(FakeReviewer::default());
        reviewer.fail_with("connection refused");
        let authz = Authorizer::webhook(reviewer, Duration::from_secs(300), Duration::from_secs(30));
        let err = authz.authorize(&user("x"), &request_attributes("GET", "/pods", "n")[0]).await.unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
    }
}
