//! `UrlPodSource`: pods from `--manifest-url` (upstream `pkg/kubelet/config/http.go`).
//!
//! The URL is fetched every `check_frequency` with the `--manifest-url-header` headers
//! over http or https (rustls with the ring provider and the system's trust roots). The
//! body is a v1 `Pod` or `PodList` in JSON or YAML. As upstream: an unchanged body sends
//! nothing, an empty body sends an empty set (so the source counts as seen), a failed
//! fetch or a body that does not decode keeps the last good set. Unlike upstream, once a
//! set was delivered the failure is also reported as a [`SourceError`] next to that set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval, timeout};
use tokio_util::sync::CancellationToken;

use crate::manifest::load_static_pods;
use crate::{ManifestError, PodSource, PodUpdate, SourceError, SourceRef};

/// Upstream's client timeout for the manifest URL.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A manifest larger than this is refused rather than buffered.
const MAX_BODY_BYTES: usize = 16 << 20;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Why one poll of the manifest URL failed.
#[derive(Debug, thiserror::Error)]
pub enum UrlSourceError {
    /// The URL or a header could not be put into a request.
    #[error("invalid request for {url}: {reason}")]
    InvalidRequest {
        /// The manifest URL (`--manifest-url`).
        url: String,
        /// Why the request could not be built.
        reason: String,
    },
    /// Connecting or sending failed.
    #[error("{url}: request failed: {reason}")]
    Request {
        /// The manifest URL (`--manifest-url`).
        url: String,
        /// The HTTP client's error.
        reason: String,
    },
    /// No answer within the client timeout.
    #[error("{url}: no response within {0:?}", REQUEST_TIMEOUT)]
    Timeout {
        /// The manifest URL (`--manifest-url`).
        url: String,
    },
    /// The server answered with something other than 200 OK.
    #[error("{url}: {status}")]
    Status {
        /// The manifest URL (`--manifest-url`).
        url: String,
        /// The HTTP status the server answered with.
        status: hyper::StatusCode,
    },
    /// The body was empty.
    #[error("zero-length data received from {url}")]
    EmptyBody {
        /// The manifest URL (`--manifest-url`).
        url: String,
    },
    /// The body is not a usable Pod or PodList.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Polls a manifest URL and sends its pods as [`PodUpdate`]s.
#[derive(Debug, Clone)]
pub struct UrlPodSource {
    url: String,
    headers: BTreeMap<String, Vec<String>>,
    node_name: String,
    check_frequency: Duration,
}

impl UrlPodSource {
    /// A source for `url` sent with `headers`, polled every `check_frequency`.
    pub fn new(url: String, headers: BTreeMap<String, Vec<String>>, node_name: String, check_frequency: Duration) -> Self {
        Self { url, headers, node_name, check_frequency }
    }

    /// Polls until `shutdown` is cancelled or the receiver is dropped.
    pub async fn run(self, tx: mpsc::Sender<PodUpdate>, shutdown: CancellationToken) {
        tracing::info!(url = %self.url, "watching manifest URL");
        let client = build_client();
        let mut ticks = interval(self.check_frequency.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_body: Option<Bytes> = None;
        let mut delivered: Option<PodUpdate> = None;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = self.fetch(&client) => result,
            };
            let update = match result {
                Ok(body) if last_body.as_ref() == Some(&body) => None,
                Ok(body) => {
                    last_body = Some(body.clone());
                    self.decode(&body)
                }
                Err(e) => Some(Err(e)),
            };
            let update = match update {
                None => continue,
                Some(Ok(update)) => {
                    if failures > 0 {
                        tracing::info!(url = %self.url, "successfully read pods from URL");
                    }
                    failures = 0;
                    update
                }
                Some(Err(error)) => {
                    log_failure(&error, failures);
                    failures += 1;
                    let Some(last) = delivered.as_ref() else {
                        continue;
                    };
                    let message = error.to_string();
                    let errors = vec![SourceError { path: self.url.clone(), message }];
                    PodUpdate { errors, ..last.clone() }
                }
            };
            if delivered.as_ref() == Some(&update) {
                continue;
            }
            delivered = Some(update.clone());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                sent = tx.send(update) => if sent.is_err() { return },
            }
        }
    }

    /// An update for a new body; an empty body is an empty set plus its error.
    fn decode(&self, body: &Bytes) -> Option<Result<PodUpdate, UrlSourceError>> {
        let source = SourceRef::Url(self.url.clone());
        if body.is_empty() {
            let error = UrlSourceError::EmptyBody { url: self.url.clone() };
            log_failure(&error, 0);
            let errors = vec![SourceError { path: self.url.clone(), message: error.to_string() }];
            return Some(Ok(PodUpdate { source: PodSource::Http, pods: Vec::new(), errors }));
        }
        let pods: Result<Vec<Pod>, _> = load_static_pods(body, &self.node_name, &source);
        Some(
            pods.map(|pods| PodUpdate { source: PodSource::Http, pods: pods.into_iter().map(Arc::new).collect(), errors: Vec::new() })
                .map_err(Into::into),
        )
    }

    async fn fetch(&self, client: &Result<HttpsClient, String>) -> Result<Bytes, UrlSourceError> {
        let url = self.url.clone();
        let invalid = |reason: String| UrlSourceError::InvalidRequest { url: url.clone(), reason };
        let client = client.as_ref().map_err(|e| invalid(e.clone()))?;
        let mut request = hyper::Request::get(self.url.as_str());
        for (name, values) in &self.headers {
            for value in values {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let request = request.body(Empty::new()).map_err(|e| invalid(e.to_string()))?;
        let exchange = async {
            let response =
                client.request(request).await.map_err(|e| UrlSourceError::Request { url: url.clone(), reason: error_chain(&e) })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await;
            let body = body.map_err(|e| UrlSourceError::Request { url: url.clone(), reason: e.to_string() })?;
            if status != hyper::StatusCode::OK {
                return Err(UrlSourceError::Status { url: url.clone(), status });
            }
            Ok(body.to_bytes())
        };
        timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| UrlSourceError::Timeout { url: url.clone() })?
    }
}

/// Upstream logs the first three failures loudly and the rest at a low level.
fn log_failure(error: &UrlSourceError, failures: u32) {
    match failures {
        0..3 => tracing::error!("failed to read pods from URL: {error}"),
        3 => tracing::error!("failed to read pods from URL, reducing verbosity of this message: {error}"),
        _ => tracing::debug!("failed to read pods from URL: {error}"),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// An http+https client on rustls/ring; without system roots https fails per request.
fn build_client() -> Result<HttpsClient, String> {
    let provider = || rustls::crypto::ring::default_provider();
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider()) {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "no system trust roots; https manifest URLs will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider().into())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}
