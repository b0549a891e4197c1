//! Registry credentials from a pod's `imagePullSecrets` (upstream `pkg/credentialprovider`'s
//! `BasicDockerKeyring`), matched to the image being pulled.
//!
//! A secret's `.dockerconfigjson` (`{"auths": {<registry>: {...}}}`) or `.dockercfg`
//! (`{<registry>: {...}}`) gives entries keyed by registry location: a host, optionally with a
//! port and a path, optionally with a scheme and Docker's `/v1/` or `/v2/` suffix, host labels
//! may be globs (`*.example.com`). An image matches an entry when the host labels match one by
//! one, the ports are equal and the entry's path is a prefix of the image's repository path.
//! Credentials are tried most specific key first (upstream sorts the keys in reverse order);
//! an image of Docker Hub also gets the credentials stored for `https://index.docker.io/v1/`.
//!
//! Pure: the runtime manager reads the secrets and pulls.

use std::collections::BTreeMap;

use base64::Engine;
use kubelet_cri::api;
use serde::Deserialize;

use super::pull_records::{SecretCoordinates, ServiceAccountCoordinates, credential_hash};

/// `.dockerconfigjson` and `.dockercfg`, the data keys of the two pull secret types.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The data key of a legacy `kubernetes.io/dockercfg` pull secret.
pub const DOCKER_CFG_KEY: &str = ".dockercfg";
/// The two pull secret types.
pub const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// The legacy pull secret type, its Docker config under `.dockercfg`.
pub const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";

/// Why a pull secret's data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The secret's Docker config does not parse, or an entry's `auth` is not base64 of
    /// `user:password`.
    #[error("{key}: {message}")]
    Malformed {
        /// The data key read (`.dockerconfigjson` or `.dockercfg`).
        key: &'static str,
        /// What is wrong, without the secret's values.
        message: String,
    },
}

/// One registry's entry, as `docker login` writes it.
#[derive(Debug, Default, Deserialize)]
struct ConfigEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    email: String,
}

#[derive(Debug, Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, ConfigEntry>,
}

/// Credentials by registry location.
#[derive(Debug, Default, Clone)]
pub struct DockerKeyring {
    /// In lookup order.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    auth: api::AuthConfig,
    /// Where the credentials came from; `None`: the node's.
    source: Option<CredentialSource>,
}

/// Whose credentials pulled an image: a pod's pull secret (with the credentials' hash), or a
/// credential provider plugin answering for a pod's service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// From one of the pod's `imagePullSecrets`: the secret and the credentials' hash.
    Secret(SecretCoordinates),
    /// From a credential provider plugin, given a token of this service account.
    ServiceAccount(ServiceAccountCoordinates),
}

/// Credentials to try for an image, and where they came from (`None`: the node's own, e.g. a
/// credential provider plugin's that is not given service account tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// The CRI registry credentials (username and password) to pull with.
    pub auth: api::AuthConfig,
    /// Where they came from, as the pull records keep it.
    pub source: Option<CredentialSource>,
}

/// A URL without its scheme, split as upstream's `ParseSchemelessURL` does.
#[derive(Debug, PartialEq, Eq)]
struct Location<'a> {
    host: &'a str,
    port: &'a str,
    path: &'a str,
}

fn strip_scheme(s: &str) -> &str {
    s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s)
}

/// `host[:port]` and the rest (from the first `/`) of a location without its scheme.
fn split_authority(s: &str) -> (&str, &str) {
    let s = strip_scheme(s);
    match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn location(s: &str) -> Location<'_> {
    let (authority, path) = split_authority(s);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p),
        _ => (authority, ""),
    };
    Location { host, port, path }
}

/// The key an entry is stored under: host (with port) and path, `/v1/` and `/v2/` dropped.
fn key_of(location: &str) -> String {
    let (authority, path) = split_authority(location);
    let path = path.strip_prefix("/v2").or_else(|| path.strip_prefix("/v1")).filter(|p| p.starts_with('/')).unwrap_or(path);
    if path.is_empty() || path == "/" { authority.to_string() } else { format!("{authority}{path}") }
}

