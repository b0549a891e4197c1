//! What container environments need from the API server (upstream `makeEnvironmentVariables`'
//! lookups): ConfigMap and Secret data, and the service environment variables
//! (`<SVC>_SERVICE_HOST`, `<SVC>_PORT_<port>_TCP`, ...) with the master `kubernetes` service
//! always included, so every pod gets `KUBERNETES_SERVICE_HOST` / `_PORT`.
//!
//! [`service_env`] is pure. [`ApiEnvSource`] reads the objects asynchronously; "not found" is
//! `Ok(None)`. When the API server cannot be reached, the last answer for the same object (or
//! the last service list) is used, as upstream's informer caches keep serving during an
//! outage, so a container that dies then is restarted with the environment it had. An object
//! never read before cannot be answered: that error is returned, for the kubelet to fail the
//! container with it rather than start it without the values. Last answers not refreshed for
//! [`LAST_KNOWN_TTL`] are dropped. The service list
//! is shared for [`SERVICE_LIST_TTL`] (upstream reads an informer cache, never the API per
//! container): a hundred pods starting at once cost one list, not a hundred rate-limited ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use tokio::time::Instant;

use crate::api::ConfigApi;
use crate::error::ApiError;
use kubelet_types::env::{EnvSourceError, EnvSources, ObjectData, SecretRead};

/// How long one service list answers every container's service variables.
pub const SERVICE_LIST_TTL: Duration = Duration::from_secs(1);

/// How long the last answer for a ConfigMap or Secret may stand in during an outage.
pub const LAST_KNOWN_TTL: Duration = Duration::from_secs(3600);

/// The last answer for each object read, for outages: `(kind, namespace, name)` → the object's
/// data, with its UID and type for a Secret (a ConfigMap's record leaves them empty).
type LastKnown = std::collections::HashMap<(&'static str, String, String), (Instant, Option<SecretRead>)>;

/// The last service list and when it was fetched.
#[derive(Default)]
struct ServiceCache {
    fetched: Option<Instant>,
    services: Arc<Vec<Service>>,
}

/// The namespace and name of the API server's own service.
pub const MASTER_SERVICE: (&str, &str) = ("default", "kubernetes");

fn env_name(s: &str) -> String {
    s.to_uppercase().replace('-', "_")
}

fn cluster_ip(svc: &Service) -> Option<&str> {
    let ip = svc.spec.as_ref()?.cluster_ip.as_deref()?;
    (!ip.is_empty() && ip != "None").then_some(ip)
}

/// Service variables for a container in `namespace` (upstream `getServiceEnvVarMap` +
/// `envvars.FromServices`).
pub fn service_env(services: &[Service], namespace: &str, enable_service_links: bool) -> BTreeMap<String, String> {
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for svc in services {
        if cluster_ip(svc).is_none() {
            continue;
        }
        let (ns, name) = (svc.metadata.namespace.as_deref().unwrap_or_default(), svc.metadata.name.clone().unwrap_or_default());
        if (ns, name.as_str()) == MASTER_SERVICE {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && enable_service_links {
            chosen.insert(name, svc);
        }
    }
    let mut env = BTreeMap::new();
    for (name, svc) in chosen {
        let ip = cluster_ip(svc).unwrap_or_default();
        let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
        let prefix = env_name(&name);
        env.insert(format!("{prefix}_SERVICE_HOST"), ip.to_string());
        if let Some(first) = ports.first() {
            env.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
        }
        for p in &ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                env.insert(format!("{prefix}_SERVICE_PORT_{}", env_name(port_name)), p.port.to_string());
            }
        }
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let url = format!("{}://{host}:{}", proto.to_lowercase(), p.port);
            if i == 0 {
                env.insert(format!("{prefix}_PORT"), url.clone());
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            env.insert(port_prefix.clone(), url);
            env.insert(format!("{port_prefix}_PROTO"), proto.to_lowercase());
            env.insert(format!("{port_prefix}_PORT"), p.port.to_string());
            env.insert(format!("{port_prefix}_ADDR"), ip.to_string());
        }
    }
    env
}

