//! Container environment (upstream `makeEnvironmentVariables`) and `$(VAR)` expansion.
//!
//! Pure but for `fileKeyRef`s, which [`super::file_key_ref`] reads from the pod's volumes on
//! every call. The values that need the API server (ConfigMaps, Secrets, Services) are fetched
//! first, asynchronously, from [`EnvSources`] into [`EnvObjects`] (each object once per
//! container); a standalone kubelet has none, and a reference to them then fails the container
//! with `CreateContainerConfigError`, unless it is optional. As upstream, an object that could not
//! be read (an API error other than "not found") fails the container even when its reference is
//! optional: starting it without the values would be silently wrong.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

use super::file_key_ref::{FileKeyRefError, file_key_value};
use super::labels::pod_full_name;
use super::resources::{NodeAllocatable, ResourceFieldError, find_container, resource_field_value, with_default_limits};
pub use kubelet_types::env::{EnvSourceError, EnvSources, NoEnvSources, ObjectData, SecretRead};

/// Why a container's environment cannot be built; the text is its `CreateContainerConfigError`
/// message (upstream's).
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A `fieldRef` selects a field the downward API does not give (the field path).
    #[error("unsupported fieldRef fieldPath {0:?}")]
    UnsupportedFieldPath(String),
    /// A `resourceFieldRef` that cannot be resolved.
    #[error(transparent)]
    ResourceField(#[from] ResourceFieldError),
    /// A ConfigMap or Secret that `envFrom` or a non-optional key reference names does not exist.
    #[error("{kind} \"{name}\" not found")]
    ObjectNotFound {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
    },
    /// A non-optional key reference names a key the ConfigMap or Secret lacks.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyNotFound {
        /// The selector's `key`.
        key: String,
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The pod's namespace, where the object is.
        namespace: String,
        /// The object's name.
        name: String,
    },
    /// A `fileKeyRef` without a value.
    #[error(transparent)]
    FileKeyRef(#[from] FileKeyRefError),
}

/// Pod facts that `fieldRef` can select.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    /// The pod's IPs, primary first (`status.podIP` / `status.podIPs`).
    pub pod_ips: Vec<String>,
    /// The node's IP the pod reports (`status.hostIP`).
    pub host_ip: String,
    /// The node the pod runs on (`spec.nodeName`).
    pub node_name: String,
    /// What unset limits read as in `resourceFieldRef`s.
    pub allocatable: NodeAllocatable,
}

/// The API objects one container's environment reads, fetched before it is built.
#[derive(Clone, Debug, Default)]
pub struct EnvObjects {
    /// ConfigMap name → its data, `None` when it does not exist.
    pub config_maps: BTreeMap<String, Option<ObjectData>>,
    /// Secret name → its data, `None` when it does not exist.
    pub secrets: BTreeMap<String, Option<ObjectData>>,
    /// The service variables for the pod's namespace.
    pub service_env: ObjectData,
}

impl EnvObjects {
    /// Fetches every ConfigMap and Secret `c` refers to in `envFrom` and `env`, each once, and
    /// the service variables of the pod's namespace. The first read that fails is the error.
    pub async fn fetch(pod: &Pod, c: &Container, src: &dyn EnvSources) -> Result<EnvObjects, EnvSourceError> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
        let mut objects = EnvObjects { service_env: src.service_env(ns, links).await?, ..EnvObjects::default() };
        let mut config_maps = std::collections::BTreeSet::new();
        let mut secrets = std::collections::BTreeSet::new();
        for from in c.env_from.iter().flatten() {
            config_maps.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for from in c.env.iter().flatten().filter_map(|v| v.value_from.as_ref()) {
            config_maps.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
        }
        for name in config_maps {
            let data = src.config_map(ns, &name).await?;
            objects.config_maps.insert(name, data);
        }
        for name in secrets {
            let data = src.secret(ns, &name).await?;
            objects.secrets.insert(name, data);
        }
        Ok(objects)
    }

    fn config_map(&self, name: &str) -> Option<&ObjectData> {
        self.config_maps.get(name)?.as_ref()
    }