/// `filepath.Match` for one host label: `*` any run, `?` any one character.
fn label_matches(glob: &str, label: &str) -> bool {
    fn go(g: &[u8], l: &[u8]) -> bool {
        match g.split_first() {
            None => l.is_empty(),
            Some((b'*', rest)) => (0..=l.len()).any(|i| go(rest, &l[i..])),
            Some((b'?', rest)) => !l.is_empty() && go(rest, &l[1..]),
            Some((c, rest)) => l.first() == Some(c) && go(rest, &l[1..]),
        }
    }
    go(glob.as_bytes(), label.as_bytes())
}

/// Upstream's `URLsMatchStr(glob, target)`.
fn urls_match(glob: &str, target: &str) -> bool {
    let (g, t) = (location(glob), location(target));
    let (gl, tl): (Vec<&str>, Vec<&str>) = (g.host.split('.').collect(), t.host.split('.').collect());
    gl.len() == tl.len() && gl.iter().zip(&tl).all(|(g, t)| label_matches(g, t)) && g.port == t.port && t.path.starts_with(g.path)
}

/// Whether the repository is on Docker Hub (upstream's `isDefaultRegistryMatch`).
fn is_default_registry(repo: &str) -> bool {
    let Some((first, _)) = repo.split_once('/') else { return !repo.is_empty() };
    !first.is_empty() && (first == "docker.io" || first == "index.docker.io" || !first.contains(['.', ':']))
}

/// The repository to look credentials up for: the image without tag or digest, on its
/// registry (`busybox:1.35` → `docker.io/library/busybox`).
pub fn repository(image: &str) -> String {
    let name = image.split('@').next().unwrap_or_default();
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => name.to_string(),
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    }
}

/// A JSON error without the text it quotes (a secret's values may be in it): its category and
/// position only.
pub(crate) fn without_values(e: &serde_json::Error) -> String {
    format!("invalid JSON ({:?} error at line {}, column {})", e.classify(), e.line(), e.column())
}

fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.trim_matches('\0').to_string()))
}

impl Entry {
    fn credential(&self) -> Credential {
        Credential { auth: self.auth.clone(), source: self.source.clone() }
    }
}

impl DockerKeyring {
    /// Adds a secret's data (decoded): `.dockerconfigjson` first, else `.dockercfg`. A secret
    /// with neither adds nothing.
    pub fn add_secret(&mut self, data: &BTreeMap<String, String>) -> Result<(), CredentialError> {
        self.add_pull_secret("", data, None)
    }

    /// [`Self::add_secret`] for pull secret `(uid, namespace, name)` of type `type_`: its
    /// credentials are recorded with it when they pull an image. As upstream, only a
    /// `kubernetes.io/dockerconfigjson` secret's `.dockerconfigjson` and a
    /// `kubernetes.io/dockercfg` secret's `.dockercfg` count; a secret of another type adds
    /// nothing. An empty type (unknown: the last known data after a failed read) is not
    /// checked.
    pub fn add_pull_secret(
        &mut self,
        type_: &str,
        data: &BTreeMap<String, String>,
        secret: Option<(&str, &str, &str)>,
    ) -> Result<(), CredentialError> {
        let typed = |wanted: &str| type_.is_empty() || type_ == wanted;
        let (key, entries) =
            if let Some(json) = data.get(DOCKER_CONFIG_JSON_KEY).filter(|j| !j.is_empty() && typed(SECRET_TYPE_DOCKER_CONFIG_JSON)) {
                let config = serde_json::from_str::<ConfigJson>(json)
                    .map_err(|e| CredentialError::Malformed { key: DOCKER_CONFIG_JSON_KEY, message: without_values(&e) })?;
                (DOCKER_CONFIG_JSON_KEY, config.auths)
            } else if let Some(cfg) = data.get(DOCKER_CFG_KEY).filter(|c| !c.is_empty() && typed(SECRET_TYPE_DOCKERCFG)) {
                let entries = serde_json::from_str::<BTreeMap<String, ConfigEntry>>(cfg)
                    .map_err(|e| CredentialError::Malformed { key: DOCKER_CFG_KEY, message: without_values(&e) })?;
                (DOCKER_CFG_KEY, entries)
            } else {
                return Ok(());
            };
        for (location, entry) in entries {
            let (username, password) = if entry.auth.is_empty() {
                (entry.username, entry.password)
            } else {
                decode_auth(&entry.auth).ok_or_else(|| CredentialError::Malformed {
                    key,
                    message: format!("the auth of {location:?} is not base64 of user:password"),
                })?
            };
            let source = secret.map(|(uid, namespace, name)| {
                CredentialSource::Secret(SecretCoordinates {
                    uid: uid.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                    credential_hash: credential_hash(&username, &password, &entry.email),
                })
            });
            // No server address: upstream sends none (containerd would parse it as a URL).
            let auth = api::AuthConfig { username, password, ..Default::default() };
            self.entries.push(Entry { key: key_of(&location), auth, source });
        }
        // Reverse order of the keys, as upstream's index: longer (more specific) paths first.
        self.entries.sort_by(|a, b| b.key.cmp(&a.key));
        Ok(())
    }

