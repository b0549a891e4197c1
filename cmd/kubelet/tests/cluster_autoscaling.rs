//! End-to-end, cluster mode: the node's metrics endpoints feeding real monitoring and autoscaling.
//! A Prometheus server (Debian's `prometheus`, installed by `hack/node-env.sh`) scrapes our
//! kubelet's `/metrics`, `/metrics/cadvisor`, `/metrics/resource` and `/metrics/probes` over TLS
//! (checked against the cluster CA) with a service-account token the kubelet authorizes through
//! the API server's SubjectAccessReview; all four targets are up and PromQL's `rate()` of a
//! busy loop under a 200m limit comes out near 0.2 cores. Then a HorizontalPodAutoscaler
//! (autoscaling/v2, CPU utilization from metrics-server, which reads `/metrics/resource`) scales
//! a Deployment running on our node from 1 to more replicas while its pods burn CPU, and back to
//! 1 once they idle.

mod cluster_support;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_support::*;
use e2e::{TestNode, busybox_image, http_get};
use serde_json::Value;

const CGROUP_ROOT: &str = "knode-e2e-autoscaling";
const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROM_POD: &str = "e2e-prom-busy";
const PROM_SA: &str = "e2e-prometheus";
const HPA: &str = "e2e-hpa-load";

/// Our kubelet as `knode-node` with pod cgroups (in a cgroup tree of the test's own), secure port
/// on the node IP, Ready.
async fn start_node() -> (TestNode, e2e::KubeletProcess) {
    let node = TestNode::new();
    let kubelet = start_kubelet_with_pod_cgroups(&node, CGROUP_ROOT).await;
    (node, kubelet)
}

/// Polls `check` every second until it returns `Ok`; panics after `timeout` with `what` and the
/// last error.
async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `kubectl delete --ignore-not-found` on each object when dropped, so a failing test leaves
/// nothing in the cluster.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let mut all: Vec<&str> = vec!["delete", "--ignore-not-found", "--wait=false"];
            all.extend(args.iter().map(String::as_str));
            kubectl(&all);
        }
    }
}

fn cleanup(objects: &[&str]) -> Cleanup {
    Cleanup(objects.iter().map(|o| o.split_whitespace().map(String::from).collect()).collect())
}

/// A Prometheus server started by the test; killed when dropped (its log printed if the test is
/// failing).
struct Prometheus {
    child: std::process::Child,
    addr: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, config: &str) -> Self {
        assert!(Path::new(PROMETHEUS).exists(), "{PROMETHEUS} is missing: run hack/node-env.sh (it installs Debian's prometheus)");
        let port = e2e::free_port();
        let addr = format!("127.0.0.1:{port}");
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.join("prometheus.log");
        let file = std::fs::File::create(&log).expect("prometheus log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn prometheus");
        Self { child, addr, log }
    }

    /// `GET path` on Prometheus' HTTP API: the `data` of a `success` answer.
    async fn api(&self, path: &str) -> Result<Value, String> {
        let (code, body) = http_get(&self.addr, path).await?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("HTTP {code}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("HTTP {code}: {body}"));
        }
        Ok(v["data"].clone())
    }

    async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(promql))).await?;
        data["result"].as_array().cloned().ok_or_else(|| format!("no result: {data}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("---- last lines of {} ----", self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One scrape job of the kubelet on the node IP's secure port.
fn scrape_job(name: &str, path: &str, token_file: &Path) -> String {
    format!(
        "- job_name: {name}\n  metrics_path: {path}\n  scheme: https\n  tls_config: {{ca_file: {CP_DIR}/pki/ca.crt}}\n  \
         authorization: {{type: Bearer, credentials_file: {}}}\n  static_configs: [{{targets: ['{NODE_IP}:10250']}}]\n",
        token_file.display()
    )
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn prometheus_scrapes_the_kubelet_endpoints() {
    control_plane_ready().await;
    let (node, kubelet) = start_node().await;
    let objects = cleanup(&[
        &format!("pod {PROM_POD}"),
        &format!("clusterrolebinding {PROM_SA}"),
        &format!("clusterrole {PROM_SA}"),
        &format!("serviceaccount {PROM_SA} -n default"),
    ]);

    // A loop held to 200m, with a readiness probe so /metrics/probes has a series of its own.
    let yaml = busy_pod_yaml(PROM_POD, "while :; do :; done", "    readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: 5}\n");
    apply(&node, "prom-busy", &yaml);

    // Prometheus' identity: a service account allowed what the kubelet's webhook authorizer asks
    // for (nodes/metrics for /metrics*, nodes/stats, nodes/proxy), with a bound token.
    let rbac = format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {PROM_SA}, namespace: default}}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {PROM_SA}}}
