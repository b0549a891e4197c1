//! The benchmark's API workload: N bare pods (busybox `sleep 3600`, no `nodeName`, so the
//! scheduler binds them) in namespace `knode-bench`, created through the API while a watch
//! records, per pod, the client-side instants of the create request, of seeing it bound
//! (`spec.nodeName` set) and of seeing `status.phase: Running`. Then deleting them all with
//! grace period 0 and waiting until the API has none left.
//!
//! Only ever touches pods in namespace `knode-bench`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Namespace of every benchmark pod.
pub use crate::bench_pods::NAMESPACE;
/// Pods created concurrently (in flight at once).
pub const CREATE_CONCURRENCY: usize = 10;

/// Pod `i`: one busybox container that sleeps, tiny requests so that 100 fit on the node.
/// With `probes`, it serves HTTP on 8080 (busybox `httpd`) and has a readiness and a liveness
/// probe every second, of two different kinds among exec, httpGet and tcpSocket (rotating with
/// `i`, so the kinds are evenly mixed).
pub fn pod(i: usize, image: &str, probes: bool) -> anyhow::Result<Pod> {
    let mut p: Pod = serde_json::from_value(bare_pod(i, image))?;
    if probes {
        let kinds = [
            serde_json::json!({"exec": {"command": ["cat", "/www/index.html"]}}),
            serde_json::json!({"httpGet": {"path": "/", "port": 8080}}),
            serde_json::json!({"tcpSocket": {"port": 8080}}),
        ];
        let probe = |k: usize| -> anyhow::Result<k8s_openapi::api::core::v1::Probe> {
            let mut v = kinds[k % 3].clone();
            v["periodSeconds"] = 1.into();
            v["timeoutSeconds"] = 1.into();
            Ok(serde_json::from_value(v)?)
        };
        let c = &mut p.spec.as_mut().context("spec")?.containers[0];
        c.command =
            Some(["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"].map(String::from).to_vec());
        c.readiness_probe = Some(probe(i)?);
        c.liveness_probe = Some(probe(i + 1)?);
    }
    Ok(p)
}

/// Names of pod `i`'s ConfigMap and Secret (`--objects`).
fn object_names(i: usize) -> (String, String) {
    (format!("bench-cm-{i:03}"), format!("bench-secret-{i:03}"))
}

/// Gives pod `i` a ConfigMap volume and an environment variable from a Secret, each an object
/// of its own: what a kubelet must keep current for it (watches, or reads at every sync).
pub fn with_objects(p: &mut Pod, i: usize) -> anyhow::Result<()> {
    let (cm, secret) = object_names(i);
    let spec = p.spec.as_mut().context("spec")?;
    spec.volumes = Some(vec![serde_json::from_value(serde_json::json!({"name": "config", "configMap": {"name": cm}}))?]);
    let c = &mut spec.containers[0];
    c.volume_mounts = Some(vec![serde_json::from_value(serde_json::json!({"name": "config", "mountPath": "/config"}))?]);
    c.env = Some(vec![serde_json::from_value(
        serde_json::json!({"name": "BENCH_SECRET", "valueFrom": {"secretKeyRef": {"name": secret, "key": "value"}}}),
    )?]);
    Ok(())
}

/// Creates the ConfigMap and Secret of pods `0..n` that are missing (`--objects`).
pub async fn ensure_objects(client: &kube::Client, n: usize) -> anyhow::Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    for i in 0..n {
        let (cm, secret) = object_names(i);
        let labels = serde_json::json!({"app": "knode-bench"});
        if cms.get_opt(&cm).await?.is_none() {
            let o: ConfigMap = serde_json::from_value(
                serde_json::json!({"metadata": {"name": cm, "labels": labels}, "data": {"setting": format!("value-{i}")}}),
            )?;
            cms.create(&PostParams::default(), &o).await.with_context(|| format!("creating configmap {cm}"))?;
        }
        if secrets.get_opt(&secret).await?.is_none() {
            let o: Secret = serde_json::from_value(
                serde_json::json!({"metadata": {"name": secret, "labels": labels}, "stringData": {"value": format!("secret-{i}")}}),
            )?;
            secrets.create(&PostParams::default(), &o).await.with_context(|| format!("creating secret {secret}"))?;
        }
    }
    Ok(())
}

/// Deletes every benchmark ConfigMap and Secret.
pub async fn delete_objects(client: &kube::Client) -> anyhow::Result<()> {
    let lp = ListParams::default().labels("app=knode-bench");
    Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE).delete_collection(&DeleteParams::default(), &lp).await?;
    Api::<Secret>::namespaced(client.clone(), NAMESPACE).delete_collection(&DeleteParams::default(), &lp).await?;
    Ok(())
}

fn bare_pod(i: usize, image: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("bench-{i:03}"), "namespace": NAMESPACE, "labels": {"app": "knode-bench"}},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "sleep",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
            }],
        },
    })
}

/// Client-side milliseconds since the run's start for one pod.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct PodTimes {
    /// Just before the create request was sent.
    pub created_ms: f64,
    /// When the watch first showed the pod bound to a node.
    pub bound_ms: Option<f64>,
    /// When the watch first showed `status.phase: Running`.
    pub running_ms: Option<f64>,
}

type Times = Arc<Mutex<HashMap<String, PodTimes>>>;

/// Creates the namespace if missing.
pub async fn ensure_namespace(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(NAMESPACE).await?.is_none() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}}))?;
        api.create(&PostParams::default(), &ns).await.context("creating namespace knode-bench")?;
    }
    Ok(())
}

