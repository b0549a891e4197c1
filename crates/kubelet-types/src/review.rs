//! The kubelet server's delegated authentication and authorization (upstream
//! `k8s.io/apiserver/pkg/authentication/token/webhook` and `.../authorization/webhook` as the
//! kubelet uses them): a bearer token is checked with a `TokenReview`, a request with a
//! `SubjectAccessReview`, both sent to the API server.
//!
//! This module holds the traits and the types they speak: the kubelet's server calls them
//! (caching and the attribute mapping live there), the cluster-mode crate implements them with
//! the two API calls. Tokens are never logged.

use std::collections::BTreeMap;

/// Who made a request, as an authenticator found them (upstream `user.Info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request does, in the API's terms (a resource request on `nodes/<subresource>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestAttributes {
    pub verb: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// The API server's answer to a `SubjectAccessReview`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    pub allowed: bool,
    pub reason: String,
}

/// Why a review could not be done (the API server was unreachable or answered an error).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{kind}: {message}")]
    Api { kind: &'static str, message: String },
    #[error("{kind}: the API server answered without a status")]
    NoStatus { kind: &'static str },
}

/// Checks a bearer token: `Ok(Some(user))` when authenticated, `Ok(None)` when the API server
/// says it is not.
#[async_trait::async_trait]
pub trait TokenReviewer: Send + Sync + 'static {
    async fn review_token(&self, token: &str) -> Result<Option<UserInfo>, ReviewError>;
}

/// Asks whether `user` may do `attributes`.
#[async_trait::async_trait]
pub trait AccessReviewer: Send + Sync + 'static {
    async fn review_access(&self, user: &UserInfo, attributes: &RequestAttributes) -> Result<AccessDecision, ReviewError>;
}

/// Both reviews from one client (the kubelet server's webhook authentication and
/// authorization share it).
pub trait Reviewer: TokenReviewer + AccessReviewer {}

impl<T: TokenReviewer + AccessReviewer> Reviewer for T {}