rules:
- apiGroups: [""]
  resources: [nodes/metrics, nodes/stats, nodes/proxy]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {PROM_SA}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {PROM_SA}}}
subjects: [{{kind: ServiceAccount, name: {PROM_SA}, namespace: default}}]
"#
    );
    apply(&node, "prom-rbac", &rbac);
    let (ok, token, err) = kubectl(&["create", "token", PROM_SA, "-n", "default", "--duration=1h"]);
    assert!(ok && !token.trim().is_empty(), "kubectl create token: {err}");
    let token_file = node.dir.path().join("prometheus.token");
    std::fs::write(&token_file, token.trim()).unwrap();
    pod_running(PROM_POD, Duration::from_secs(90)).await;

    let jobs = [
        ("kubelet", "/metrics"),
        ("kubelet-cadvisor", "/metrics/cadvisor"),
        ("kubelet-resource", "/metrics/resource"),
        ("kubelet-probes", "/metrics/probes"),
    ];
    let mut config = String::from("global: {scrape_interval: 5s, scrape_timeout: 4s, evaluation_interval: 5s}\nscrape_configs:\n");
    for (name, path) in jobs {
        config.push_str(&scrape_job(name, path, &token_file));
    }
    let prometheus = Prometheus::start(node.dir.path(), &config);

    // Every target scraped successfully: TLS against our CA, the token authorized, the text parsed.
    let targets = poll("all four kubelet targets up in Prometheus", Duration::from_secs(60), || async {
        let data = prometheus.api("/api/v1/targets?state=active").await?;
        let targets = data["activeTargets"].as_array().cloned().unwrap_or_default();
        let up = targets.iter().filter(|t| t["health"] == "up").count();
        let summary: Vec<String> = targets.iter().map(|t| format!("{} {} {}", t["scrapeUrl"], t["health"], t["lastError"])).collect();
        if targets.len() == jobs.len() && up == jobs.len() { Ok(summary) } else { Err(summary.join("; ")) }
    })
    .await;
    eprintln!("targets: {targets:?}");

    // PromQL over the scraped counters: the loop's rate near its 200m limit, from both endpoints
    // that carry container_cpu_usage_seconds_total. The kubelet samples stats every 10 s and
    // stamps them (Prometheus keeps those timestamps): the rate is read once the window holds
    // three samples, as two, early on, extrapolate to well below the real rate.
    let series = format!("container_cpu_usage_seconds_total{{pod=\"{PROM_POD}\",container=\"busy\"}}");
    let promql = format!("rate({series}[30s])");
    let rates = poll("the busy container's rate() between 0.12 and 0.26 cores", Duration::from_secs(120), || async {
        let samples = prometheus.query(&format!("count_over_time({series}[30s]) >= 3")).await?;
        if samples.len() < 2 {
            return Err(format!("fewer than 3 samples in 30 s: {samples:?}"));
        }
        let result = prometheus.query(&promql).await?;
        let rates: Vec<(String, f64)> =
            result.iter().filter_map(|s| Some((s["metric"]["job"].as_str()?.to_string(), s["value"][1].as_str()?.parse().ok()?))).collect();
        let in_range = rates.iter().all(|(_, r)| (0.12..=0.26).contains(r));
        let both = ["kubelet-cadvisor", "kubelet-resource"].iter().all(|j| rates.iter().any(|(job, _)| job == j));
        if both && in_range { Ok(rates) } else { Err(format!("{rates:?}")) }
    })
    .await;
    eprintln!("{promql}: {rates:?}");

    // The readiness probe's counter, scraped from /metrics/probes.
    let probes = format!("prober_probe_total{{pod=\"{PROM_POD}\",container=\"busy\",probe_type=\"Readiness\",result=\"successful\"}}");
    let result = prometheus.query(&probes).await.expect("query prober_probe_total");
    let count: f64 = result.first().and_then(|s| s["value"][1].as_str()?.parse().ok()).unwrap_or(0.0);
    assert!(count >= 1.0, "{probes}: {result:?}");
    // The kubelet's own gauges, scraped from /metrics.
    let result = prometheus.query(&format!("kubelet_node_name{{job=\"kubelet\",node=\"{NODE}\"}}")).await.expect("query kubelet_node_name");
    assert_eq!(result.len(), 1, "kubelet_node_name: {result:?}");
    let result = prometheus.query("kubelet_running_pods{job=\"kubelet\"}").await.expect("query kubelet_running_pods");
    let pods: f64 = result.first().and_then(|s| s["value"][1].as_str()?.parse().ok()).unwrap_or(0.0);
    assert!(pods >= 1.0, "kubelet_running_pods: {result:?}");
    let result = prometheus.query("scrape_samples_scraped").await.expect("query scrape_samples_scraped");
    let samples: Vec<(String, f64)> =
        result.iter().filter_map(|s| Some((s["metric"]["job"].as_str()?.to_string(), s["value"][1].as_str()?.parse().ok()?))).collect();
    eprintln!("scrape_samples_scraped: {samples:?}");

    drop(prometheus);
    drop(objects);
    teardown(kubelet).await;
    remove_test_cgroups(CGROUP_ROOT);
}

