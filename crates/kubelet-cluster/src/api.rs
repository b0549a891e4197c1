//! The API server boundary: one small trait per resource the kubelet touches
//! ([`NodeApi`], [`LeaseApi`], [`PodApi`], [`EventApi`], [`ConfigApi`]), and [`KubeApi`], their
//! implementation over a `kube::Client` behind the kubeAPIQPS/kubeAPIBurst [`RateLimiter`].
//!
//! Controllers take `Arc<dyn …Api>` so tests drive them with in-memory fakes. This module
//! holds no state besides the client and the limiter, and decides nothing.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent, WatchParams};
use kube::{Api, Client};

use crate::error::ApiError;
use crate::object_watch::{ObjectWatches, WatchSource};
use kubelet_types::rate_limit::RateLimiter;

/// The field manager name on patches.
pub const FIELD_MANAGER: &str = "kubelet";

/// Nodes: registration and status.
#[async_trait]
pub trait NodeApi: Send + Sync + 'static {
    /// The node object `name`, or `None` when it does not exist.
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiError>;
    /// Registers the node object (fails with [`ApiError::AlreadyExists`] if it is there).
    async fn create_node(&self, node: &Node) -> Result<Node, ApiError>;
    /// A JSON merge patch of the node object (labels, annotations).
    async fn patch_node(&self, name: &str, patch: &serde_json::Value) -> Result<Node, ApiError>;
    /// A JSON merge patch of the `status` subresource.
    async fn patch_node_status(&self, name: &str, patch: &serde_json::Value) -> Result<Node, ApiError>;
}

/// Leases in `kube-node-lease`.
#[async_trait]
pub trait LeaseApi: Send + Sync + 'static {
    /// The Lease `namespace/name`, or `None` when it does not exist.
    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Option<Lease>, ApiError>;
    /// Creates the Lease in its `metadata.namespace`.
    async fn create_lease(&self, lease: &Lease) -> Result<Lease, ApiError>;
    /// PUT with the lease's `resourceVersion`: fails with [`ApiError::Conflict`] if it moved.
    async fn update_lease(&self, lease: &Lease) -> Result<Lease, ApiError>;
}

/// One answer of a pod list: the pods and the list's resource version.
#[derive(Debug, Clone, Default)]
pub struct PodList {
    /// The pods matching the list's field selector.
    pub pods: Vec<Pod>,
    /// The list's `metadata.resourceVersion`, where the watch that follows starts.
    pub resource_version: String,
}

/// Pods: the node's pods, their status, mirror pods.
#[async_trait]
pub trait PodApi: Send + Sync + 'static {
    /// Lists the pods of every namespace matching `field_selector` (`spec.nodeName=<node>`).
    async fn list_pods(&self, field_selector: &str) -> Result<PodList, ApiError>;
    /// Watches from `resource_version`; the stream ends when the server closes the watch.
    async fn watch_pods(
        &self,
        field_selector: &str,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<Pod>, ApiError>>, ApiError>;
    /// The pod `namespace/name`, or `None` when it does not exist.
    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, ApiError>;
    /// Creates the pod in its `metadata.namespace` (`default` if none): a mirror pod.
    async fn create_pod(&self, pod: &Pod) -> Result<Pod, ApiError>;
    /// Deletes with a grace period, only if the pod still has `uid` (when given).
    async fn delete_pod(&self, namespace: &str, name: &str, grace_seconds: Option<u32>, uid: Option<&str>) -> Result<(), ApiError>;
    /// A JSON merge patch of the `status` subresource.
    async fn patch_pod_status(&self, namespace: &str, name: &str, patch: &serde_json::Value) -> Result<Pod, ApiError>;
}

/// Events.
#[async_trait]
pub trait EventApi: Send + Sync + 'static {
    /// Posts `event` in its `metadata.namespace` (`default` if none).
    async fn create_event(&self, event: &Event) -> Result<(), ApiError>;
}

