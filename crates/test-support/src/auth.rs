//! A fake API server for the kubelet server's delegated auth: tokens it knows, and the
//! (user, verb, subresource) triples it allows. Counts the reviews so tests can check caching.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use kubelet_types::review::{AccessDecision, AccessReviewer, RequestAttributes, ReviewError, TokenReviewer, UserInfo};

#[derive(Default)]
struct State {
    tokens: BTreeMap<String, UserInfo>,
    allowed: BTreeSet<(String, String, String)>,
    failure: Option<String>,
    token_reviews: usize,
    access_reviews: usize,
    last_access_review: Option<(UserInfo, RequestAttributes)>,
}

/// Implements both [`TokenReviewer`] and [`AccessReviewer`].
#[derive(Default)]
pub struct FakeReviewer {
    state: Mutex<State>,
}

impl FakeReviewer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `token` authenticates as `user` in `groups`.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        let info = UserInfo { name: user.into(), groups: groups.iter().map(|g| g.to_string()).collect(), ..Default::default() };
        self.state().tokens.insert(token.into(), info);
    }

    /// `user` may do `verb` on `nodes/<subresource>`.
    pub fn allow(&self, user: &str, verb: &str, subresource: &str) {
        self.state().allowed.insert((user.into(), verb.into(), subresource.into()));
    }

    /// Every review fails as if the API server were unreachable.
    pub fn fail_with(&self, message: &str) {
        self.state().failure = Some(message.into());
    }

    /// How many TokenReviews were asked for so far.
    pub fn token_reviews(&self) -> usize {
        self.state().token_reviews
    }

    /// How many SubjectAccessReviews were asked for so far.
    pub fn access_reviews(&self) -> usize {
        self.state().access_reviews
    }

    /// The user and request attributes of the latest SubjectAccessReview, if any.
    pub fn last_access_review(&self) -> Option<(UserInfo, RequestAttributes)> {
        self.state().last_access_review.clone()
    }
}

fn unreachable(kind: &'static str, message: &str) -> ReviewError {
    ReviewError::Api { kind, message: message.to_string() }
}

#[async_trait::async_trait]
impl TokenReviewer for FakeReviewer {
    async fn review_token(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        let mut s = self.state();
        s.token_reviews += 1;
        if let Some(msg) = &s.failure {
            return Err(unreachable("TokenReview", msg));
        }
        Ok(s.tokens.get(token).cloned())
    }
}

#[async_trait::async_trait]
impl AccessReviewer for FakeReviewer {
    async fn review_access(&self, user: &UserInfo, a: &RequestAttributes) -> Result<AccessDecision, ReviewError> {
        let mut s = self.state();
        s.access_reviews += 1;
        s.last_access_review = Some((user.clone(), a.clone()));
        if let Some(msg) = &s.failure {
            return Err(unreachable("SubjectAccessReview", msg));
        }
        let allowed = s.allowed.contains(&(user.name.clone(), a.verb.clone(), a.subresource.clone()));
        Ok(AccessDecision { allowed, reason: if allowed { "allowed by fake".into() } else { String::new() } })
    }
}