    /// Adds (location, username, password) entries, e.g. a credential plugin's answer, with the
    /// service account they were given for (`None`: the node's).
    pub fn add_entries(
        &mut self,
        entries: impl IntoIterator<Item = (String, String, String)>,
        service_account: Option<&ServiceAccountCoordinates>,
    ) {
        for (location, username, password) in entries {
            let source = service_account.cloned().map(CredentialSource::ServiceAccount);
            self.entries.push(Entry { key: key_of(&location), auth: api::AuthConfig { username, password, ..Default::default() }, source });
        }
        self.entries.sort_by(|a, b| b.key.cmp(&a.key));
    }

    /// Whether the location glob `glob` matches repository `repo` (upstream's `URLsMatchStr`).
    pub fn matches(glob: &str, repo: &str) -> bool {
        urls_match(&key_of(glob), repo)
    }

    /// The credentials to try for `image`, in order; empty: pull anonymously.
    pub fn lookup(&self, image: &str) -> Vec<api::AuthConfig> {
        self.lookup_credentials(image).into_iter().map(|c| c.auth).collect()
    }

    /// [`Self::lookup`] with where each credential came from.
    pub fn lookup_credentials(&self, image: &str) -> Vec<Credential> {
        let repo = repository(image);
        let found: Vec<Credential> = self.entries.iter().filter(|e| urls_match(&e.key, &repo)).map(Entry::credential).collect();
        if !found.is_empty() || !is_default_registry(&repo) {
            return found;
        }
        self.entries.iter().filter(|e| e.key == "index.docker.io").map(Entry::credential).collect()
    }