/// ConfigMaps and Secrets for container environments.
#[async_trait]
pub trait ConfigApi: Send + Sync + 'static {
    /// The ConfigMap `namespace/name`, or `None` when it does not exist.
    async fn get_config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, ApiError>;
    /// The Secret `namespace/name`, or `None` when it does not exist.
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError>;
    /// Every Service (for service environment variables).
    async fn list_services(&self) -> Result<Vec<k8s_openapi::api::core::v1::Service>, ApiError>;
}

/// Every API trait over one `kube::Client`, rate-limited. Clones share the client: when the
/// certificate manager rotates the client certificate it replaces the clients once
/// ([`KubeApi::replace_clients`]) and every clone's next request uses the new ones.
#[derive(Clone)]
pub struct KubeApi {
    client: Arc<std::sync::RwLock<Client>>,
    /// The HTTP/2 clients of the object watches' lanes ([`crate::client`],
    /// [`crate::object_watch::WatchLanes`]); none: the main one.
    watch_clients: Arc<std::sync::RwLock<Vec<Client>>>,
    pub(crate) limiter: Arc<RateLimiter>,
    /// Watched Secrets and ConfigMaps answering their GETs, when the change detection strategy
    /// is `Watch`.
    objects: Option<Arc<ObjectCaches>>,
}

/// The watches behind [`KubeApi::with_object_watches`].
pub struct ObjectCaches {
    /// The watched Secrets, by namespace and name.
    pub secrets: ObjectWatches<Secret>,
    /// The watched ConfigMaps, by namespace and name.
    pub config_maps: ObjectWatches<ConfigMap>,
}

impl KubeApi {
    /// Every request through `client`, each first taking a token from `limiter`
    /// (kubeAPIQPS/kubeAPIBurst); no object watches.
    pub fn new(client: Client, limiter: RateLimiter) -> KubeApi {
        KubeApi {
            client: Arc::new(std::sync::RwLock::new(client)),
            watch_clients: Arc::default(),
            limiter: Arc::new(limiter),
            objects: None,
        }
    }

    /// Object watches (LIST and WATCH of single objects) go through `clients`, one per lane.
    pub fn with_watch_clients(self, clients: Vec<Client>) -> KubeApi {
        *self.watch_clients.write().expect("client lock") = clients;
        self
    }

    /// The same (replaceable) client with another rate limit.
    pub fn with_limiter(&self, limiter: RateLimiter) -> KubeApi {
        KubeApi {
            client: Arc::clone(&self.client),
            watch_clients: Arc::clone(&self.watch_clients),
            limiter: Arc::new(limiter),
            objects: None,
        }
    }

    /// This client, answering Secret and ConfigMap reads from a watch of each object read
    /// (`configMapAndSecretChangeDetectionStrategy: Watch`, see [`crate::object_watch`]). Its
    /// clones share the watches.
    pub fn with_object_watches(&self) -> KubeApi {
        let plain = Arc::new(KubeApi { objects: None, ..self.clone() });
        let lanes = Arc::new(crate::object_watch::WatchLanes::default());
        let caches = ObjectCaches {
            secrets: ObjectWatches::sharing(plain.clone(), lanes.clone()),
            config_maps: ObjectWatches::sharing(plain, lanes),
        };
        KubeApi { objects: Some(Arc::new(caches)), ..self.clone() }
    }

    /// The object watches, when this client has them.
    pub fn object_caches(&self) -> Option<&Arc<ObjectCaches>> {
        self.objects.as_ref()
    }

    /// The current client.
    pub fn client(&self) -> Client {
        self.client.read().expect("client lock").clone()
    }

    /// The client of the object watches in `lane`.
    fn watch_client(&self, lane: usize) -> Client {
        let clients = self.watch_clients.read().expect("client lock");
        if clients.is_empty() { self.client() } else { clients[lane % clients.len()].clone() }
    }

    /// Makes every clone use `clients` from its next request on (a rotated certificate); watches
    /// under way keep their connection until they end.
    pub fn replace_clients(&self, clients: crate::client::Clients) {
        *self.client.write().expect("client lock") = clients.main;
        let mut watches = self.watch_clients.write().expect("client lock");
        if !watches.is_empty() {
            *watches = clients.watches;
        }
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client(), namespace)
    }
}

