//! What container environments need from the API server: ConfigMaps, Secrets and the service
//! variables, through [`EnvSources`]. The kubelet's runtime manager calls it; the cluster-mode
//! crate implements it; a standalone kubelet has [`NoEnvSources`].

use std::collections::BTreeMap;

/// An object a container's environment needs could not be read (not "not found": that is
/// `Ok(None)`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvSourceError {
    /// Reading a ConfigMap or Secret failed.
    #[error("failed to get {kind} {namespace}/{name}: {message}")]
    Object {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The object's namespace (the pod's).
        namespace: String,
        /// The object's name (`metadata.name`).
        name: String,
        /// Why the read failed, as the API client reported it.
        message: String,
    },
    /// Listing Services for the `<SVC>_SERVICE_HOST`-style variables failed.
    #[error("failed to list services for the service environment variables: {message}")]
    Services {
        /// Why the list failed, as the API client reported it.
        message: String,
    },
}

/// Object data by key (Secret values decoded).
pub type ObjectData = BTreeMap<String, String>;

/// A Secret's UID, type and decoded data (also how a ConfigMap's data is remembered, with no UID
/// or type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRead {
    /// The Secret's `metadata.uid`; empty for a ConfigMap or when unknown.
    pub uid: String,
    /// The Secret's `type` (`kubernetes.io/dockerconfigjson`, ...); empty when unknown.
    pub type_: String,
    /// The data by key, base64-decoded for a Secret.
    pub data: ObjectData,
}

/// Where ConfigMap, Secret and Service values come from; the standalone kubelet has none.
#[async_trait::async_trait]
pub trait EnvSources: Send + Sync {
    /// The data of ConfigMap `namespace/name`, or `None` when it does not exist.
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, EnvSourceError>;
    /// The (decoded) data of Secret `namespace/name`, or `None` when it does not exist.
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, EnvSourceError>;
    /// A pull secret's UID, type and decoded data (UID and type may be empty where unknown).
    async fn pull_secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRead>, EnvSourceError> {
        Ok(self.secret(namespace, name).await?.map(|data| SecretRead { data, ..Default::default() }))
    }
    /// Service environment variables (`<SVC>_SERVICE_HOST` ...) for the namespace.
    async fn service_env(&self, _namespace: &str, _enable_service_links: bool) -> Result<ObjectData, EnvSourceError> {
        Ok(BTreeMap::new())
    }
}

/// No API server: no ConfigMaps, no Secrets, no Services.
pub struct NoEnvSources;

#[async_trait::async_trait]
impl EnvSources for NoEnvSources {
    async fn config_map(&self, _: &str, _: &str) -> Result<Option<ObjectData>, EnvSourceError> {
        Ok(None)
    }
    async fn secret(&self, _: &str, _: &str) -> Result<Option<ObjectData>, EnvSourceError> {
        Ok(None)
    }
}