/// The HPA's currentReplicas, desiredReplicas and CPU utilization (% of the request).
type HpaStatus = (u64, u64, Option<u64>);

fn hpa_status() -> Result<HpaStatus, String> {
    let hpa: Value = kubectl_json(&["get", "hpa", HPA]).ok_or("kubectl get hpa failed")?;
    let s = &hpa["status"];
    let current = s["currentReplicas"].as_u64().unwrap_or(0);
    let desired = s["desiredReplicas"].as_u64().unwrap_or(0);
    let utilization = s["currentMetrics"][0]["resource"]["current"]["averageUtilization"].as_u64();
    Ok((current, desired, utilization))
}

/// Appends (and prints) an HPA status that differs from the last one seen.
fn record(seen: &mut Vec<HpaStatus>, status: &Result<HpaStatus, String>, since: Instant) {
    if let Ok(s) = status
        && seen.last() != Some(s)
    {
        eprintln!("{:>5.1}s hpa (current, desired, utilization%): {s:?}", since.elapsed().as_secs_f64());
        seen.push(*s);
    }
}

fn hpa_conditions() -> String {
    let hpa: Value = kubectl_json(&["get", "hpa", HPA]).unwrap_or_default();
    let conditions = hpa["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.iter().map(|c| format!("{}={} ({}: {})", c["type"], c["status"], c["reason"], c["message"])).collect::<Vec<_>>().join("; ")
}

/// Running pods of the Deployment.
fn running_replicas() -> usize {
    let pods: Value = kubectl_json(&["get", "pods", "-l", &format!("app={HPA}")]).unwrap_or_default();
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|p| p["status"]["phase"] == "Running" && p["spec"]["nodeName"] == NODE && p["metadata"]["deletionTimestamp"].is_null())
        .count()
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn hpa_scales_a_deployment_on_our_node_up_and_down() {
    let started = Instant::now();
    control_plane_ready().await;
    assert!(metrics_server("up"), "hack/metrics-server.sh up failed");
    let (node, kubelet) = start_node().await;
    let objects = cleanup(&[&format!("hpa {HPA}"), &format!("deployment {HPA}")]);

    // Each replica burns CPU until the test creates `stop` in a host directory every replica
    // mounts (at most 150 s: the loop is bounded), then idles. A replica started after that never
    // burns.
    let control = node.dir.path().join("load");
    std::fs::create_dir_all(&control).unwrap();
    let image = busybox_image();
    let yaml = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {HPA}, namespace: default}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {HPA}}}}}
  template:
    metadata: {{labels: {{app: {HPA}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      automountServiceAccountToken: false
      nodeSelector: {{knode.test/e2e: "true"}}
      containers:
      - name: load
        image: {image}
        imagePullPolicy: Never
        command: ["sh", "-c", "timeout 150 sh -c 'while [ ! -e /load/stop ]; do :; done'; sleep 3600"]
        resources: {{requests: {{cpu: 100m}}, limits: {{cpu: 200m, memory: 32Mi}}}}
        volumeMounts: [{{name: load, mountPath: /load}}]
      volumes: [{{name: load, hostPath: {{path: {}, type: Directory}}}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: {HPA}, namespace: default}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {HPA}}}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
  behavior:
    scaleUp: {{stabilizationWindowSeconds: 0}}
    scaleDown: {{stabilizationWindowSeconds: 0}}
"#,
        control.display()
    );
    apply(&node, "hpa", &yaml);
    let load_started = Instant::now();

    // One replica at ~200% of its 100m request against a 50% target: the HPA wants more (up to
    // 3), the Deployment gets them, and they run on our node.
    let mut seen = Vec::new();
    let (current, desired, utilization) = poll("the HPA to scale the Deployment above 1 replica", Duration::from_secs(120), || {
        let status = hpa_status();
        record(&mut seen, &status, load_started);
        async move {
            match status? {
                s @ (current, desired, _) if current > 1 && desired > 1 => Ok(s),
                s => Err(format!("{s:?}; {}", hpa_conditions())),
            }
        }
    })
    .await;
    assert!(load_started.elapsed() < Duration::from_secs(150), "the load is bounded to 150 s: it must still run");
    assert!(utilization.is_none_or(|u| u > 55), "scaled up at {utilization:?}% of the request");
    let running = poll("a second replica Running on our node", Duration::from_secs(45), || async {
        let n = running_replicas();
        if n >= 2 { Ok(n) } else { Err(format!("{n} running")) }
    })
    .await;
    let scaled_up = load_started.elapsed();
    eprintln!(
        "scaled up after {scaled_up:?}: current {current}, desired {desired}, utilization {utilization:?}%, {running} replicas running"
    );

    // The load stops; the pods idle and the HPA scales back to the minimum.
    std::fs::write(control.join("stop"), "").unwrap();
    let stopped = Instant::now();
    let (current, desired, utilization) = poll("the HPA to scale the Deployment back to 1 replica", Duration::from_secs(120), || {
        let status = hpa_status();
        record(&mut seen, &status, load_started);
        async move {
            match status? {
                s @ (1, 1, _) => Ok(s),
                s => Err(format!("{s:?}; {}", hpa_conditions())),
            }
        }
    })
    .await;
    eprintln!(
        "scaled down {:?} after the load stopped: current {current}, desired {desired}, utilization {utilization:?}%",
        stopped.elapsed()
    );
    let max = seen.iter().map(|(c, d, _)| *c.max(d)).max().unwrap_or(0);
    assert!((2..=3).contains(&max), "replicas between the minimum and the maximum: {seen:?}");
    poll("the Deployment back to 1 running replica", Duration::from_secs(45), || async {
        let n = running_replicas();
        if n == 1 { Ok(()) } else { Err(format!("{n} running")) }
    })
    .await;

    kubectl(&["delete", "hpa", HPA]);
    kubectl(&["delete", "deployment", HPA, "--cascade=foreground", "--timeout=60s"]);
    drop(objects);
    teardown(kubelet).await;
    metrics_server("down");
    remove_test_cgroups(CGROUP_ROOT);
    eprintln!("hpa test took {:?}", started.elapsed());
}