fn merge_patch(patch: &serde_json::Value) -> Patch<&serde_json::Value> {
    Patch::Merge(patch)
}

#[async_trait]
impl NodeApi for KubeApi {
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiError> {
        self.limiter.acquire().await;
        Api::<Node>::all(self.client()).get_opt(name).await.map_err(|e| crate::error::from_kube(format!("nodes/{name}"), e))
    }

    async fn create_node(&self, node: &Node) -> Result<Node, ApiError> {
        self.limiter.acquire().await;
        let name = node.metadata.name.clone().unwrap_or_default();
        Api::<Node>::all(self.client())
            .create(&PostParams::default(), node)
            .await
            .map_err(|e| crate::error::from_kube(format!("nodes/{name}"), e))
    }

    async fn patch_node(&self, name: &str, patch: &serde_json::Value) -> Result<Node, ApiError> {
        self.limiter.acquire().await;
        Api::<Node>::all(self.client())
            .patch(name, &PatchParams::default(), &merge_patch(patch))
            .await
            .map_err(|e| crate::error::from_kube(format!("nodes/{name}"), e))
    }

    async fn patch_node_status(&self, name: &str, patch: &serde_json::Value) -> Result<Node, ApiError> {
        self.limiter.acquire().await;
        Api::<Node>::all(self.client())
            .patch_status(name, &PatchParams::default(), &merge_patch(patch))
            .await
            .map_err(|e| crate::error::from_kube(format!("nodes/{name}/status"), e))
    }
}

#[async_trait]
impl LeaseApi for KubeApi {
    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Option<Lease>, ApiError> {
        self.limiter.acquire().await;
        Api::<Lease>::namespaced(self.client(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("leases/{namespace}/{name}"), e))
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease, ApiError> {
        self.limiter.acquire().await;
        let (ns, name) = (lease.metadata.namespace.clone().unwrap_or_default(), lease.metadata.name.clone().unwrap_or_default());
        Api::<Lease>::namespaced(self.client(), &ns)
            .create(&PostParams::default(), lease)
            .await
            .map_err(|e| crate::error::from_kube(format!("leases/{ns}/{name}"), e))
    }

    async fn update_lease(&self, lease: &Lease) -> Result<Lease, ApiError> {
        self.limiter.acquire().await;
        let (ns, name) = (lease.metadata.namespace.clone().unwrap_or_default(), lease.metadata.name.clone().unwrap_or_default());
        Api::<Lease>::namespaced(self.client(), &ns)
            .replace(&name, &PostParams::default(), lease)
            .await
            .map_err(|e| crate::error::from_kube(format!("leases/{ns}/{name}"), e))
    }
}

#[async_trait]
impl PodApi for KubeApi {
    async fn list_pods(&self, field_selector: &str) -> Result<PodList, ApiError> {
        self.limiter.acquire().await;
        let lp = ListParams { field_selector: Some(field_selector.into()), ..ListParams::default() };
        let list = Api::<Pod>::all(self.client()).list(&lp).await.map_err(|e| crate::error::from_kube("pods", e))?;
        Ok(PodList { resource_version: list.metadata.resource_version.unwrap_or_default(), pods: list.items })
    }

