//! The kubelet's stats endpoints, timed from outside with every pod running: `GET
//! /stats/summary`, `/metrics/cadvisor` and `/metrics/resource` straight from its secure port
//! (`https://198.18.255.1:10250`), as the API server or metrics-server reach it. The client
//! presents the harness's `apiserver-kubelet-client` certificate (`O=system:masters`; both
//! kubelets authenticate it against the cluster CA and authorize it by webhook) and verifies the
//! kubelet's serving certificate against that CA: both kubelets serve
//! `kubelet-serving-knode-node.crt`, issued by it for the node IP.
//!
//! Per endpoint: one warm-up request, then sequential requests on the same kept-alive
//! connection (no TLS handshake in the figures), each timed from sending the request to the
//! last byte of the body. The last body of each is kept, to see what was served.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::kubelets::{CP_DIR, NODE_IP};
use crate::report::percentile;

/// The endpoints, in table order.
pub const PATHS: [&str; 3] = ["/stats/summary", "/metrics/cadvisor", "/metrics/resource"];
/// Timed requests per endpoint, after one warm-up.
pub const REQUESTS: usize = 20;

/// One endpoint's latencies.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub path: String,
    /// Each timed request, milliseconds, in order.
    pub ms: Vec<f64>,
    /// Body size of the last response, bytes.
    pub bytes: usize,
}

impl Latency {
    pub fn p50_ms(&self) -> f64 {
        percentile(&self.ms, 50.0)
    }
    pub fn max_ms(&self) -> f64 {
        self.ms.iter().copied().fold(f64::NAN, f64::max)
    }
}

/// A client for the kubelet's secure port with the harness's kubelet-client certificate: a
/// kubeconfig naming the files.
async fn client() -> anyhow::Result<kube::Client> {
    let pki = format!("{CP_DIR}/pki");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters: [{{name: kubelet, cluster: {{server: \"https://{NODE_IP}:10250\", certificate-authority: {pki}/ca.crt}}}}]\n\
         users: [{{name: apiserver, user: {{client-certificate: {pki}/apiserver-kubelet-client.crt, client-key: {pki}/apiserver-kubelet-client.key}}}}]\n\
         contexts: [{{name: kubelet, context: {{cluster: kubelet, user: apiserver}}}}]\ncurrent-context: kubelet\n"
    );
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    config.reset_reader_on_write = true;
    config.default_retry = false;
    Ok(kube::Client::try_from(config)?)
}

/// One GET of `path`: its duration and body. (kube's request builder makes the
/// `http::Request`: `/stats` + `summary`.)
async fn get(client: &kube::Client, path: &str) -> anyhow::Result<(Duration, String)> {
    let (prefix, name) = path.rsplit_once('/').context("path without /")?;
    let request = kube::core::Request::new(prefix).get(name, &Default::default())?;
    let start = Instant::now();
    let body = client.request_text(request).await.with_context(|| format!("GET {path}"))?;
    Ok((start.elapsed(), body))
}

/// Times every endpoint of [`PATHS`]: one warm-up, then [`REQUESTS`] sequential requests.
/// `keep(name)` names the file that keeps the last body (`name`: `stats-summary`, …).
pub async fn measure(keep: impl Fn(&str) -> PathBuf) -> anyhow::Result<Vec<Latency>> {
    let client = client().await?;
    let mut all = Vec::new();
    for path in PATHS {
        get(&client, path).await?;
        let mut l = Latency { path: path.into(), ..Latency::default() };
        let mut last = String::new();
        for _ in 0..REQUESTS {
            let (took, body) = get(&client, path).await?;
            l.ms.push(took.as_secs_f64() * 1000.0);
            l.bytes = body.len();
            last = body;
        }
        let file = keep(&path.trim_start_matches('/').replace('/', "-"));
        if let Err(e) = std::fs::write(&file, last) {
            eprintln!("  keeping {}: {e}", file.display());
        }
        all.push(l);
    }
    Ok(all)
}