/// Names of the benchmark pods in the API.
pub async fn listed(client: &kube::Client) -> anyhow::Result<Vec<String>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    Ok(api.list(&ListParams::default()).await?.items.into_iter().filter_map(|p| p.metadata.name).collect())
}

fn record(times: &mut HashMap<String, PodTimes>, pod: &Pod, now_ms: f64) {
    let Some(name) = pod.metadata.name.clone() else { return };
    let t = times.entry(name).or_default();
    if t.bound_ms.is_none() && pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
        t.bound_ms = Some(now_ms);
    }
    if t.running_ms.is_none() && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
        t.running_ms = Some(now_ms);
    }
}

/// Creates `n` pods (with a ConfigMap and a Secret each when `objects`; see [`with_objects`])
/// and waits until every one is `Running`; returns per-pod times (ms since `start`), sorted
/// by name.
pub async fn create_and_wait_running(
    client: &kube::Client,
    n: usize,
    image: &str,
    probes: bool,
    objects: bool,
    start: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<(String, PodTimes)>> {
    let mut pods: Vec<Pod> = (0..n).map(|i| pod(i, image, probes)).collect::<anyhow::Result<_>>()?;
    if objects {
        for (i, p) in pods.iter_mut().enumerate() {
            with_objects(p, i)?;
        }
    }
    create_pods_and_wait_running(client, pods, start, timeout).await
}

/// [`create_and_wait_running`] for pods made by the caller (in [`NAMESPACE`]).
pub async fn create_pods_and_wait_running(
    client: &kube::Client,
    pods: Vec<Pod>,
    start: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<(String, PodTimes)>> {
    let n = pods.len();
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let rv = api.list(&ListParams::default()).await?.metadata.resource_version.unwrap_or_else(|| "0".into());
    let times: Times = Arc::default();
    let ms = move || start.elapsed().as_secs_f64() * 1000.0;

    let watch_times = times.clone();
    let watch_api = api.clone();
    let watcher = tokio::spawn(async move {
        let mut rv = rv;
        loop {
            let mut stream = watch_api.watch(&WatchParams::default().timeout(280), &rv).await?.boxed();
            while let Some(ev) = stream.try_next().await? {
                let now = ms();
                match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                        rv = p.metadata.resource_version.clone().unwrap_or(rv);
                        let mut t = watch_times.lock().await;
                        record(&mut t, &p, now);
                        if t.len() == n && t.values().all(|t| t.running_ms.is_some()) {
                            return anyhow::Ok(());
                        }
                    }
                    WatchEvent::Deleted(_) | WatchEvent::Bookmark(_) => {}
                    WatchEvent::Error(e) => anyhow::bail!("pod watch: {e:?}"),
                }
            }
        }
    });

    futures::stream::iter(pods)
        .map(|p| {
            let (api, times) = (api.clone(), times.clone());
            async move {
                let name = p.metadata.name.clone().unwrap_or_default();
                times.lock().await.entry(name.clone()).or_default().created_ms = ms();
                api.create(&PostParams::default(), &p).await.with_context(|| format!("creating pod {name}"))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;

    match tokio::time::timeout(timeout, watcher).await {
        Ok(r) => r??,
        Err(_) => {
            let t = times.lock().await;
            let running = t.values().filter(|t| t.running_ms.is_some()).count();
            anyhow::bail!("only {running} of {n} pods Running after {timeout:?}");
        }
    }
    let mut out: Vec<_> = times.lock().await.clone().into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Deletes every benchmark pod with grace period 0 and waits until the API lists none.
pub async fn delete_all(client: &kube::Client, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let dp = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    let deadline = Instant::now() + timeout;
    loop {
        let names = listed(client).await?;
        if names.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{} benchmark pods still in the API after {timeout:?}", names.len());
        for name in names {
            let _ = api.delete(&name, &dp).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_give_each_pod_a_configmap_volume_and_a_secret_variable() {
        let mut p = pod(4, "img", false).unwrap();
        with_objects(&mut p, 4).unwrap();
        let spec = p.spec.unwrap();
        assert_eq!(spec.volumes.unwrap()[0].config_map.as_ref().unwrap().name, "bench-cm-004");
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().name, "bench-secret-004");
    }

    #[test]
    fn pods_are_unbound_and_tiny() {
        let p = pod(7, "img", false).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("bench-007"));
        let spec = p.spec.unwrap();
        assert!(spec.node_name.is_none());
        assert_eq!(spec.automount_service_account_token, Some(false));
    }

    #[test]
    fn probe_pods_mix_probe_kinds() {
        let kinds = |i| {
            let p = pod(i, "img", true).unwrap();
            let c = p.spec.unwrap().containers.remove(0);
            let (r, l) = (c.readiness_probe.unwrap(), c.liveness_probe.unwrap());
            assert_eq!((r.period_seconds, l.period_seconds), (Some(1), Some(1)));
            (r.exec.is_some(), r.http_get.is_some(), l.http_get.is_some(), l.tcp_socket.is_some())
        };
        assert_eq!(kinds(0), (true, false, true, false));
        assert_eq!(kinds(1), (false, true, false, true));
    }

    #[test]
    fn records_first_bound_and_running_only() {
        let mut times = HashMap::new();
        let mut p = pod(1, "img", false).unwrap();
        record(&mut times, &p, 1.0);
        p.spec.as_mut().unwrap().node_name = Some("n".into());
        record(&mut times, &p, 2.0);
        p.status = Some(serde_json::from_value(serde_json::json!({"phase": "Running"})).unwrap());
        record(&mut times, &p, 3.0);
        record(&mut times, &p, 4.0);
        let t = times["bench-001"];
        assert_eq!((t.bound_ms, t.running_ms), (Some(2.0), Some(3.0)));
    }
}
