//! Image credential provider plugins (upstream `pkg/credentialprovider/plugin`): for an image
//! a provider's `matchImages` match, the binary `<bin dir>/<name>` is run with `args` and
//! `env`, given a `CredentialProviderRequest` (`{"image": ...}`) on stdin, and must answer a
//! `CredentialProviderResponse` of the same `apiVersion` within a minute. Its `auth` entries
//! (registry location → username/password) are matched like pull secrets' and tried after
//! them. Answers are cached per `cacheKeyType` (`Image`, `Registry` or `Global`) for
//! `cacheDuration` (else the provider's `defaultCacheDuration`; `0s`: not cached). A plugin
//! that fails is logged and the pull goes on without its credentials, as upstream.
//!
//! A provider with `tokenAttributes` (KEP-4412, feature gate
//! `KubeletServiceAccountTokenForCredentialProviders`, beta and on) is given a token of the
//! pod's service account for its audience, bound to the pod, and the service account's
//! annotations the provider names ([`ServiceAccountTokens`] reads them from the API server).
//! It is skipped for a pod without a service account when it requires one, and when the
//! service account lacks a required annotation. Its answers are cached per service account
//! (and per token with `cacheType: Token`), and the credentials are recorded with the service
//! account (`kubernetesServiceAccounts` in the pull records). With another `cacheType` than
//! `Token`, an answer whose password is the token itself is refused.
//!
//! Metrics as upstream's: `kubelet_credential_provider_plugin_duration` and `_errors_total`
//! per plugin run, and `kubelet_credential_provider_config_info{hash}`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubelet_config::credential_provider::{CredentialProvider, CredentialProviderConfig, TokenAttributes};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::credentials::{DockerKeyring, repository};
use super::pull_records::ServiceAccountCoordinates;

/// How long a plugin may run (upstream's).
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the plugins cannot be used; names the file or plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// `--image-credential-provider-config` was given without `--image-credential-provider-bin-dir`.
    #[error("--image-credential-provider-bin-dir must be set with --image-credential-provider-config")]
    NoBinDir,
    /// The `CredentialProviderConfig` file could not be read or is invalid.
    #[error("{0}")]
    Config(#[from] kubelet_config::credential_provider::CredentialProviderError),
    /// A provider has `tokenAttributes` while the feature gate
    /// `KubeletServiceAccountTokenForCredentialProviders` is off.
    #[error(
        "{path}: providers[{index}].tokenAttributes: tokenAttributes is not supported when KubeletServiceAccountTokenForCredentialProviders feature gate is disabled"
    )]
    TokensDisabled {
        /// The `CredentialProviderConfig` file.
        path: PathBuf,
        /// The offending provider's index in `providers`.
        index: usize,
    },
    /// A provider's binary is not a file in the plugin bin dir.
    #[error("credential provider {name}: plugin binary executable {path} did not exist")]
    Missing {
        /// The provider's `name` (its binary's file name).
        name: String,
        /// Where its binary was looked for (`<bin dir>/<name>`).
        path: PathBuf,
    },
    /// The plugin could not be run, failed, or did not answer within the timeout.
    #[error("error execing credential provider plugin {name} for image {image}: {message}")]
    Exec {
        /// The provider's `name`.
        name: String,
        /// The image repository (without tag or digest) it was asked about.
        image: String,
        /// What went wrong.
        message: String,
    },
    /// The plugin's `CredentialProviderResponse` is undecodable or invalid (wrong `apiVersion`
    /// or `kind`, bad `cacheKeyType`, the token given back as a password).
    #[error("credential provider plugin {name}: {message}")]
    Response {
        /// The provider's `name`.
        name: String,
        /// What is wrong with the answer (never the credentials themselves).
        message: String,
    },
    /// The pod's service account could not be got for a service-account provider.
    #[error("credential provider plugin {name}: failed to get service account: {source}")]
    ServiceAccount {
        /// The provider's `name`.
        name: String,
        /// Why it could not be got.
        #[source]
        source: ServiceAccountTokenError,
    },
    /// A token of the pod's service account could not be got for a service-account provider.
    #[error("credential provider plugin {name}: failed to get service account token: {source}")]
    ServiceAccountToken {
        /// The provider's `name`.
        name: String,
        /// Why it could not be got.
        #[source]
        source: ServiceAccountTokenError,
    },
}

