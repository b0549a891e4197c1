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
pub const PLUGIN_API_VERSIONS: &[&str] =
    &["credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1beta1", "credentialprovider.kubelet.k8s.io/v1alpha1"];

/// One environment variable for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecEnvVar {
    /// Name of the environment variable set for the plugin process.
    pub name: String,
    /// Value of the variable, passed as written.
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
    /// How long the plugin's credentials are cached when its response names no cache duration
    /// (`defaultCacheDuration`, required).
    #[serde(default, with = "crate::go_duration::serde_opt")]
    pub default_cache_duration: Option<Duration>,
    /// The request/response version (`credentialprovider.kubelet.k8s.io/v1`).
    pub api_version: String,
    /// Arguments the plugin binary is run with.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables added to the plugin's environment, which is otherwise the kubelet's.
    #[serde(default)]
    pub env: Vec<ExecEnvVar>,
    /// Service account token mode (KEP-4412): the plugin is given a token of the pod's
    /// service account.
    #[serde(default)]
    pub token_attributes: Option<TokenAttributes>,
}

/// `tokenAttributes` of a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenAttributes {
    /// The audience of the token the plugin is given.
    #[serde(default)]
    pub service_account_token_audience: String,
    /// `Token` (answers cached per token) or `ServiceAccount` (per service account).
    #[serde(default)]
    pub cache_type: String,
    /// Whether the plugin is skipped for a pod without a service account (required).
    #[serde(default)]
    pub require_service_account: Option<bool>,
    /// Annotations the service account must carry; they are passed to the plugin.
    #[serde(default)]
    pub required_service_account_annotation_keys: Vec<String>,
    /// Annotations passed to the plugin when the service account carries them.
    #[serde(default)]
    pub optional_service_account_annotation_keys: Vec<String>,
}

/// The `cacheType` values.
pub const CACHE_TYPES: &[&str] = &["ServiceAccount", "Token"];
/// The only plugin API version that carries tokens.
pub const TOKEN_API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderConfig {
    /// Type metadata (checked on load; read here so it is not reported as unknown).
    #[serde(default)]
    pub api_version: String,
    /// Type metadata: `CredentialProviderConfig` (checked on load).
    #[serde(default)]
    pub kind: String,
    /// The exec plugins, at least one, with unique names.
    pub providers: Vec<CredentialProvider>,
}

/// Reads and validates the file.
pub fn load(path: &Path) -> Result<CredentialProviderConfig, CredentialProviderError> {
    parse_bytes(path, &read(path)?)
}

/// The file's bytes (for [`parse_bytes`], and for the configuration's hash the kubelet reports).
pub fn read(path: &Path) -> Result<Vec<u8>, CredentialProviderError> {
    decode::read_file::<CredentialProviderFile>(path)
}

/// Parses and validates the contents of the file at `path` (named in errors).
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<CredentialProviderConfig, CredentialProviderError> {
    let origin = Origin::File(path.to_path_buf());
    let mut map = decode::strip_nulls(decode::parse_mapping::<CredentialProviderFile>(&origin, bytes)?);
    // Upstream still reads v1beta1 and v1alpha1 files (same fields for the exec providers, but
    // for tokenAttributes, only in v1).
    let mut older = false;
    if let Some(v) = map.get_mut("apiVersion").filter(|v| OLDER_API_VERSIONS.iter().any(|o| v.as_str() == Some(o))) {
        *v = serde_json::Value::String("kubelet.config.k8s.io/v1".into());
        older = true;
    }
    decode::check_type_meta::<CredentialProviderFile>(&origin, &map)?;
    let (config, _unknown): (CredentialProviderConfig, _) = decode::decode_typed(&origin, map)?;
    let invalid = |(field, message)| CredentialProviderError::Invalid { origin: origin.clone(), field, message };
    if older && let Some(i) = config.providers.iter().position(|p| p.token_attributes.is_some()) {
        return Err(invalid((
            format!("providers[{i}].tokenAttributes"),
            "tokenAttributes is only read from kubelet.config.k8s.io/v1 files".into(),
        )));
    }
    validate(&config).map_err(invalid)?;
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
        if let Some(t) = &p.token_attributes {
            validate_token_attributes(t, &p.api_version).map_err(|(field, message)| (f(&format!("tokenAttributes{field}")), message))?;
        }
    }
    Ok(())
}