    fn secret(&self, name: &str) -> Option<&ObjectData> {
        self.secrets.get(name)?.as_ref()
    }
}

/// Expands `$(NAME)` references from `vars`; `$$` escapes a `$`; unknown references stay as written.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    expand_with(input, |name| vars.get(name).map(String::as_str))
}

/// [`expand`] with the values from `lookup` (`None`: the reference stays as written).
pub fn expand_with<'v>(input: &str, mut lookup: impl FnMut(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_ref(pod: &Pod, path: &str, facts: &PodFacts) -> Result<String, EnvError> {
    let m = &pod.metadata;
    let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(|k| map.as_ref().and_then(|m| m.get(k)).cloned().unwrap_or_default())
    };
    if let Some(v) = keyed("metadata.labels['", &m.labels).or_else(|| keyed("metadata.annotations['", &m.annotations)) {
        return Ok(v);
    }
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_else(|| "default".into()),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => facts.node_name.clone(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        "status.podIP" => facts.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => facts.pod_ips.join(","),
        other => return Err(EnvError::UnsupportedFieldPath(other.to_string())),
    })
}

fn env_value(
    pod: &Pod,
    c: &Container,
    var: &EnvVar,
    vars: &BTreeMap<String, String>,
    facts: &PodFacts,
    src: &EnvObjects,
    volumes: &HashMap<String, PathBuf>,
) -> Result<Option<String>, EnvError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(var.value.as_deref().unwrap_or_default(), vars)));
    };
    if let Some(f) = &from.field_ref {
        return field_ref(pod, &f.field_path, facts).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        // As upstream: limits defaulted first; a named container is looked up in the pod.
        let defaulted = with_default_limits(pod, &facts.allocatable);
        let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => find_container(&defaulted, name)?.clone(),
            None => find_container(&defaulted, &c.name).cloned().unwrap_or_else(|_| c.clone()),
        };
        return Ok(Some(resource_field_value(&target, r)?));
    }
    let keyed =
        |kind: &'static str, name: &str, key: &str, optional: Option<bool>, data: Option<&ObjectData>| match data.map(|d| d.get(key)) {
            Some(Some(v)) => Ok(Some(v.clone())),
            _ if optional.unwrap_or(false) => Ok(None),
            None => Err(EnvError::ObjectNotFound { kind, name: name.to_string() }),
            Some(None) => Err(EnvError::KeyNotFound { key: key.to_string(), kind, namespace: ns.to_string(), name: name.to_string() }),
        };
    if let Some(r) = &from.config_map_key_ref {
        return keyed("configmap", &r.name, &r.key, r.optional, src.config_map(&r.name));
    }
    if let Some(r) = &from.secret_key_ref {
        return keyed("secret", &r.name, &r.key, r.optional, src.secret(&r.name));
    }
    if let Some(r) = &from.file_key_ref {
        return file_key_value(volumes, r).map_err(|e| {
            // The container's reason hides why; the log says it, as upstream.
            if let FileKeyRefError::Unparsable { path, source } = &e {
                tracing::warn!(pod = %pod_full_name(pod), container = %c.name, "env file {}: {source}", path.display());
            }
            e.into()
        });
    }
    Ok(None)
}