/// Why a service account or one of its tokens could not be got ([`ServiceAccountTokens`]).
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountTokenError {
    /// The API server could not give the ServiceAccount object.
    #[error(transparent)]
    Api(#[from] kubelet_types::api_error::ApiError),
    /// The pod's service account does not exist (its name).
    #[error("serviceaccount {0:?} not found")]
    NotFound(String),
    /// The token could not be requested.
    #[error(transparent)]
    Token(#[from] crate::volumemanager::token::TokenError),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    cache_key_type: String,
    #[serde(default, with = "kubelet_config::go_duration::serde_opt")]
    cache_duration: Option<Duration>,
    #[serde(default)]
    auth: BTreeMap<String, AuthEntry>,
}

/// Registry location → (username, password).
type Auth = Vec<(String, String, String)>;

/// What a cached answer is found by: provider, answer's cache key, service account key.
type CacheKey = (String, String, String);

/// The pod an image is pulled for, as service-account providers need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullingPod {
    /// The pod's namespace (`metadata.namespace`), also its service account's.
    pub namespace: String,
    /// The pod's name (`metadata.name`), which the bound token names.
    pub name: String,
    /// The pod's UID (`metadata.uid`), which the bound token names.
    pub uid: String,
    /// `spec.serviceAccountName` as the pod gives it (empty: none).
    pub service_account: String,
}

/// A service account as service-account providers read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    /// The service account's UID (`metadata.uid`), part of the cache key and the pull records.
    pub uid: String,
    /// The service account's annotations; providers are given those their
    /// `requiredServiceAccountAnnotationKeys`/`optionalServiceAccountAnnotationKeys` name.
    pub annotations: BTreeMap<String, String>,
}

/// Service accounts and their tokens (the API server's, in cluster mode).
#[async_trait::async_trait]
pub trait ServiceAccountTokens: Send + Sync + 'static {
    /// Service account `namespace/name`; `None` when it does not exist.
    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccountInfo>, ServiceAccountTokenError>;
    /// A token of the pod's service account (whose UID is `service_account_uid`) for
    /// `audience`, bound to the pod.
    async fn token(&self, pod: &PullingPod, service_account_uid: &str, audience: &str) -> Result<String, ServiceAccountTokenError>;
}

/// What a service-account provider is given for one pod, and what its answers are cached by.
struct ServiceAccountRequest {
    token: String,
    annotations: BTreeMap<String, String>,
    /// The service account's part of the cache key (with the token's hash for `cacheType: Token`).
    cache_key: String,
    coordinates: Option<ServiceAccountCoordinates>,
}

/// The configured plugins and their cached answers.
pub struct CredentialPlugins {
    providers: Vec<CredentialProvider>,
    bin_dir: PathBuf,
    /// (provider, cache key, service account key) → (answer, expiry).
    cache: Mutex<HashMap<CacheKey, (Auth, Instant)>>,
    tokens: Option<Arc<dyn ServiceAccountTokens>>,
    metrics: Option<Arc<crate::metrics::KubeletMetrics>>,
    /// `sha256:<hex>` of the configuration file, for `kubelet_credential_provider_config_info`.
    config_hash: String,
}

/// The cache key of an answer: the image, its registry (first path component) or everything.
fn cache_key(kind: &str, image: &str) -> Option<String> {
    match kind {
        "Image" => Some(image.to_string()),
        "Registry" => Some(image.split('/').next().unwrap_or_default().to_string()),
        "Global" => Some("<global>".to_string()),
        _ => None,
    }
}

/// Upstream's hash of the configuration: SHA-256 over each file's length (8 bytes, big-endian)
/// and bytes.
pub fn config_hash(files: &[&[u8]]) -> String {
    let mut framed = Vec::new();
    for bytes in files {
        framed.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        framed.extend_from_slice(bytes);
    }
    format!("sha256:{}", super::pull_records::sha256_hex(&framed))
}

impl CredentialPlugins {
    /// From the flags; every provider's binary must exist. `service_account_tokens` is the
    /// feature gate `KubeletServiceAccountTokenForCredentialProviders`.
    pub fn load(config: &Path, bin_dir: Option<&Path>, service_account_tokens: bool) -> Result<Self, PluginError> {
        let bin_dir = bin_dir.ok_or(PluginError::NoBinDir)?;
        // Read once: the hash is of the very bytes parsed.
        let bytes = kubelet_config::credential_provider::read(config)?;
        let CredentialProviderConfig { providers, .. } = kubelet_config::credential_provider::parse_bytes(config, &bytes)?;
        if !service_account_tokens && let Some(index) = providers.iter().position(|p| p.token_attributes.is_some()) {
            return Err(PluginError::TokensDisabled { path: config.into(), index });
        }
        for p in &providers {
            let path = bin_dir.join(&p.name);
            if !path.is_file() {
                return Err(PluginError::Missing { name: p.name.clone(), path });
            }
        }
        let config_hash = config_hash(&[&bytes]);
        Ok(Self { providers, bin_dir: bin_dir.into(), cache: Mutex::default(), tokens: None, metrics: None, config_hash })
    }

