//! `clusterTrustBundle` projections (GA in 1.37, upstream `pkg/kubelet/clustertrustbundle`):
//! the trust anchors of one ClusterTrustBundle named by `name`, or of every bundle of
//! `signerName` whose labels match `labelSelector`, written as one PEM file.
//!
//! [`normalize`] and [`selector_string`] are pure. [`TrustBundles`] asks the API server (a GET by
//! name, a LIST by signer and selector) and keeps each answer for [`CACHE_TTL`], so the pods of a
//! node that project the same bundles cost one request per interval, not one per pod sync.
//! Upstream keeps an informer of every bundle instead; an update reaches the volumes here within
//! the TTL plus the pod's next sync.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ClusterTrustBundleProjection;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kubelet_types::api_error::ApiError;
use kubelet_types::volume_api::VolumeApi;

/// How long one answer of the API server is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// Upstream's bound on a rendered label selector.
const MAX_LABEL_SELECTOR_LEN: usize = 100 * 1024;

/// Why a `clusterTrustBundle` source could not be resolved (upstream's wording).
#[derive(Debug, thiserror::Error)]
pub enum TrustBundleError {
    /// `In` or `NotIn` with no values.
    #[error("labelSelector: values must be non-empty for operator {operator} on key {key:?}")]
    ValuesRequired {
        /// The expression's operator.
        operator: String,
        /// The expression's key.
        key: String,
    },
    /// `Exists` or `DoesNotExist` with values.
    #[error("labelSelector: values must be empty for operator {operator} on key {key:?}")]
    ValuesForbidden {
        /// The expression's operator.
        operator: String,
        /// The expression's key.
        key: String,
    },
    /// An operator the API does not know.
    #[error("labelSelector: {0:?} is not a valid label selector operator")]
    UnknownOperator(String),
    /// The rendered selector is longer than upstream allows (its length).
    #[error("label selector length ({0}) is larger than {MAX_LABEL_SELECTOR_LEN}")]
    SelectorTooLong(usize),
    /// A bundle's PEM text does not parse.
    #[error("while parsing trust bundle PEM: {0}")]
    Pem(#[source] pem::PemError),
    /// Neither `name` nor `signerName` is set.
    #[error("ClusterTrustBundle projection requires either name or signerName to be set")]
    NoNameOrSigner,
    /// A standalone kubelet has no API server to ask.
    #[error("ClusterTrustBundle projection is not supported in static kubelet mode")]
    StaticMode,
    /// The named bundle does not exist (its name).
    #[error("while getting ClusterTrustBundle: clustertrustbundle.certificates.k8s.io {0:?} not found")]
    NotFound(String),
    /// No bundle of the signer matches the selector.
    #[error("combination of signerName and labelSelector matched zero ClusterTrustBundles")]
    NoMatch,
    /// The API server could not give the named bundle.
    #[error("while getting ClusterTrustBundle: {0}")]
    Get(#[source] Box<ApiError>),
    /// The API server could not list the signer's bundles.
    #[error("while listing ClusterTrustBundles matching label selector {selector:?}: {source}")]
    List {
        /// The rendered label selector.
        selector: String,
        /// The API error (boxed: it would make every volume error larger).
        #[source]
        source: Box<ApiError>,
    },
}

/// The API's selector syntax of `selector`; `None` when it selects nothing (an unset selector,
/// as upstream reads it for this projection).
pub fn selector_string(selector: Option<&LabelSelector>) -> Result<Option<String>, TrustBundleError> {
    let Some(sel) = selector else { return Ok(None) };
    let mut terms: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        terms.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let list = || {
            let mut v = values.clone();
            v.sort();
            v.join(",")
        };
        let term = match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(TrustBundleError::ValuesRequired { operator: e.operator.clone(), key: e.key.clone() });
            }
            "In" => format!("{} in ({})", e.key, list()),
            "NotIn" => format!("{} notin ({})", e.key, list()),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(TrustBundleError::ValuesForbidden { operator: e.operator.clone(), key: e.key.clone() });
            }
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => return Err(TrustBundleError::UnknownOperator(other.to_string())),
        };
        terms.push((e.key.clone(), term));
    }
    terms.sort();
    let s = terms.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",");
    if s.len() > MAX_LABEL_SELECTOR_LEN {
        return Err(TrustBundleError::SelectorTooLong(s.len()));
    }
    Ok(Some(s))
}

