//! The API objects of the proxy benchmark, as JSON: N Services (one TCP port,
//! no selector, a cluster IP allocated by the API server) and one
//! `discovery.k8s.io/v1` EndpointSlice per Service (what a 1.37 API server
//! serves and both proxies watch) with ready endpoints, plus the
//! Node the proxies run as. Created with bounded concurrency; what already
//! exists is kept, so the 10k run extends the 1k one.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Namespace of every benchmark object.
pub const NAMESPACE: &str = "default";
/// Label marking the benchmark's Services and EndpointSlices.
const BENCH_LABEL: &str = "knode-bench";
/// Concurrent creations.
const CONCURRENCY: usize = 32;

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    ApiResource { group: group.into(), version: version.into(), api_version, kind: kind.into(), plural: plural.into() }
}

fn services(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NAMESPACE, &resource("", "v1", "Service", "services"))
}

fn slices(client: &kube::Client) -> Api<DynamicObject> {
    let ar = resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices");
    Api::namespaced_with(client.clone(), NAMESPACE, &ar)
}

pub fn service_name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn slice_name(i: usize) -> String {
    format!("svc-{i:05}-bench")
}

/// Endpoint `j` of Service `i`: 198.18.160.1 – 198.18.191.250, reused
/// round-robin (addresses may repeat across Services; nothing routes them).
pub fn endpoint_ip(i: usize, j: usize) -> Ipv4Addr {
    let idx = (i * 10 + j) % (32 * 250);
    Ipv4Addr::new(198, 18, 160 + (idx / 250) as u8, 1 + (idx % 250) as u8)
}

fn service_json(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service_name(i), "namespace": NAMESPACE, "labels": {BENCH_LABEL: "proxy"}},
        "spec": {"type": "ClusterIP", "ports": [{"name": "", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    })
}

fn endpoints_json(ips: &[Ipv4Addr]) -> Value {
    ips.iter().map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}})).collect()
}

fn slice_json(i: usize, endpoints: usize) -> Value {
    let ips: Vec<Ipv4Addr> = (0..endpoints).map(|j| endpoint_ip(i, j)).collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name(i), "namespace": NAMESPACE, "labels": {
            BENCH_LABEL: "proxy",
            "kubernetes.io/service-name": service_name(i),
            "endpointslice.kubernetes.io/managed-by": "knode-bench"}},
        "addressType": "IPv4",
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints_json(&ips)
    })
}

fn object(v: Value) -> anyhow::Result<DynamicObject> {
    serde_json::from_value(v).context("building an API object")
}

async fn existing(api: &Api<DynamicObject>) -> anyhow::Result<BTreeSet<String>> {
    let lp = ListParams::default().labels(&format!("{BENCH_LABEL}=proxy"));
    let list = api.list(&lp).await.context("listing benchmark objects")?;
    Ok(list.items.into_iter().filter_map(|o| o.metadata.name).collect())
}

/// Creates the Node `node` (InternalIP `node_ip`) unless it exists.
pub async fn ensure_node(client: &kube::Client, node: &str, node_ip: Ipv4Addr) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource("", "v1", "Node", "nodes"));
    if api.get_opt(node).await?.is_some() {
        return Ok(());
    }
    let n = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
        "status": {"addresses": [{"type": "InternalIP", "address": node_ip.to_string()}]}});
    api.create(&PostParams::default(), &object(n)?).await.with_context(|| format!("creating Node {node}"))?;
    Ok(())
}

/// Makes Services 0..n and their EndpointSlices exist; returns how many were created.
pub async fn populate(client: &kube::Client, n: usize, endpoints: usize) -> anyhow::Result<usize> {
    let (svc_api, slice_api) = (services(client), slices(client));
    let (have_svc, have_slice) = (existing(&svc_api).await?, existing(&slice_api).await?);
    let todo: Vec<usize> = (0..n).filter(|i| !have_svc.contains(&service_name(*i)) || !have_slice.contains(&slice_name(*i))).collect();
    let created = todo.len();
    futures::stream::iter(todo)
        .map(|i| {
            let (svc_api, slice_api) = (svc_api.clone(), slice_api.clone());
            let (have_svc, have_slice) = (&have_svc, &have_slice);
            async move {
                let pp = PostParams::default();
                if !have_svc.contains(&service_name(i)) {
                    svc_api
                        .create(&pp, &object(service_json(i))?)
                        .await
                        .with_context(|| format!("creating Service {}", service_name(i)))?;
                }
                if !have_slice.contains(&slice_name(i)) {
                    slice_api
                        .create(&pp, &object(slice_json(i, endpoints))?)
                        .await
                        .with_context(|| format!("creating EndpointSlice {}", slice_name(i)))?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(created)
}

/// The cluster IP of Service `i`.
pub async fn cluster_ip(client: &kube::Client, i: usize) -> anyhow::Result<String> {
    let svc = services(client).get(&service_name(i)).await?;
    svc.data["spec"]["clusterIP"].as_str().map(str::to_string).with_context(|| format!("Service {} has no clusterIP", service_name(i)))
}

/// Replaces the endpoints of Service `i`'s slice: endpoint 0 becomes
/// `new_ip`, or with `add`, `new_ip` joins them as one more endpoint.
pub async fn change_endpoint(client: &kube::Client, i: usize, endpoints: usize, new_ip: Ipv4Addr, add: bool) -> anyhow::Result<()> {
    let mut ips: Vec<Ipv4Addr> = (0..endpoints).map(|j| endpoint_ip(i, j)).collect();
    if add {
        ips.push(new_ip);
    } else {
        ips[0] = new_ip;
    }
    let patch = json!({"endpoints": endpoints_json(&ips)});
    slices(client)
        .patch(&slice_name(i), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("patching EndpointSlice {}", slice_name(i)))?;
    Ok(())
}