    /// Where service-account providers get service accounts and tokens; without it they are
    /// skipped (no API server).
    pub fn with_tokens(mut self, tokens: Arc<dyn ServiceAccountTokens>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Records plugin runs, and the configuration's hash.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::KubeletMetrics>) -> Self {
        metrics.credential_provider_config_hash.get_or_init(|| self.config_hash.clone());
        self.metrics = Some(metrics);
        self
    }

    /// The plugins' credentials for `image` pulled for `pod`, as a keyring to try after the
    /// pull secrets.
    pub async fn keyring(&self, image: &str, pod: Option<&PullingPod>) -> DockerKeyring {
        let repo = repository(image);
        let mut keyring = DockerKeyring::default();
        for p in self.providers.iter().filter(|p| p.match_images.iter().any(|m| DockerKeyring::matches(m, &repo))) {
            match self.provide(p, &repo, pod).await {
                Ok(Some((auth, account))) => keyring.add_entries(auth, account.as_ref()),
                Ok(None) => {}
                Err(e) => tracing::error!("failed getting credential from external registry credential provider: {e}"),
            }
        }
        keyring
    }

    /// What a service-account provider is given for `pod`; `None`: the provider is skipped.
    async fn service_account_request(
        &self,
        p: &CredentialProvider,
        t: &TokenAttributes,
        pod: Option<&PullingPod>,
    ) -> Result<Option<ServiceAccountRequest>, PluginError> {
        let sa_err = |source| PluginError::ServiceAccount { name: p.name.clone(), source };
        let Some(pod) = pod.filter(|pod| !pod.service_account.is_empty()) else {
            if t.require_service_account == Some(true) {
                tracing::debug!(plugin = %p.name, "the pod has no service account and the plugin requires one; skipping it");
                return Ok(None);
            }
            return Ok(Some(ServiceAccountRequest {
                token: String::new(),
                annotations: BTreeMap::new(),
                cache_key: String::new(),
                coordinates: None,
            }));
        };
        let Some(tokens) = &self.tokens else {
            tracing::debug!(plugin = %p.name, "no API server to get service account tokens from; skipping the plugin");
            return Ok(None);
        };
        let account = tokens
            .service_account(&pod.namespace, &pod.service_account)
            .await
            .map_err(sa_err)?
            .ok_or_else(|| sa_err(ServiceAccountTokenError::NotFound(pod.service_account.clone())))?;
        let mut annotations = BTreeMap::new();
        for key in &t.required_service_account_annotation_keys {
            let Some(v) = account.annotations.get(key) else {
                tracing::debug!(plugin = %p.name, service_account = %pod.service_account, "required annotation {key} not found; skipping the plugin");
                return Ok(None);
            };
            annotations.insert(key.clone(), v.clone());
        }
        for key in &t.optional_service_account_annotation_keys {
            if let Some(v) = account.annotations.get(key) {
                annotations.insert(key.clone(), v.clone());
            }
        }
        let token = tokens
            .token(pod, &account.uid, &t.service_account_token_audience)
            .await
            .map_err(|source| PluginError::ServiceAccountToken { name: p.name.clone(), source })?;
        let mut cache_key = serde_json::json!([pod.namespace, pod.service_account, account.uid, annotations]).to_string();
        if t.cache_type == "Token" {
            cache_key.push_str(&format!(" token {}", super::pull_records::sha256_hex(token.as_bytes())));
        }
        let coordinates =
            Some(ServiceAccountCoordinates { uid: account.uid, namespace: pod.namespace.clone(), name: pod.service_account.clone() });
        Ok(Some(ServiceAccountRequest { token, annotations, cache_key, coordinates }))
    }