/// ConfigMaps, Secrets and Services from the API server, for container environments.
#[derive(Clone)]
pub struct ApiEnvSource {
    api: Arc<dyn ConfigApi>,
    /// Held across the list request, so concurrent callers wait for one answer.
    services: Arc<tokio::sync::Mutex<ServiceCache>>,
    last_known: Arc<std::sync::Mutex<LastKnown>>,
}

impl ApiEnvSource {
    /// Reads through `api`, with empty Service and last-known caches.
    pub fn new(api: Arc<dyn ConfigApi>) -> ApiEnvSource {
        ApiEnvSource { api, services: Arc::default(), last_known: Arc::default() }
    }

    /// The data (and binary data, as UTF-8) of ConfigMap `namespace/name`; `None` if absent.
    pub async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, ApiError> {
        let read = self.api.get_config_map(namespace, name).await.map(|cm| {
            cm.map(|cm| {
                let mut data = cm.data.unwrap_or_default();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.entry(k).or_insert_with(|| String::from_utf8_lossy(&v.0).into_owned());
                }
                SecretRead { data, ..Default::default() }
            })
        });
        Ok(self.remember(("configmap", namespace.into(), name.into()), read)?.map(|r| r.data))
    }

    /// The decoded data of Secret `namespace/name`; `None` if absent.
    pub async fn secret(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, ApiError> {
        Ok(self.secret_with_uid(namespace, name).await?.map(|s| s.data))
    }

    /// [`Self::secret`] with the Secret's UID (pull records name secrets by it) and type (pull
    /// secrets must be of a docker config type); after a failed read, the last known ones.
    pub async fn secret_with_uid(&self, namespace: &str, name: &str) -> Result<Option<SecretRead>, ApiError> {
        let read = self.api.get_secret(namespace, name).await.map(|secret| {
            secret.map(|s| SecretRead {
                uid: s.metadata.uid.unwrap_or_default(),
                type_: s.type_.unwrap_or_default(),
                data: s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect(),
            })
        });
        self.remember(("secret", namespace.into(), name.into()), read)
    }

    /// Records a successful read; answers a failed one from the last known answer, if any.
    fn remember(
        &self,
        key: (&'static str, String, String),
        read: Result<Option<SecretRead>, ApiError>,
    ) -> Result<Option<SecretRead>, ApiError> {
        let mut last = self.last_known.lock().expect("last-known lock");
        let now = Instant::now();
        match read {
            Ok(data) => {
                last.retain(|_, (at, _)| now.duration_since(*at) < LAST_KNOWN_TTL);
                last.insert(key, (now, data.clone()));
                Ok(data)
            }
            Err(e) => match last.get(&key) {
                Some((at, data)) if now.duration_since(*at) < LAST_KNOWN_TTL => {
                    tracing::info!("{} {}/{}: {e}; using its last known data", key.0, key.1, key.2);
                    Ok(data.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Service variables for `namespace`.
    pub async fn service_env(&self, namespace: &str, enable_service_links: bool) -> Result<BTreeMap<String, String>, ApiError> {
        Ok(service_env(&self.services().await?, namespace, enable_service_links))
    }

    /// Reads the service list once at start-up, retrying until it succeeds or `shutdown`, so
    /// that a container restarted during a later API outage gets its service variables from
    /// the last list (upstream's service informer syncs at start the same way).
    pub async fn warm_up(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.services().await {
                Ok(_) => return,
                Err(e) => tracing::info!("listing services for environment variables: {e}; retrying in {backoff:?}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Every Service: the cached list while it is younger than [`SERVICE_LIST_TTL`].
    async fn services(&self) -> Result<Arc<Vec<Service>>, ApiError> {
        let mut cache = self.services.lock().await;
        if cache.fetched.is_some_and(|at| at.elapsed() < SERVICE_LIST_TTL) {
            return Ok(cache.services.clone());
        }
        match self.api.list_services().await {
            Ok(services) => {
                let services = Arc::new(services);
                *cache = ServiceCache { fetched: Some(Instant::now()), services: services.clone() };
                Ok(services)
            }
            // The last list stands in while the API server cannot be reached.
            Err(e) if cache.fetched.is_some() => {
                tracing::info!("listing services: {e}; using the last list");
                Ok(cache.services.clone())
            }
            Err(e) => Err(e),
        }
    }
}

fn env_error(kind: &'static str, namespace: &str, name: &str, e: ApiError) -> EnvSourceError {
    EnvSourceError::Object { kind, namespace: namespace.into(), name: name.into(), message: e.to_string() }
}

/// The kubelet's container environments read through this source.
#[async_trait::async_trait]
impl EnvSources for ApiEnvSource {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, EnvSourceError> {
        ApiEnvSource::config_map(self, namespace, name).await.map_err(|e| env_error("configmap", namespace, name, e))
    }
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<ObjectData>, EnvSourceError> {
        ApiEnvSource::secret(self, namespace, name).await.map_err(|e| env_error("secret", namespace, name, e))
    }
    async fn pull_secret(&self, namespace: &str, name: &str) -> Result<Option<SecretRead>, EnvSourceError> {
        self.secret_with_uid(namespace, name).await.map_err(|e| env_error("secret", namespace, name, e))
    }
    async fn service_env(&self, namespace: &str, enable_service_links: bool) -> Result<ObjectData, EnvSourceError> {
        ApiEnvSource::service_env(self, namespace, enable_service_links)
            .await
            .map_err(|e| EnvSourceError::Services { message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32)]) -> Service {
        Service {
            metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..ObjectMeta::default() },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ServicePort {
                            name: n.map(Into::into),
                            port: *p,
                            protocol: Some("TCP".into()),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    /// Counts service lists; ConfigMaps and Secrets are never there.
    #[derive(Default)]
    struct CountingApi(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl ConfigApi for CountingApi {
        async fn get_config_map(&self, _: &str, _: &str) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>, crate::error::ApiError> {
            Ok(None)
        }
        async fn get_secret(&self, _: &str, _: &str) -> Result<Option<k8s_openapi::api::core::v1::Secret>, crate::error::ApiError> {
            Ok(None)
        }
        async fn list_services(&self) -> Result<Vec<Service>, crate::error::ApiError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(vec![svc("default", "kubernetes", "198.19.0.1", &[(Some("https"), 443)])])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_service_list_serves_many_containers_until_it_expires() {
        let api = Arc::new(CountingApi::default());
        let src = ApiEnvSource::new(api.clone());
        for _ in 0..50 {
            assert_eq!(src.service_env("prod", true).await.unwrap()["KUBERNETES_SERVICE_HOST"], "198.19.0.1");
        }
        assert_eq!(api.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        tokio::time::sleep(SERVICE_LIST_TTL + Duration::from_millis(50)).await;
        src.service_env("prod", true).await.unwrap();
        assert_eq!(api.0.load(std::sync::atomic::Ordering::SeqCst), 2, "a stale list is fetched again");
    }

    /// ConfigMap `cm` and one service, until the API server goes down.
    #[derive(Default)]
    struct OutageApi(std::sync::atomic::AtomicBool);

    impl OutageApi {
        fn check(&self, what: &str) -> Result<(), ApiError> {
            if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(ApiError::Transport { what: what.into(), message: "client error (Connect)".into() });
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl ConfigApi for OutageApi {
        async fn get_config_map(&self, _: &str, name: &str) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>, ApiError> {
            self.check(&format!("configmaps/{name}"))?;
            Ok((name == "cm").then(|| k8s_openapi::api::core::v1::ConfigMap {
                data: Some([("k".to_string(), "v".to_string())].into()),
                ..Default::default()
            }))
        }
        async fn get_secret(&self, _: &str, name: &str) -> Result<Option<k8s_openapi::api::core::v1::Secret>, ApiError> {
            self.check(&format!("secrets/{name}"))?;
            Ok((name == "pull").then(|| {
                let mut s =
                    k8s_openapi::api::core::v1::Secret { type_: Some("kubernetes.io/dockerconfigjson".into()), ..Default::default() };
                s.metadata.uid = Some("uid-pull".into());
                s
            }))
        }
        async fn list_services(&self) -> Result<Vec<Service>, ApiError> {
            self.check("services")?;
            Ok(vec![svc("default", "kubernetes", "198.19.0.1", &[(Some("https"), 443)])])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn during_an_outage_objects_read_before_answer_from_their_last_data() {
        let api = Arc::new(OutageApi::default());
        let src = ApiEnvSource::new(api.clone());
        assert_eq!(src.config_map("prod", "cm").await.unwrap().unwrap()["k"], "v");
        assert_eq!(src.secret("prod", "gone").await.unwrap(), None);
        assert!(src.secret("prod", "pull").await.unwrap().is_some(), "read once, as an environment's secret");
        src.service_env("prod", true).await.unwrap();

        api.0.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(SERVICE_LIST_TTL * 2).await;
        assert_eq!(src.config_map("prod", "cm").await.unwrap().unwrap()["k"], "v", "last known data");
        assert_eq!(src.secret("prod", "gone").await.unwrap(), None, "last known absence");
        let pull = src.secret_with_uid("prod", "pull").await.unwrap().unwrap();
        assert_eq!(
            (pull.uid.as_str(), pull.type_.as_str()),
            ("uid-pull", "kubernetes.io/dockerconfigjson"),
            "the type (and UID) come with the last known data"
        );
        assert_eq!(src.service_env("prod", true).await.unwrap()["KUBERNETES_SERVICE_HOST"], "198.19.0.1", "last list");
        let err = src.config_map("prod", "never-read").await.unwrap_err();
        assert!(err.to_string().contains("configmaps/never-read"), "{err}");

        let later = Arc::new(OutageApi::default());
        let warmed = ApiEnvSource::new(later.clone());
        warmed.clone().warm_up(tokio_util::sync::CancellationToken::new()).await;
        later.0.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(SERVICE_LIST_TTL * 2).await;
        assert!(warmed.service_env("prod", true).await.is_ok(), "a source warmed up at start answers during an outage");

        tokio::time::sleep(LAST_KNOWN_TTL).await;
        assert!(src.config_map("prod", "cm").await.is_err(), "last known data expires");
        assert!(ApiEnvSource::new(api).service_env("prod", true).await.is_err(), "no list ever read");
    }

    #[test]
    fn master_service_always_and_namespace_services_with_links() {
        let services = [
            svc("default", "kubernetes", "198.19.0.1", &[(Some("https"), 443)]),
            svc("prod", "my-db", "198.19.0.7", &[(Some("sql"), 5432), (None, 9000)]),
            svc("prod", "headless", "None", &[(None, 80)]),
            svc("other", "elsewhere", "198.19.0.9", &[(None, 80)]),
        ];
        let env = service_env(&services, "prod", true);
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "198.19.0.1");
        assert_eq!(env["KUBERNETES_SERVICE_PORT"], "443");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(env["KUBERNETES_PORT"], "tcp://198.19.0.1:443");
        assert_eq!(env["KUBERNETES_PORT_443_TCP_ADDR"], "198.19.0.1");
        assert_eq!(env["MY_DB_SERVICE_PORT_SQL"], "5432");
        assert_eq!(env["MY_DB_PORT"], "tcp://198.19.0.7:5432");
        assert_eq!(env["MY_DB_PORT_9000_TCP_PROTO"], "tcp");
        assert!(!env.keys().any(|k| k.starts_with("HEADLESS") || k.starts_with("ELSEWHERE")));

        let no_links = service_env(&services, "prod", false);
        assert!(no_links.contains_key("KUBERNETES_SERVICE_HOST"));
        assert!(!no_links.keys().any(|k| k.starts_with("MY_DB")));
    }
}
