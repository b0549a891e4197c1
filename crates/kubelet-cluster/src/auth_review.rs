//! The kubelet server's delegated authentication and authorization (upstream
//! `k8s.io/apiserver/pkg/authentication/token/webhook` and `.../authorization/webhook` as the
//! kubelet uses them): a bearer token is checked with a `TokenReview`, a request with a
//! `SubjectAccessReview`, both sent to the API server.
//!
//! Owns only the two API calls behind the [`TokenReviewer`] and [`AccessReviewer`] traits
//! (`kubelet_types::review`); caching and the attribute mapping live in the kubelet's server
//! module. Tokens are never logged.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use kubelet_types::review::{AccessDecision, AccessReviewer, RequestAttributes, ReviewError, TokenReviewer, UserInfo};

/// Both reviews through the kubelet's API client.
#[derive(Clone)]
pub struct ApiReviewer {
    api: crate::api::KubeApi,
}

impl ApiReviewer {
    /// Reviews through `api`'s (replaceable) client; reviews are not rate-limited by it.
    pub fn new(api: &crate::api::KubeApi) -> Self {
        Self { api: api.clone() }
    }
}

/// The `SubjectAccessReview` upstream's webhook authorizer sends for a resource request.
pub fn subject_access_review(user: &UserInfo, a: &RequestAttributes) -> SubjectAccessReview {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: some(&user.name),
            uid: some(&user.uid),
            groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: some(&a.verb),
                namespace: some(&a.namespace),
                group: Some(a.api_group.clone()),
                version: some(&a.api_version),
                resource: some(&a.resource),
                subresource: some(&a.subresource),
                name: some(&a.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The user a `TokenReview` status names, when it authenticated the token.
pub fn reviewed_user(review: &TokenReview) -> Option<UserInfo> {
    let status = review.status.as_ref()?;
    if status.authenticated != Some(true) {
        return None;
    }
    let user = status.user.as_ref()?;
    Some(UserInfo {
        name: user.username.clone().unwrap_or_default(),
        uid: user.uid.clone().unwrap_or_default(),
        groups: user.groups.clone().unwrap_or_default(),
        extra: user.extra.clone().unwrap_or_default(),
    })
}

#[async_trait::async_trait]
impl TokenReviewer for ApiReviewer {
    async fn review_token(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        const KIND: &str = "TokenReview";
        let review = TokenReview { spec: TokenReviewSpec { token: token.to_string(), ..Default::default() }, ..Default::default() };
        let api: Api<TokenReview> = Api::all(self.api.client());
        let answer =
            api.create(&PostParams::default(), &review).await.map_err(|e| ReviewError::Api { kind: KIND, message: e.to_string() })?;
        if answer.status.is_none() {
            return Err(ReviewError::NoStatus { kind: KIND });
        }
        Ok(reviewed_user(&answer))
    }
}

#[async_trait::async_trait]
impl AccessReviewer for ApiReviewer {
    async fn review_access(&self, user: &UserInfo, attributes: &RequestAttributes) -> Result<AccessDecision, ReviewError> {
        const KIND: &str = "SubjectAccessReview";
        let api: Api<SubjectAccessReview> = Api::all(self.api.client());
        let answer = api
            .create(&PostParams::default(), &subject_access_review(user, attributes))
            .await
            .map_err(|e| ReviewError::Api { kind: KIND, message: e.to_string() })?;
        let status = answer.status.ok_or(ReviewError::NoStatus { kind: KIND })?;
        Ok(AccessDecision { allowed: status.allowed && status.denied != Some(true), reason: status.reason.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::{TokenReviewStatus, UserInfo as ApiUser};

    #[test]
    fn access_review_carries_user_and_node_attributes() {
        let user = UserInfo { name: "alice".into(), groups: vec!["devs".into()], ..Default::default() };
        let attrs = RequestAttributes {
            verb: "get".into(),
            api_version: "v1".into(),
            resource: "nodes".into(),
            subresource: "log".into(),
            name: "n1".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(subject_access_review(&user, &attrs)).unwrap();
        assert_eq!(v["apiVersion"], "authorization.k8s.io/v1");
        assert_eq!(v["spec"]["user"], "alice");
        assert_eq!(v["spec"]["groups"], serde_json::json!(["devs"]));
        assert!(v["spec"].get("uid").is_none());
        let ra = &v["spec"]["resourceAttributes"];
        assert_eq!((ra["verb"].as_str(), ra["resource"].as_str(), ra["subresource"].as_str()), (Some("get"), Some("nodes"), Some("log")));
        assert_eq!((ra["name"].as_str(), ra["group"].as_str(), ra["version"].as_str()), (Some("n1"), Some(""), Some("v1")));
        assert!(ra.get("namespace").is_none());
    }

    #[test]
    fn token_review_user_only_when_authenticated() {
        let mut review = TokenReview {
            status: Some(TokenReviewStatus {
                authenticated: Some(true),
                user: Some(ApiUser { username: Some("bob".into()), groups: Some(vec!["g".into()]), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(reviewed_user(&review).unwrap().name, "bob");
        review.status.as_mut().unwrap().authenticated = Some(false);
        assert_eq!(reviewed_user(&review), None);
        review.status = None;
        assert_eq!(reviewed_user(&review), None);
    }
}