    /// The provider's answer for `image`, and the service account it was given for; `None`
    /// when the provider is skipped for this pod.
    async fn provide(
        &self,
        p: &CredentialProvider,
        image: &str,
        pod: Option<&PullingPod>,
    ) -> Result<Option<(Auth, Option<ServiceAccountCoordinates>)>, PluginError> {
        let account = match &p.token_attributes {
            Some(t) => match self.service_account_request(p, t, pod).await? {
                Some(request) => Some(request),
                None => return Ok(None),
            },
            None => None,
        };
        let sa_key = account.as_ref().map(|a| a.cache_key.clone()).unwrap_or_default();
        let coordinates = account.as_ref().and_then(|a| a.coordinates.clone());
        let now = Instant::now();
        {
            let mut cache = self.cache.lock().expect("credential cache lock");
            cache.retain(|_, (_, expires)| *expires > now);
            for kind in ["Image", "Registry", "Global"] {
                if let Some(key) = cache_key(kind, image)
                    && let Some((auth, _)) = cache.get(&(p.name.clone(), key, sa_key.clone()))
                {
                    return Ok(Some((auth.clone(), coordinates)));
                }
            }
        }
        let response = self.exec(p, image, account.as_ref()).await?;
        let response_err = |message: String| PluginError::Response { name: p.name.clone(), message };
        if response.api_version != p.api_version {
            return Err(response_err(format!(
                "apiVersion from credential plugin response did not match expected apiVersion:{}, actual apiVersion:{}",
                p.api_version, response.api_version
            )));
        }
        if response.kind != "CredentialProviderResponse" {
            return Err(response_err(format!("failed to decode CredentialProviderResponse, unexpected Kind: {:?}", response.kind)));
        }
        let key = cache_key(&response.cache_key_type, image).ok_or_else(|| {
            response_err(format!("credential provider plugin did not return a valid cacheKeyType: {}", response.cache_key_type))
        })?;
        if let (Some(a), Some(t)) = (&account, &p.token_attributes)
            && !a.token.is_empty()
            && t.cache_type != "Token"
            && response.auth.values().any(|e| e.password == a.token)
        {
            return Err(response_err("credential provider plugin returned the service account token as the password which is not allowed when service account cache type is not set to 'Token'".into()));
        }
        let auth: Auth = response.auth.into_iter().map(|(location, a)| (location, a.username, a.password)).collect();
        let duration = response.cache_duration.or(p.default_cache_duration).unwrap_or_default();
        if !duration.is_zero() {
            self.cache.lock().expect("credential cache lock").insert((p.name.clone(), key, sa_key), (auth.clone(), now + duration));
        }
        Ok(Some((auth, coordinates)))
    }

    /// Runs the plugin once, timed and counted in the metrics.
    async fn exec(&self, p: &CredentialProvider, image: &str, account: Option<&ServiceAccountRequest>) -> Result<Response, PluginError> {
        let started = Instant::now();
        let result = self.run_plugin(p, image, account).await;
        if let Some(m) = &self.metrics {
            m.credential_provider_plugin_duration.observe(&[&p.name], started.elapsed().as_secs_f64());
            if matches!(result, Err(PluginError::Exec { .. })) {
                m.credential_provider_plugin_errors.inc(&[&p.name]);
            }
        }
        let out = result?;
        // Without the values serde would quote: the answer holds credentials (upstream does
        // not wrap this error at all).
        serde_json::from_slice(&out).map_err(|e| PluginError::Response {
            name: p.name.clone(),
            message: format!("error decoding credential provider plugin response from stdout: {}", super::credentials::without_values(&e)),
        })
    }