/// The container's environment, in upstream order: service links, `envFrom`, then `env`, from
/// the objects [`EnvObjects::fetch`] read. `volumes` (volume name → host directory) are where
/// `fileKeyRef`s find their env files.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    facts: &PodFacts,
    src: &EnvObjects,
    volumes: &HashMap<String, PathBuf>,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut vars = src.service_env.clone();
    let mut order: Vec<String> = vars.keys().cloned().collect();
    let mut set = |vars: &mut BTreeMap<String, String>, k: String, v: String| {
        if vars.insert(k.clone(), v).is_none() {
            order.push(k);
        }
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        let (kind, name, optional, data) = if let Some(r) = &from.config_map_ref {
            ("configmap", r.name.clone(), r.optional, src.config_map(&r.name))
        } else if let Some(r) = &from.secret_ref {
            ("secret", r.name.clone(), r.optional, src.secret(&r.name))
        } else {
            continue;
        };
        match data {
            Some(data) => data.iter().for_each(|(k, v)| set(&mut vars, format!("{prefix}{k}"), v.clone())),
            None if optional.unwrap_or(false) => {}
            None => return Err(EnvError::ObjectNotFound { kind, name }),
        }
    }
    for var in c.env.iter().flatten() {
        if let Some(v) = env_value(pod, c, var, &vars, facts, src, volumes)? {
            set(&mut vars, var.name.clone(), v);
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars[&k].clone();
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVarSource, ObjectFieldSelector, SecretKeySelector};

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// ConfigMap `cm` and Secret `sec` exist; `broken` cannot be read; every read is counted.
    #[derive(Default)]
    struct FakeSources(std::sync::Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl EnvSources for FakeSources {
        async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, EnvSourceError> {
            self.0.lock().unwrap().push(format!("configmap {namespace}/{name}"));
            match name {
                "cm" => Ok(Some(vars(&[("k", "from-cm"), ("other", "o")]))),
                "broken" => Err(EnvSourceError::Object {
                    kind: "configmap",
                    namespace: namespace.into(),
                    name: name.into(),
                    message: "connection refused".into(),
                }),
                _ => Ok(None),
            }
        }
        async fn secret(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, EnvSourceError> {
            self.0.lock().unwrap().push(format!("secret {namespace}/{name}"));
            Ok((name == "sec").then(|| vars(&[("pw", "hunter2")])))
        }
    }

    fn key_ref(name: &str, cm: Option<&str>, secret: Option<&str>, key: &str, optional: bool) -> EnvVar {
        use k8s_openapi::api::core::v1::ConfigMapKeySelector;
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: cm.map(|n| ConfigMapKeySelector { name: n.into(), key: key.into(), optional: Some(optional) }),
                secret_key_ref: secret.map(|n| SecretKeySelector { name: n.into(), key: key.into(), optional: Some(optional) }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn each_referenced_object_is_read_once_and_absent_optional_ones_are_skipped() {
        use k8s_openapi::api::core::v1::{ConfigMapEnvSource, EnvFromSource};
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("prod".into());
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource { name: "cm".into(), optional: None }),
                prefix: Some("CM_".into()),
                ..Default::default()
            }]),
            env: Some(vec![
                key_ref("K", Some("cm"), None, "k", false),
                key_ref("PW", None, Some("sec"), "pw", false),
                key_ref("GONE", None, Some("absent"), "x", true),
                key_ref("K2", Some("cm"), None, "other", false),
            ]),
            ..Default::default()
        };
        let src = FakeSources::default();
        let objects = EnvObjects::fetch(&pod, &c, &src).await.unwrap();
        assert_eq!(*src.0.lock().unwrap(), vec!["configmap prod/cm", "secret prod/absent", "secret prod/sec"]);
        let env = container_env(&pod, &c, &PodFacts::default(), &objects, &HashMap::new()).unwrap();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["CM_k", "CM_other", "K", "PW", "K2"]);
        assert_eq!(env[3].1, "hunter2");
    }

    #[tokio::test]
    async fn an_unreadable_object_fails_the_container_even_when_optional() {
        let pod = Pod::default();
        let c = Container { name: "c".into(), env: Some(vec![key_ref("K", Some("broken"), None, "k", true)]), ..Default::default() };
        let err = EnvObjects::fetch(&pod, &c, &FakeSources::default()).await.unwrap_err();
        assert_eq!(err.to_string(), "failed to get configmap default/broken: connection refused");
    }

    #[test]
    fn expansion_follows_upstream_rules() {
        let v = vars(&[("A", "1"), ("B", "two")]);
        assert_eq!(expand("$(A)-$(B)", &v), "1-two");
        assert_eq!(expand("$$(A) $(C) $ $(", &v), "$(A) $(C) $ $(");
        assert_eq!(expand("x$(A", &v), "x$(A");
    }

    #[test]
    fn env_values_fields_and_missing_secrets() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar { name: "A".into(), value: Some("a".into()), ..Default::default() },
                EnvVar { name: "B".into(), value: Some("$(A)b".into()), ..Default::default() },
                EnvVar {
                    name: "NAME".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let env = container_env(&pod, &c, &PodFacts::default(), &EnvObjects::default(), &HashMap::new()).unwrap();
        assert_eq!(env, vec![("A".into(), "a".into()), ("B".into(), "ab".into()), ("NAME".into(), "p".into())]);

        let mut c2 = c.clone();
        c2.env = Some(vec![EnvVar {
            name: "S".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector { name: "db".into(), key: "pw".into(), optional: None }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let err = container_env(&pod, &c2, &PodFacts::default(), &EnvObjects::default(), &HashMap::new()).unwrap_err();
        assert!(matches!(&err, EnvError::ObjectNotFound { kind: "secret", name } if name == "db"), "{err}");
        assert_eq!(err.to_string(), "secret \"db\" not found");
    }

    #[test]
    fn unsupported_field_and_resource_refs_fail_with_their_variant() {
        use k8s_openapi::api::core::v1::ResourceFieldSelector;
        let pod = Pod::default();
        let var = |source: EnvVarSource| EnvVar { name: "V".into(), value_from: Some(source), ..Default::default() };
        let field = var(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "status.phase".into(), ..Default::default() }),
            ..Default::default()
        });
        let resource = var(EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("other".into()),
                resource: "limits.cpu".into(),
                divisor: None,
            }),
            ..Default::default()
        });
        let env = |v: &EnvVar| {
            let c = Container { name: "c".into(), env: Some(vec![v.clone()]), ..Default::default() };
            container_env(&pod, &c, &PodFacts::default(), &EnvObjects::default(), &HashMap::new()).unwrap_err()
        };
        let err = env(&field);
        assert!(matches!(&err, EnvError::UnsupportedFieldPath(p) if p == "status.phase"), "{err}");
        assert_eq!(err.to_string(), "unsupported fieldRef fieldPath \"status.phase\"");
        let err = env(&resource);
        assert!(matches!(&err, EnvError::ResourceField(ResourceFieldError::ContainerNotFound(n)) if n == "other"), "{err}");
        assert_eq!(err.to_string(), "container other not found");
    }

    #[test]
    fn file_key_refs_read_the_env_file_in_the_pod_volume() {
        use k8s_openapi::api::core::v1::FileKeySelector;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("env"), "# written by init\nCONFIG_VALUE='hello'\n").unwrap();
        let volumes = HashMap::from([("data".to_string(), dir.path().to_path_buf())]);
        let from_file = |name: &str, key: &str, optional: Option<bool>| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                file_key_ref: Some(FileKeySelector { volume_name: "data".into(), path: "env".into(), key: key.into(), optional }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut c = Container {
            name: "c".into(),
            env: Some(vec![
                from_file("CONFIG", "CONFIG_VALUE", None),
                from_file("ABSENT", "NOPE", Some(true)),
                EnvVar { name: "GREETING".into(), value: Some("$(CONFIG) world".into()), ..Default::default() },
            ]),
            ..Default::default()
        };
        let pod = Pod::default();
        let env = container_env(&pod, &c, &PodFacts::default(), &EnvObjects::default(), &volumes).unwrap();
        assert_eq!(env, vec![("CONFIG".into(), "hello".into()), ("GREETING".into(), "hello world".into())]);

        c.env = Some(vec![from_file("ABSENT", "NOPE", Some(false))]);
        let err = container_env(&pod, &c, &PodFacts::default(), &EnvObjects::default(), &volumes).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("environment variable key \"NOPE\" not found in file \"{}\"", dir.path().join("env").display())
        );
        std::fs::write(dir.path().join("env"), "CONFIG_VALUE=hello\n").unwrap();
        c.env = Some(vec![from_file("CONFIG", "CONFIG_VALUE", None)]);
        let err = container_env(&pod, &c, &PodFacts::default(), &EnvObjects::default(), &volumes).unwrap_err();
        assert_eq!(err.to_string(), "couldn't parse env file");
        let err = container_env(&pod, &c, &PodFacts::default(), &EnvObjects::default(), &HashMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "cannot find the volume \"data\" referenced by FileKeyRef");
    }
}