    async fn watch_pods(
        &self,
        field_selector: &str,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<Pod>, ApiError>>, ApiError> {
        self.limiter.acquire().await;
        let wp = WatchParams { field_selector: Some(field_selector.into()), timeout: Some(290), bookmarks: true, ..WatchParams::default() };
        let stream =
            Api::<Pod>::all(self.client()).watch(&wp, resource_version).await.map_err(|e| crate::error::from_kube("pods (watch)", e))?;
        Ok(stream.map(|r| r.map_err(|e| crate::error::from_kube("pods (watch)", e))).boxed())
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, ApiError> {
        self.limiter.acquire().await;
        self.pods(namespace).get_opt(name).await.map_err(|e| crate::error::from_kube(format!("pods/{namespace}/{name}"), e))
    }

    async fn create_pod(&self, pod: &Pod) -> Result<Pod, ApiError> {
        self.limiter.acquire().await;
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.pods(&ns).create(&PostParams::default(), pod).await.map_err(|e| crate::error::from_kube(format!("pods/{ns}/{name}"), e))
    }

    async fn delete_pod(&self, namespace: &str, name: &str, grace_seconds: Option<u32>, uid: Option<&str>) -> Result<(), ApiError> {
        self.limiter.acquire().await;
        let dp = DeleteParams {
            grace_period_seconds: grace_seconds,
            preconditions: uid.map(|u| Preconditions { uid: Some(u.into()), resource_version: None }),
            ..DeleteParams::default()
        };
        self.pods(namespace).delete(name, &dp).await.map_err(|e| crate::error::from_kube(format!("pods/{namespace}/{name}"), e))?;
        Ok(())
    }

    async fn patch_pod_status(&self, namespace: &str, name: &str, patch: &serde_json::Value) -> Result<Pod, ApiError> {
        self.limiter.acquire().await;
        // Strategic: lists with a merge key (conditions by type) merge, as upstream's patches do.
        self.pods(namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .map_err(|e| crate::error::from_kube(format!("pods/{namespace}/{name}/status"), e))
    }
}

#[async_trait]
impl EventApi for KubeApi {
    async fn create_event(&self, event: &Event) -> Result<(), ApiError> {
        self.limiter.acquire().await;
        let ns = event.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        Api::<Event>::namespaced(self.client(), &ns)
            .create(&PostParams::default(), event)
            .await
            .map_err(|e| crate::error::from_kube(format!("events/{ns}"), e))?;
        Ok(())
    }
}

#[async_trait]
impl ConfigApi for KubeApi {
    async fn get_config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        if let Some(objects) = &self.objects
            && let Some(cached) = objects.config_maps.read(namespace, name).await
        {
            return Ok(cached);
        }
        self.limiter.acquire().await;
        Api::<ConfigMap>::namespaced(self.client(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("configmaps/{namespace}/{name}"), e))
    }

    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError> {
        if let Some(objects) = &self.objects
            && let Some(cached) = objects.secrets.read(namespace, name).await
        {
            return Ok(cached);
        }
        self.limiter.acquire().await;
        Api::<Secret>::namespaced(self.client(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| crate::error::from_kube(format!("secrets/{namespace}/{name}"), e))
    }

    async fn list_services(&self) -> Result<Vec<k8s_openapi::api::core::v1::Service>, ApiError> {
        self.limiter.acquire().await;
        let list = Api::<k8s_openapi::api::core::v1::Service>::all(self.client())
            .list(&ListParams::default())
            .await
            .map_err(|e| crate::error::from_kube("services", e))?;
        Ok(list.items)
    }
}

/// One object's LIST and WATCH by name, for [`ObjectWatches`].
#[async_trait]
impl<K> WatchSource<K> for KubeApi
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    async fn list_one(&self, lane: usize, namespace: &str, name: &str) -> Result<(Option<K>, String), ApiError> {
        self.limiter.acquire().await;
        let what = format!("{}/{namespace}/{name} (list)", K::plural(&()));
        let lp = ListParams { field_selector: Some(format!("metadata.name={name}")), ..ListParams::default() };
        let list =
            Api::<K>::namespaced(self.watch_client(lane), namespace).list(&lp).await.map_err(|e| crate::error::from_kube(what, e))?;
        Ok((list.items.into_iter().next(), list.metadata.resource_version.unwrap_or_default()))
    }

    /// Not rate-limited, as upstream's client never throttles watches.
    async fn watch_one(
        &self,
        lane: usize,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>, ApiError>>, ApiError> {
        let what = format!("{}/{namespace}/{name} (watch)", K::plural(&()));
        let wp = WatchParams {
            field_selector: Some(format!("metadata.name={name}")),
            timeout: Some(290),
            bookmarks: true,
            ..WatchParams::default()
        };
        let stream = Api::<K>::namespaced(self.watch_client(lane), namespace)
            .watch(&wp, resource_version)
            .await
            .map_err(|e| crate::error::from_kube(what.clone(), e))?;
        Ok(stream.map(move |r| r.map_err(|e| crate::error::from_kube(what.clone(), e))).boxed())
    }
}