    /// The plugin's standard output.
    async fn run_plugin(
        &self,
        p: &CredentialProvider,
        image: &str,
        account: Option<&ServiceAccountRequest>,
    ) -> Result<Vec<u8>, PluginError> {
        let exec_err = |message: String| PluginError::Exec { name: p.name.clone(), image: image.into(), message };
        let mut request = serde_json::json!({"kind": "CredentialProviderRequest", "apiVersion": p.api_version, "image": image});
        if let Some(a) = account {
            if !a.token.is_empty() {
                request["serviceAccountToken"] = a.token.clone().into();
            }
            if !a.annotations.is_empty() {
                request["serviceAccountAnnotations"] = serde_json::json!(a.annotations);
            }
        }
        let mut child = tokio::process::Command::new(self.bin_dir.join(&p.name))
            .args(&p.args)
            .envs(p.env.iter().map(|e| (e.name.clone(), e.value.clone())))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| exec_err(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin may exit without reading its request; as Go's exec, that is not an
            // error of its own (its exit status says how it went).
            match stdin.write_all(request.to_string().as_bytes()).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(exec_err(e.to_string())),
                _ => {}
            }
        }
        let out = tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| exec_err(format!("timed out after {PLUGIN_TIMEOUT:?}")))?
            .map_err(|e| exec_err(e.to_string()))?;
        if !out.status.success() {
            return Err(exec_err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(dir: &Path, script: &str, cache: &str) -> CredentialPlugins {
        plugins_with(dir, script, cache, "")
    }

    fn plugins_with(dir: &Path, script: &str, cache: &str, extra: &str) -> CredentialPlugins {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let plugin = bin.join("test-plugin");
        std::fs::write(&plugin, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let config = dir.join("config.yaml");
        std::fs::write(&config, format!("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: test-plugin\n  matchImages: [\"*.example.com\"]\n  defaultCacheDuration: {cache}\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  env: [{{name: OUT, value: {}}}]\n{extra}", dir.join("calls").display())).unwrap();
        CredentialPlugins::load(&config, Some(&bin), true).unwrap()
    }

    const ANSWER: &str = r#"cat >> "$OUT"; echo; echo '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","auth":{"*.example.com":{"username":"u","password":"p"}}}'"#;

    #[tokio::test]
    async fn matching_images_get_the_plugins_answer_cached_by_registry() {
        let dir = tempfile::tempdir().unwrap();
        let p = plugins(dir.path(), ANSWER, "1h");
        let creds = p.keyring("r.example.com/team/app:1", None).await.lookup("r.example.com/team/app:1");
        assert_eq!((creds[0].username.as_str(), creds[0].password.as_str()), ("u", "p"));
        assert!(p.keyring("quay.io/app", None).await.is_empty(), "not matched: not asked");
        p.keyring("r.example.com/other", None).await;
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 1, "the second image of the registry came from the cache: {calls}");
        assert!(
            calls.contains(r#""image":"r.example.com/team/app""#) && calls.contains(r#""kind":"CredentialProviderRequest""#),
            "{calls}"
        );
    }

    #[tokio::test]
    async fn failing_and_wrong_plugins_give_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = plugins(dir.path(), "echo nope >&2; exit 3", "0s");
        assert!(p.keyring("r.example.com/app", None).await.is_empty());
        let err = p.provide(&p.providers[0], "r.example.com/app", None).await.unwrap_err().to_string();
        assert!(
            err.starts_with("error execing credential provider plugin test-plugin for image r.example.com/app: ") && err.contains("nope"),
            "{err}"
        );
        let p = plugins(
            dir.path(),
            r#"echo '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","cacheKeyType":"Image"}'"#,
            "0s",
        );
        assert!(
            p.provide(&p.providers[0], "r.example.com/app", None)
                .await
                .unwrap_err()
                .to_string()
                .contains("did not match expected apiVersion")
        );
        let missing = CredentialPlugins::load(&dir.path().join("config.yaml"), Some(&dir.path().join("nowhere")), true).err().unwrap();
        assert!(missing.to_string().contains("plugin binary executable"), "{missing}");
    }

    struct Accounts;

    #[async_trait::async_trait]
    impl ServiceAccountTokens for Accounts {
        async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccountInfo>, ServiceAccountTokenError> {
            let annotations = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Ok(match (namespace, name) {
                ("team", "puller") => Some(ServiceAccountInfo {
                    uid: "sa-1".into(),
                    annotations: annotations(&[("example.com/role", "r"), ("example.com/tier", "t"), ("other", "x")]),
                }),
                ("team", "bare") => Some(ServiceAccountInfo { uid: "sa-2".into(), annotations: BTreeMap::new() }),
                _ => None,
            })
        }
        async fn token(&self, pod: &PullingPod, _service_account_uid: &str, audience: &str) -> Result<String, ServiceAccountTokenError> {
            Ok(format!("token-of-{}-for-{audience}", pod.name))
        }
    }

    const TOKEN_ATTRIBUTES: &str = "  tokenAttributes: {serviceAccountTokenAudience: registry.example, cacheType: ServiceAccount, requireServiceAccount: true, requiredServiceAccountAnnotationKeys: [example.com/role], optionalServiceAccountAnnotationKeys: [example.com/tier]}\n";

    fn pod(name: &str, service_account: &str) -> PullingPod {
        PullingPod { namespace: "team".into(), name: name.into(), uid: format!("uid-{name}"), service_account: service_account.into() }
    }

    #[tokio::test]
    async fn service_account_providers_get_the_pods_token_and_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(crate::metrics::KubeletMetrics::new());
        let p = plugins_with(dir.path(), ANSWER, "1h", TOKEN_ATTRIBUTES).with_tokens(Arc::new(Accounts)).with_metrics(metrics.clone());
        let creds = p.keyring("r.example.com/app:1", Some(&pod("a", "puller"))).await.lookup_credentials("r.example.com/app:1");
        let account = ServiceAccountCoordinates { uid: "sa-1".into(), namespace: "team".into(), name: "puller".into() };
        assert_eq!(creds[0].source, Some(super::super::credentials::CredentialSource::ServiceAccount(account)));
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert!(calls.contains(r#""serviceAccountToken":"token-of-a-for-registry.example""#), "{calls}");
        assert!(
            calls.contains(r#""serviceAccountAnnotations":{"example.com/role":"r","example.com/tier":"t"}"#),
            "only the named annotations: {calls}"
        );
        p.keyring("r.example.com/app:1", Some(&pod("b", "puller"))).await;
        assert!(p.keyring("r.example.com/app:1", Some(&pod("c", ""))).await.is_empty(), "no service account: skipped, as it requires one");
        assert!(p.keyring("r.example.com/app:1", Some(&pod("d", "bare"))).await.is_empty(), "a required annotation missing: skipped");
        assert!(p.keyring("r.example.com/app:1", Some(&pod("e", "gone"))).await.is_empty(), "an absent service account gives nothing");
        let err = p.provide(&p.providers[0], "r.example.com/app", Some(&pod("e", "gone"))).await.unwrap_err();
        assert!(
            matches!(&err, PluginError::ServiceAccount { source: ServiceAccountTokenError::NotFound(sa), .. } if sa == "gone"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "credential provider plugin test-plugin: failed to get service account: serviceaccount \"gone\" not found"
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 1, "the second pod of the service account came from the cache: {calls}");
        assert_eq!(metrics.credential_provider_plugin_duration.count(&["test-plugin"]), 1);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("kubelet_credential_provider_config_info{hash=\"sha256:"), "{out}");
    }

    #[tokio::test]
    async fn a_plugin_may_not_hand_the_token_back_unless_answers_are_cached_per_token() {
        let dir = tempfile::tempdir().unwrap();
        let echo = r#"echo '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Image","auth":{"*.example.com":{"username":"u","password":"token-of-a-for-registry.example"}}}'"#;
        let p = plugins_with(dir.path(), echo, "1h", TOKEN_ATTRIBUTES).with_tokens(Arc::new(Accounts));
        let err = p.provide(&p.providers[0], "r.example.com/app", Some(&pod("a", "puller"))).await.unwrap_err().to_string();
        assert!(err.contains("returned the service account token as the password"), "{err}");
        let p = plugins_with(dir.path(), echo, "1h", &TOKEN_ATTRIBUTES.replace("cacheType: ServiceAccount", "cacheType: Token"))
            .with_tokens(Arc::new(Accounts));
        assert!(p.provide(&p.providers[0], "r.example.com/app", Some(&pod("a", "puller"))).await.is_ok());
        let gated =
            CredentialPlugins::load(&dir.path().join("config.yaml"), Some(&dir.path().join("bin")), false).err().unwrap().to_string();
        assert!(gated.ends_with("providers[0].tokenAttributes: tokenAttributes is not supported when KubeletServiceAccountTokenForCredentialProviders feature gate is disabled"), "{gated}");
        let metrics = Arc::new(crate::metrics::KubeletMetrics::new());
        let failing = plugins(dir.path(), "exit 1", "0s").with_metrics(metrics.clone());
        failing.keyring("r.example.com/app", None).await;
        assert_eq!(metrics.credential_provider_plugin_errors.get(&["test-plugin"]), 1.0);
    }

    #[test]
    fn a_token_error_keeps_the_token_managers_message() {
        use crate::volumemanager::token::TokenError;
        let source = ServiceAccountTokenError::from(TokenError::NoStatus { namespace: "team".into(), service_account: "puller".into() });
        assert!(matches!(&source, ServiceAccountTokenError::Token(TokenError::NoStatus { .. })), "{source}");
        let err = PluginError::ServiceAccountToken { name: "test-plugin".into(), source };
        assert_eq!(
            err.to_string(),
            "credential provider plugin test-plugin: failed to get service account token: failed to fetch token: \
             serviceaccounts/team/puller/token answered without a status"
        );
    }
}
