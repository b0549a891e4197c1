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
    /// The user's name (`system:node:worker-1`, `system:serviceaccount:ns:sa`, ...).
    pub name: String,
    /// The user's UID; empty when the authenticator gives none.
    pub uid: String,
    /// The groups the user is in (`system:authenticated`, ...).
    pub groups: Vec<String>,
    /// Further authenticator-specific attributes, by key.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request does, in the API's terms (a resource request on `nodes/<subresource>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestAttributes {
    /// The API verb (`get`, `create`, ...) for the HTTP method; empty for methods without one.
    pub verb: String,
    /// The object's namespace; empty for the (cluster-scoped) node.
    pub namespace: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The API version (`v1`).
    pub api_version: String,
    /// The resource (`nodes`).
    pub resource: String,
    /// The node subresource the path maps to (`pods`, `stats`, `metrics`, `log`, `proxy`, ...).
    pub subresource: String,
    /// The object's name: this node's name.
    pub name: String,
}

/// The API server's answer to a `SubjectAccessReview`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    /// Whether the request is allowed (`status.allowed`, and not `status.denied`).
    pub allowed: bool,
    /// The authorizer's explanation (`status.reason`); may be empty.
    pub reason: String,
}

/// Why a review could not be done (the API server was unreachable or answered an error).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Creating the review failed (unreachable API server or an error answer).
    #[error("{kind}: {message}")]
    Api {
        /// The review's kind: `TokenReview` or `SubjectAccessReview`.
        kind: &'static str,
        /// The API client's error text.
        message: String,
    },
    /// The API server answered the review with no `status`.
    #[error("{kind}: the API server answered without a status")]
    NoStatus {
        /// The review's kind: `TokenReview` or `SubjectAccessReview`.
        kind: &'static str,
    },
}

/// Checks a bearer token: `Ok(Some(user))` when authenticated, `Ok(None)` when the API server
/// says it is not.
#[async_trait::async_trait]
pub trait TokenReviewer: Send + Sync + 'static {
    /// Sends a `TokenReview` for `token` (never logged).
    async fn review_token(&self, token: &str) -> Result<Option<UserInfo>, ReviewError>;
}

/// Asks whether `user` may do `attributes`.
#[async_trait::async_trait]
pub trait AccessReviewer: Send + Sync + 'static {
    /// Sends a `SubjectAccessReview` for `user` doing `attributes`.
    async fn review_access(&self, user: &UserInfo, attributes: &RequestAttributes) -> Result<AccessDecision, ReviewError>;
}

/// Both reviews from one client (the kubelet server's webhook authentication and
/// authorization share it).
pub trait Reviewer: TokenReviewer + AccessReviewer {}

impl<T: TokenReviewer + AccessReviewer> Reviewer for T {}