    /// Whether the keyring holds no credentials at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(json: &str) -> DockerKeyring {
        let mut k = DockerKeyring::default();
        k.add_secret(&[(DOCKER_CONFIG_JSON_KEY.to_string(), json.to_string())].into()).unwrap();
        k
    }

    fn users(k: &DockerKeyring, image: &str) -> Vec<String> {
        k.lookup(image).into_iter().map(|a| a.username).collect()
    }

    #[test]
    fn a_bad_auth_names_the_key_it_was_read_from() {
        let bad = r#"{"r.example.com": {"auth": "not base64!"}}"#;
        let mut k = DockerKeyring::default();
        let err = k.add_secret(&[(DOCKER_CFG_KEY.to_string(), bad.to_string())].into()).unwrap_err();
        assert!(err.to_string().starts_with(".dockercfg: the auth of \"r.example.com\""), "{err}");
        let bad = format!(r#"{{"auths": {bad}}}"#);
        let err = k.add_secret(&[(DOCKER_CONFIG_JSON_KEY.to_string(), bad)].into()).unwrap_err();
        assert!(err.to_string().starts_with(".dockerconfigjson: the auth of"), "{err}");
    }

    #[test]
    fn repositories_are_normalized() {
        assert_eq!(repository("busybox:1.35"), "docker.io/library/busybox");
        assert_eq!(repository("me/app@sha256:abc"), "docker.io/me/app");
        assert_eq!(repository("127.0.0.1:5001/knode/busybox:1.35"), "127.0.0.1:5001/knode/busybox");
        assert_eq!(repository("localhost/x"), "localhost/x");
        assert_eq!(repository("registry.example.com:443/a/b"), "registry.example.com:443/a/b");
    }

    #[test]
    fn matching_follows_upstreams_rules() {
        // user:pass and other:word in base64.
        let k = keyring(
            r#"{"auths": {
                "registry.example.com": {"auth": "dXNlcjpwYXNz"},
                "https://registry.example.com/team/": {"username": "team", "password": "t"},
                "*.mirror.example.com": {"username": "glob", "password": "g"},
                "127.0.0.1:5001": {"auth": "b3RoZXI6d29yZA=="},
                "https://index.docker.io/v1/": {"username": "hub", "password": "h"}
            }}"#,
        );
        assert_eq!(users(&k, "registry.example.com/team/app:1"), ["team", "user"], "the more specific path first");
        assert_eq!(users(&k, "registry.example.com/other/app"), ["user"]);
        assert_eq!(users(&k, "eu.mirror.example.com/app"), ["glob"]);
        assert!(users(&k, "a.b.mirror.example.com/app").is_empty(), "a glob matches one label");
        assert_eq!(users(&k, "127.0.0.1:5001/knode/busybox:1.35"), ["other"]);
        assert!(users(&k, "127.0.0.1:5002/knode/busybox").is_empty(), "ports must match");
        assert!(users(&k, "registry.example.com:5000/app").is_empty());
        assert_eq!(users(&k, "busybox"), ["hub"], "Docker Hub's default entry");
        assert!(users(&k, "quay.io/app").is_empty());
        let a = &k.lookup("127.0.0.1:5001/x")[0];
        assert_eq!((a.username.as_str(), a.password.as_str()), ("other", "word"));
    }

    #[test]
    fn dockercfg_and_bad_data() {
        let mut k = DockerKeyring::default();
        k.add_secret(&[(DOCKER_CFG_KEY.to_string(), r#"{"quay.io": {"username": "q", "password": "p"}}"#.to_string())].into()).unwrap();
        assert_eq!(users(&k, "quay.io/app"), ["q"]);
        let cfg = [(DOCKER_CFG_KEY.to_string(), r#"{"quay.io": {"username": "q", "password": "p"}}"#.to_string())].into();
        let mut typed = DockerKeyring::default();
        typed.add_pull_secret(SECRET_TYPE_DOCKER_CONFIG_JSON, &cfg, None).unwrap();
        typed.add_pull_secret("Opaque", &[(DOCKER_CONFIG_JSON_KEY.to_string(), "{".to_string())].into(), None).unwrap();
        assert!(typed.is_empty(), "a key that does not go with the secret's type, and an Opaque secret, add nothing");
        typed.add_pull_secret(SECRET_TYPE_DOCKERCFG, &cfg, None).unwrap();
        assert_eq!(users(&typed, "quay.io/x"), ["q"]);
        let err = DockerKeyring::default().add_secret(&[(DOCKER_CONFIG_JSON_KEY.to_string(), "{".to_string())].into()).unwrap_err();
        assert!(err.to_string().starts_with(".dockerconfigjson: "), "{err}");
        let err = DockerKeyring::default()
            .add_secret(&[(DOCKER_CONFIG_JSON_KEY.to_string(), r#"{"auths": {"r.io": {"auth": "!!"}}}"#.to_string())].into())
            .unwrap_err();
        assert!(err.to_string().contains("\"r.io\""), "{err}");
        let err = DockerKeyring::default()
            .add_secret(&[(DOCKER_CONFIG_JSON_KEY.to_string(), r#"{"auths": {"r.io": {"password": 987654}}}"#.to_string())].into())
            .unwrap_err();
        assert!(!err.to_string().contains("987654"), "no secret value in the message: {err}");
        let mut empty = DockerKeyring::default();
        empty.add_secret(&BTreeMap::new()).unwrap();
        assert!(empty.is_empty());
    }
}
