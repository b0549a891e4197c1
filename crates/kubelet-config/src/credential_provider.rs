//! `--image-credential-provider-config`: the `CredentialProviderConfig`
//! (`kubelet.config.k8s.io/v1`) naming the exec plugins that give registry credentials
//! (upstream `pkg/credentialprovider/plugin/config.go`), read and validated here; the kubelet
//! runs them.

use std::path::Path;
use std::time::Duration;

use component_config::decode;
use serde::Deserialize;

use crate::error::Origin;

/// The credential provider configuration, as `component-config` names it in messages.
#[derive(Debug)]
pub enum CredentialProviderFile {}

impl component_config::Component for CredentialProviderFile {
    const NAME: &'static str = "credential provider";
    const API_VERSION: &'static str = "kubelet.config.k8s.io/v1";
    const KIND: &'static str = "CredentialProviderConfig";

    fn unknown_command(arg: &str) -> String {
        format!("unknown command {arg}")
    }
}

/// Why the file is refused; names the file and field.
pub type CredentialProviderError = component_config::ConfigError<CredentialProviderFile>;

/// Earlier versions of the file upstream still reads.
const OLDER_API_VERSIONS: &[&str] = &["kubelet.config.k8s.io/v1beta1", "kubelet.config.k8s.io/v1alpha1"];

/// The plugin request/response API versions a provider may name.
pub const PLUGIN_API_VERSIONS: &[&str] = &["credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1beta1", "credentialprovider.kubelet.k8s.io/v1alpha1"];

/// One environment variable for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecEnvVar {
    pub name: String,
    pub value: String,
}

/// One exec plugin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProvider {
    /// The binary's name in `--image-credential-provider-bin-dir`.
    pub name: String,
    /// Images (globs as the keyring matches them) the plugin is asked about.
    pub match_images: Vec<String>,
    #[serde(default, with = "crate::go_duration::serde_opt")]
    pub default_cache_duration: Option<Duration>,
    /// The request/response version (`credentialprovider.kubelet.k8s.io/v1`).
    pub api_version: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<ExecEnvVar>,
    /// Service account token mode (1.33+); refused here.
    #[serde(default)]
    pub token_attributes: Option<serde_json::Value>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderConfig {
    /// Type metadata (checked on load; read here so it is not reported as unknown).
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub providers: Vec<CredentialProvider>,
}

/// Reads and validates the file.
pub fn load(path: &Path) -> Result<CredentialProviderConfig, CredentialProviderError> {
    let origin = Origin::File(path.to_path_buf());
    let bytes = decode::read_file::<CredentialProviderFile>(path)?;
    let mut map = decode::strip_nulls(decode::parse_mapping::<CredentialProviderFile>(&origin, &bytes)?);
    // Upstream still reads v1beta1 and v1alpha1 files (same fields for the exec providers).
    if let Some(v) = map.get_mut("apiVersion").filter(|v| OLDER_API_VERSIONS.iter().any(|o| v.as_str() == Some(o))) {
        *v = serde_json::Value::String("kubelet.config.k8s.io/v1".into());
    }
    decode::check_type_meta::<CredentialProviderFile>(&origin, &map)?;
    let (config, _unknown): (CredentialProviderConfig, _) = decode::decode_typed(&origin, map)?;
    validate(&config).map_err(|(field, message)| CredentialProviderError::Invalid { origin, field, message })?;
    Ok(config)
}

/// Upstream's `validateCredentialProviderConfig`.
fn validate(c: &CredentialProviderConfig) -> Result<(), (String, String)> {
    if c.providers.is_empty() {
        return Err(("providers".into(), "at least 1 item in plugins is required".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, p) in c.providers.iter().enumerate() {
        let f = |name: &str| format!("providers[{i}].{name}");
        if p.name.is_empty() {
            return Err((f("name"), "name is required".into()));
        }
        if p.name.contains(['/', ' ']) || p.name == "." || p.name == ".." {
            return Err((f("name"), format!("{:?}: must not contain '/' or ' ', nor be '.' or '..'", p.name)));
        }
        if !seen.insert(p.name.as_str()) {
            return Err((f("name"), format!("duplicate name {:?}", p.name)));
        }
        if p.match_images.is_empty() {
            return Err((f("matchImages"), "at least 1 item in matchImages is required".into()));
        }
        if let Some(bad) = p.match_images.iter().find(|m| m.is_empty() || m.contains("://") || m.contains(char::is_whitespace)) {
            return Err((f("matchImages"), format!("{bad:?}: match image is invalid")));
        }
        if p.default_cache_duration.is_none() {
            return Err((f("defaultCacheDuration"), "defaultCacheDuration is required".into()));
        }
        if p.api_version.is_empty() {
            return Err((f("apiVersion"), "apiVersion is required".into()));
        }
        if !PLUGIN_API_VERSIONS.contains(&p.api_version.as_str()) {
            return Err((f("apiVersion"), format!("{:?}: supported values: {}", p.api_version, PLUGIN_API_VERSIONS.join(", "))));
        }
        if p.token_attributes.is_some() {
            return Err((f("tokenAttributes"), "service account token credential providers are not supported by this kubelet".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<CredentialProviderConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credential-provider.yaml");
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|e| e.to_string())
    }

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n";

    #[test]
    fn a_provider_is_read_and_bad_ones_are_named() {
        let c = load_text(&format!("{HEAD}providers:\n- name: test-plugin\n  matchImages: [\"*.example.com\", \"127.0.0.1:5001/knode\"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: [get]\n  env: [{{name: A, value: b}}]\n")).unwrap();
        let p = &c.providers[0];
        assert_eq!((p.name.as_str(), p.default_cache_duration, p.args.as_slice()), ("test-plugin", Some(Duration::from_secs(600)), ["get".to_string()].as_slice()));
        assert_eq!(p.env, [ExecEnvVar { name: "A".into(), value: "b".into() }]);
        let err = |body: &str| load_text(&format!("{HEAD}{body}")).unwrap_err();
        assert!(err("providers: []\n").contains("providers: at least 1 item"));
        assert!(err("providers:\n- {name: a/b, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n").contains("providers[0].name"));
        assert!(err("providers:\n- {name: a, matchImages: [], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n").contains("providers[0].matchImages"));
        assert!(err("providers:\n- {name: a, matchImages: [x], apiVersion: credentialprovider.kubelet.k8s.io/v1}\n").contains("defaultCacheDuration is required"));
        assert!(err("providers:\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: v9}\n").contains("providers[0].apiVersion"));
        assert!(err("providers:\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n").contains("duplicate name"));
        assert!(load_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n").unwrap_err().contains("credential-provider.yaml"));
        let old = load_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\nproviders:\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1beta1}\n");
        assert!(old.is_ok(), "v1beta1 files are still read: {old:?}");
    }
}