/// Upstream's checks of `tokenAttributes`, in its order; the field is relative
/// (`.cacheType`, or empty for the whole).
fn validate_token_attributes(t: &TokenAttributes, api_version: &str) -> Result<(), (String, String)> {
    if t.service_account_token_audience.is_empty() {
        return Err((".serviceAccountTokenAudience".into(), "Required value".into()));
    }
    if t.require_service_account.is_none() {
        return Err((".requireServiceAccount".into(), "Required value".into()));
    }
    if api_version != TOKEN_API_VERSION {
        return Err((String::new(), format!("tokenAttributes is only supported for {TOKEN_API_VERSION} API version")));
    }
    if t.require_service_account == Some(false) && !t.required_service_account_annotation_keys.is_empty() {
        return Err((
            ".requiredServiceAccountAnnotationKeys".into(),
            "requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set".into(),
        ));
    }
    for (field, keys) in [
        (".requiredServiceAccountAnnotationKeys", &t.required_service_account_annotation_keys),
        (".optionalServiceAccountAnnotationKeys", &t.optional_service_account_annotation_keys),
    ] {
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            crate::labels::check_qualified_name(&key.to_lowercase()).map_err(|e| (field.to_string(), format!("{key:?}: {e}")))?;
            if !seen.insert(key.as_str()) {
                return Err((field.to_string(), format!("Duplicate value: {key:?}")));
            }
        }
    }
    let mut both: Vec<&String> =
        t.required_service_account_annotation_keys.iter().filter(|k| t.optional_service_account_annotation_keys.contains(k)).collect();
    if !both.is_empty() {
        both.sort();
        return Err((String::new(), format!("{both:?}: annotation keys cannot be both required and optional")));
    }
    match t.cache_type.as_str() {
        "" => Err((
            ".cacheType".into(),
            format!("cacheType is required to be set when tokenAttributes is specified. Supported values are: {}", CACHE_TYPES.join(", ")),
        )),
        c if !CACHE_TYPES.contains(&c) => Err((".cacheType".into(), format!("{c:?}: supported values: {}", CACHE_TYPES.join(", ")))),
        _ => Ok(()),
    }
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
        assert_eq!(
            (p.name.as_str(), p.default_cache_duration, p.args.as_slice()),
            ("test-plugin", Some(Duration::from_secs(600)), ["get".to_string()].as_slice())
        );
        assert_eq!(p.env, [ExecEnvVar { name: "A".into(), value: "b".into() }]);
        let err = |body: &str| load_text(&format!("{HEAD}{body}")).unwrap_err();
        assert!(err("providers: []\n").contains("providers: at least 1 item"));
        assert!(
            err(
                "providers:\n- {name: a/b, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n"
            )
            .contains("providers[0].name")
        );
        assert!(
            err("providers:\n- {name: a, matchImages: [], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n")
                .contains("providers[0].matchImages")
        );
        assert!(
            err("providers:\n- {name: a, matchImages: [x], apiVersion: credentialprovider.kubelet.k8s.io/v1}\n")
                .contains("defaultCacheDuration is required")
        );
        assert!(
            err("providers:\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: v9}\n")
                .contains("providers[0].apiVersion")
        );
        assert!(err("providers:\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1}\n").contains("duplicate name"));
        assert!(
            load_text("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
                .unwrap_err()
                .contains("credential-provider.yaml")
        );
        let old = load_text(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\nproviders:\n- {name: a, matchImages: [x], defaultCacheDuration: 1m, apiVersion: credentialprovider.kubelet.k8s.io/v1beta1}\n",
        );
        assert!(old.is_ok(), "v1beta1 files are still read: {old:?}");
    }

    #[test]
    fn token_attributes_are_read_and_checked_as_upstream() {
        let provider = |attrs: &str| {
            format!(
                "{HEAD}providers:\n- name: sa\n  matchImages: [x]\n  defaultCacheDuration: 1m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  tokenAttributes: {{{attrs}}}\n"
            )
        };
        let ok = load_text(&provider("serviceAccountTokenAudience: reg.example, cacheType: Token, requireServiceAccount: true, requiredServiceAccountAnnotationKeys: [example.com/role], optionalServiceAccountAnnotationKeys: [example.com/tier]")).unwrap();
        let t = ok.providers[0].token_attributes.clone().unwrap();
        assert_eq!(
            (t.service_account_token_audience.as_str(), t.cache_type.as_str(), t.require_service_account),
            ("reg.example", "Token", Some(true))
        );
        assert_eq!(t.required_service_account_annotation_keys, ["example.com/role"]);
        let err = |attrs: &str| load_text(&provider(attrs)).unwrap_err();
        assert!(
            err("cacheType: Token, requireServiceAccount: true")
                .contains("providers[0].tokenAttributes.serviceAccountTokenAudience: Required value")
        );
        assert!(err("serviceAccountTokenAudience: a, cacheType: Token").contains("tokenAttributes.requireServiceAccount: Required value"));
        assert!(err("serviceAccountTokenAudience: a, requireServiceAccount: true").contains("cacheType is required to be set"));
        assert!(
            err("serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Pod")
                .contains("\"Pod\": supported values: ServiceAccount, Token")
        );
        assert!(
            err(
                "serviceAccountTokenAudience: a, requireServiceAccount: false, cacheType: Token, requiredServiceAccountAnnotationKeys: [k]"
            )
            .contains("requireServiceAccount cannot be false")
        );
        assert!(err("serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token, optionalServiceAccountAnnotationKeys: [\"bad key\"]").contains("optionalServiceAccountAnnotationKeys: \"bad key\""));
        assert!(err("serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token, optionalServiceAccountAnnotationKeys: [k, k]").contains("Duplicate value"));
        assert!(err("serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token, requiredServiceAccountAnnotationKeys: [k], optionalServiceAccountAnnotationKeys: [k]").contains("cannot be both required and optional"));
        let beta = provider("serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token")
            .replace("credentialprovider.kubelet.k8s.io/v1\n", "credentialprovider.kubelet.k8s.io/v1beta1\n");
        assert!(load_text(&beta).unwrap_err().contains("only supported for credentialprovider.kubelet.k8s.io/v1 API version"));
        let old_file = provider("serviceAccountTokenAudience: a, requireServiceAccount: true, cacheType: Token")
            .replace("kubelet.config.k8s.io/v1\n", "kubelet.config.k8s.io/v1beta1\n");
        assert!(load_text(&old_file).unwrap_err().contains("only read from kubelet.config.k8s.io/v1 files"));
    }
}
