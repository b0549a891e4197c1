//! Image credential provider plugins (upstream `pkg/credentialprovider/plugin`): for an image
//! a provider's `matchImages` match, the binary `<bin dir>/<name>` is run with `args` and
//! `env`, given a `CredentialProviderRequest` (`{"image": ...}`) on stdin, and must answer a
//! `CredentialProviderResponse` of the same `apiVersion` within a minute. Its `auth` entries
//! (registry location → username/password) are matched like pull secrets' and tried after
//! them. Answers are cached per `cacheKeyType` (`Image`, `Registry` or `Global`) for
//! `cacheDuration` (else the provider's `defaultCacheDuration`; `0s`: not cached). A plugin
//! that fails is logged and the pull goes on without its credentials, as upstream.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kubelet_config::credential_provider::{CredentialProvider, CredentialProviderConfig};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::credentials::{DockerKeyring, repository};

/// How long a plugin may run (upstream's).
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the plugins cannot be used; names the file or plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("--image-credential-provider-bin-dir must be set with --image-credential-provider-config")]
    NoBinDir,
    #[error("{0}")]
    Config(#[from] kubelet_config::credential_provider::CredentialProviderError),
    #[error("credential provider {name}: plugin binary executable {path} did not exist")]
    Missing { name: String, path: PathBuf },
    #[error("error execing credential provider plugin {name} for image {image}: {message}")]
    Exec { name: String, image: String, message: String },
    #[error("credential provider plugin {name}: {message}")]
    Response { name: String, message: String },
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

/// The configured plugins and their cached answers.
pub struct CredentialPlugins {
    providers: Vec<CredentialProvider>,
    bin_dir: PathBuf,
    /// (provider, cache key) → (answer, expiry).
    cache: Mutex<HashMap<(String, String), (Auth, Instant)>>,
}

/// The cache key of an answer: the image, its registry (first path component) or everything.
fn cache_key(kind: &str, image: &str) -> Option<String> {
    match kind {
        "Image" => Some(image.to_string()),
        "Registry" => Some(image.split('/').next().unwrap_or_default().to_string()),
        "Global" => Some(String::new()),
        _ => None,
    }
}

impl CredentialPlugins {
    /// From the flags; every provider's binary must exist.
    pub fn load(config: &Path, bin_dir: Option<&Path>) -> Result<Self, PluginError> {
        let bin_dir = bin_dir.ok_or(PluginError::NoBinDir)?;
        let CredentialProviderConfig { providers, .. } = kubelet_config::credential_provider::load(config)?;
        for p in &providers {
            let path = bin_dir.join(&p.name);
            if !path.is_file() {
                return Err(PluginError::Missing { name: p.name.clone(), path });
            }
        }
        Ok(Self { providers, bin_dir: bin_dir.into(), cache: Mutex::default() })
    }

    /// The plugins' credentials for `image`, as a keyring to try after the pull secrets.
    pub async fn keyring(&self, image: &str) -> DockerKeyring {
        let repo = repository(image);
        let mut keyring = DockerKeyring::default();
        for p in self.providers.iter().filter(|p| p.match_images.iter().any(|m| DockerKeyring::matches(m, &repo))) {
            match self.provide(p, &repo).await {
                Ok(auth) => keyring.add_entries(auth),
                Err(e) => tracing::error!("failed getting credential from external registry credential provider: {e}"),
            }
        }
        keyring
    }

    async fn provide(&self, p: &CredentialProvider, image: &str) -> Result<Auth, PluginError> {
        let now = Instant::now();
        {
            let mut cache = self.cache.lock().expect("credential cache lock");
            cache.retain(|_, (_, expires)| *expires > now);
            for kind in ["Image", "Registry", "Global"] {
                if let Some(key) = cache_key(kind, image)
                    && let Some((auth, _)) = cache.get(&(p.name.clone(), key))
                {
                    return Ok(auth.clone());
                }
            }
        }
        let response = self.exec(p, image).await?;
        let response_err = |message: String| PluginError::Response { name: p.name.clone(), message };
        if response.api_version != p.api_version {
            return Err(response_err(format!("apiVersion from credential plugin response did not match expected apiVersion:{}, actual apiVersion:{}", p.api_version, response.api_version)));
        }
        if response.kind != "CredentialProviderResponse" {
            return Err(response_err(format!("failed to decode CredentialProviderResponse, unexpected Kind: {:?}", response.kind)));
        }
        let key = cache_key(&response.cache_key_type, image).ok_or_else(|| response_err(format!("credential provider plugin did not return a valid cacheKeyType: {}", response.cache_key_type)))?;
        let auth: Auth = response.auth.into_iter().map(|(location, a)| (location, a.username, a.password)).collect();
        let duration = response.cache_duration.or(p.default_cache_duration).unwrap_or_default();
        if !duration.is_zero() {
            self.cache.lock().expect("credential cache lock").insert((p.name.clone(), key), (auth.clone(), now + duration));
        }
        Ok(auth)
    }

    async fn exec(&self, p: &CredentialProvider, image: &str) -> Result<Response, PluginError> {
        let exec_err = |message: String| PluginError::Exec { name: p.name.clone(), image: image.into(), message };
        let request = serde_json::json!({"kind": "CredentialProviderRequest", "apiVersion": p.api_version, "image": image});
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
        let out = tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output()).await.map_err(|_| exec_err(format!("timed out after {PLUGIN_TIMEOUT:?}")))?.map_err(|e| exec_err(e.to_string()))?;
        if !out.status.success() {
            return Err(exec_err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| PluginError::Response { name: p.name.clone(), message: format!("error decoding credential provider plugin response from stdout: {e}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(dir: &Path, script: &str, cache: &str) -> CredentialPlugins {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let plugin = bin.join("test-plugin");
        std::fs::write(&plugin, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let config = dir.join("config.yaml");
        std::fs::write(&config, format!("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: test-plugin\n  matchImages: [\"*.example.com\"]\n  defaultCacheDuration: {cache}\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  env: [{{name: OUT, value: {}}}]\n", dir.join("calls").display())).unwrap();
        CredentialPlugins::load(&config, Some(&bin)).unwrap()
    }

    const ANSWER: &str = r#"cat >> "$OUT"; echo; echo '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","auth":{"*.example.com":{"username":"u","password":"p"}}}'"#;

    #[tokio::test]
    async fn matching_images_get_the_plugins_answer_cached_by_registry() {
        let dir = tempfile::tempdir().unwrap();
        let p = plugins(dir.path(), ANSWER, "1h");
        let creds = p.keyring("r.example.com/team/app:1").await.lookup("r.example.com/team/app:1");
        assert_eq!((creds[0].username.as_str(), creds[0].password.as_str()), ("u", "p"));
        assert!(p.keyring("quay.io/app").await.is_empty(), "not matched: not asked");
        p.keyring("r.example.com/other").await;
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 1, "the second image of the registry came from the cache: {calls}");
        assert!(calls.contains(r#""image":"r.example.com/team/app""#) && calls.contains(r#""kind":"CredentialProviderRequest""#), "{calls}");
    }

    #[tokio::test]
    async fn failing_and_wrong_plugins_give_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = plugins(dir.path(), "echo nope >&2; exit 3", "0s");
        assert!(p.keyring("r.example.com/app").await.is_empty());
        let err = p.provide(&p.providers[0], "r.example.com/app").await.unwrap_err().to_string();
        assert!(err.starts_with("error execing credential provider plugin test-plugin for image r.example.com/app: ") && err.contains("nope"), "{err}");
        let p = plugins(dir.path(), r#"echo '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","cacheKeyType":"Image"}'"#, "0s");
        assert!(p.provide(&p.providers[0], "r.example.com/app").await.unwrap_err().to_string().contains("did not match expected apiVersion"));
        let missing = CredentialPlugins::load(&dir.path().join("config.yaml"), Some(&dir.path().join("nowhere"))).err().unwrap();
        assert!(missing.to_string().contains("plugin binary executable"), "{missing}");
    }
}