/// The certificates of `bundles` (PEM text each), each once, as `CERTIFICATE` blocks in the
/// order of their DER bytes. Upstream shuffles them instead, so no consumer comes to rely on an
/// order; a stable order keeps the volume from being rewritten at every sync.
pub fn normalize<'a>(bundles: impl IntoIterator<Item = &'a str>) -> Result<Vec<u8>, TrustBundleError> {
    let mut anchors = BTreeSet::new();
    for text in bundles {
        for block in pem::parse_many(text).map_err(TrustBundleError::Pem)? {
            anchors.insert(block.into_contents());
        }
    }
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(anchors.into_iter().flat_map(|der| pem::encode_config(&pem::Pem::new("CERTIFICATE", der), config).into_bytes()).collect())
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Signer { signer: String, selector: String },
}

/// When the API server answered, and the anchors (`None`: no bundle matched).
type Answer = (SystemTime, Option<Vec<u8>>);

/// Trust anchors from the API server, each answer kept for [`CACHE_TTL`].
#[derive(Default)]
pub struct TrustBundles {
    cache: Mutex<HashMap<Key, Answer>>,
}

impl TrustBundles {
    /// The file contents of projection `src`: the anchors, empty when an `optional` source
    /// finds nothing, an error otherwise (upstream's wording).
    pub async fn anchors(
        &self,
        api: Option<&dyn VolumeApi>,
        src: &ClusterTrustBundleProjection,
        now: SystemTime,
    ) -> Result<Vec<u8>, TrustBundleError> {
        let optional = src.optional.unwrap_or(false);
        let key = match (&src.name, &src.signer_name) {
            (Some(name), _) => Key::Name(name.clone()),
            (None, Some(signer)) => match selector_string(src.label_selector.as_ref())? {
                Some(selector) => Key::Signer { signer: signer.clone(), selector },
                // An unset selector matches no bundle.
                None if optional => return Ok(Vec::new()),
                None => return Err(TrustBundleError::NoMatch),
            },
            (None, None) => return Err(TrustBundleError::NoNameOrSigner),
        };
        let Some(api) = api else {
            return Err(TrustBundleError::StaticMode);
        };
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(at, _)| now.duration_since(*at).is_ok_and(|age| age < CACHE_TTL))
            .map(|(_, a)| a.clone());
        // What the API server holds (`None`: no such bundle), cached as such: whether a source
        // may do without it is its own business, decided after.
        let found = match cached {
            Some(found) => found,
            None => {
                let found = self.fetch(api, &key).await?;
                self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), (now, found.clone()));
                found
            }
        };
        match (found, &key) {
            (Some(anchors), _) => Ok(anchors),
            (None, _) if optional => Ok(Vec::new()),
            (None, Key::Name(name)) => Err(TrustBundleError::NotFound(name.clone())),
            (None, Key::Signer { .. }) => Err(TrustBundleError::NoMatch),
        }
    }

    /// The normalized anchors for `key`, `None` when no bundle matches.
    async fn fetch(&self, api: &dyn VolumeApi, key: &Key) -> Result<Option<Vec<u8>>, TrustBundleError> {
        match key {
            Key::Name(name) => match api.get_cluster_trust_bundle(name).await.map_err(|e| TrustBundleError::Get(Box::new(e)))? {
                Some(ctb) => normalize([ctb.spec.trust_bundle.as_str()]).map(Some),
                None => Ok(None),
            },
            Key::Signer { signer, selector } => {
                let list = api
                    .list_cluster_trust_bundles(signer, selector)
                    .await
                    .map_err(|e| TrustBundleError::List { selector: selector.clone(), source: Box::new(e) })?;
                // The API server filters by signer already; a bundle of another signer is ignored.
                let bundles: Vec<&str> = list
                    .iter()
                    .filter(|c| c.spec.signer_name.as_deref() == Some(signer.as_str()))
                    .map(|c| c.spec.trust_bundle.as_str())
                    .collect();
                if bundles.is_empty() { Ok(None) } else { normalize(bundles).map(Some) }
            }
        }
    }
}

#[cfg(test)]
#[path = "trust_bundles_tests.rs"]
mod tests;
