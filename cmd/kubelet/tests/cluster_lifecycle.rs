//! End-to-end, cluster mode: probes and lifecycle hooks of pods created with the real `kubectl`
//! through the real API server (so every field arrives defaulted), run on real containerd.
//!
//! - an httpGet readiness probe against busybox `httpd` flips the pod Ready both ways and the
//!   Service's EndpointSlice follows it; a tcpSocket liveness probe keeps it alive;
//! - an exec liveness probe that starts failing restarts the container with upstream's events;
//! - a startup probe holds `started` (and liveness) back until it passes;
//! - postStart runs before the container's own work observes it; preStop runs on deletion.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, wait_for};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

fn container(pod: &str, name: &str) -> Option<ContainerStatus> {
    let p: Pod = kubectl_json(&["get", "pod", pod])?;
    p.status?.container_statuses?.into_iter().find(|c| c.name == name)
}

fn events(pod: &str) -> String {
    let (_, out, _) = kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    out
}

fn ready_endpoints(service: &str) -> Option<usize> {
    // `kubectl get -l` answers a generic `List`.
    let list: serde_json::Value = kubectl_json(&["get", "endpointslices", "-l", &format!("kubernetes.io/service-name={service}")])?;
    let slices = list["items"].as_array()?;
    Some(
        slices
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == serde_json::Value::Bool(true))
            .count(),
    )
}

fn probes_yaml(hostdir: &str) -> String {
    let image = busybox_image();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: e2e-probes
  labels: {{app: e2e-probes}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 10
  volumes:
  - name: host
    hostPath: {{path: {hostdir}, type: DirectoryOrCreate}}
  containers:
  - name: web
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /healthz, port: http}}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 2
  - name: slow-start
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "sleep 5; touch /tmp/started; sleep 3600"]
    startupProbe:
      exec: {{command: ["test", "-f", "/tmp/started"]}}
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec: {{command: ["test", "-f", "/tmp/started"]}}
      periodSeconds: 1
  - name: hooks
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "while [ ! -f /tmp/poststart ]; do sleep 0.2; done; echo saw-$(cat /tmp/poststart); sleep 3600"]
    volumeMounts: [{{name: host, mountPath: /host}}]
    lifecycle:
      postStart:
        exec: {{command: ["sh", "-c", "echo poststart > /tmp/poststart"]}}
      preStop:
        exec: {{command: ["sh", "-c", "echo prestop > /host/prestop"]}}
---
apiVersion: v1
kind: Pod
metadata:
  name: e2e-flaky
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 2
  containers:
  - name: flaky
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "touch /tmp/alive; sleep 6; rm /tmp/alive; sleep 3600"]
    livenessProbe:
      exec: {{command: ["test", "-f", "/tmp/alive"]}}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Service
metadata:
  name: e2e-probes
spec:
  selector: {{app: e2e-probes}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn probes_and_hooks_behave_as_upstream() {
    control_plane_ready().await;
    kubectl(&["delete", "service", "e2e-probes", "--ignore-not-found"]);
    let node = TestNode::new();
    secure_config(&node); // kubectl logs and exec reach the kubelet server
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    let hostdir = node.dir.path().join("hostdir");
    apply(&node, "probes", &probes_yaml(hostdir.to_str().unwrap()));

    // httpGet readiness: Ready, and the Service has one ready endpoint.
    wait_for("web ready", Duration::from_secs(90), || async { container("e2e-probes", "web").filter(|c| c.ready).map(drop) }).await;
    wait_for("ready endpoint", Duration::from_secs(60), || async { (ready_endpoints("e2e-probes")? == 1).then_some(()) }).await;

    // Startup probe: `started` stays false (and liveness, which would fail, does not run) until
    // the file appears after 5 s; then started, never restarted.
    wait_for("slow-start started", Duration::from_secs(60), || async {
        container("e2e-probes", "slow-start").filter(|c| c.started == Some(true) && c.ready).map(drop)
    })
    .await;
    assert_eq!(container("e2e-probes", "slow-start").unwrap().restart_count, 0, "{}", events("e2e-probes"));

    // Exec liveness that starts failing after 6 s: killed and restarted, with upstream's events.
    wait_for("flaky restarted", Duration::from_secs(90), || async {
        container("e2e-flaky", "flaky").filter(|c| c.restart_count >= 1).map(drop)
    })
    .await;
    let ev = events("e2e-flaky");
    assert!(ev.contains("Unhealthy: Liveness probe failed:"), "{ev}");
    assert!(ev.contains("Killing: Container flaky failed liveness probe, will be restarted"), "{ev}");
    assert_eq!(container("e2e-probes", "web").unwrap().restart_count, 0, "tcp liveness keeps web alive: {}", events("e2e-probes"));
    kubectl(&["delete", "pod", "e2e-flaky", "--wait=false"]);

    // Probe runs are counted at /metrics/probes, reached through the API server's node proxy.
    let (ok, metrics, err) = kubectl(&["get", "--raw", &format!("/api/v1/nodes/{NODE}/proxy/metrics/probes")]);
    assert!(ok, "{err}");
    assert!(metrics.contains("# TYPE prober_probe_total counter"), "{metrics}");
    let web_ready = metrics
        .lines()
        .find(|l| l.contains("container=\"web\"") && l.contains("probe_type=\"Readiness\",result=\"successful\""))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(web_ready.rsplit(' ').next().unwrap().parse::<u64>().unwrap() >= 1, "{web_ready}");

    // postStart ran before the container's loop looked for its file.
    let (ok, log, err) = kubectl(&["logs", "e2e-probes", "-c", "hooks"]);
    assert!(ok && log.contains("saw-poststart"), "{log} {err}");

    // Readiness flips back: without /www/healthz httpd answers 404 and the pod is not ready,
    // and the endpoint is no longer ready; never restarted (readiness does not kill).
    let (ok, _, err) = kubectl(&["exec", "e2e-probes", "-c", "web", "--", "rm", "/www/healthz"]);
    assert!(ok, "kubectl exec: {err}");
    wait_for("web not ready", Duration::from_secs(30), || async { container("e2e-probes", "web").filter(|c| !c.ready).map(drop) }).await;
    wait_for("no ready endpoint", Duration::from_secs(60), || async { (ready_endpoints("e2e-probes")? == 0).then_some(()) }).await;
    let p: Pod = kubectl_json(&["get", "pod", "e2e-probes"]).unwrap();
    let ready_cond = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready_cond.status, "False");
    let (ok, _, _) = kubectl(&["exec", "e2e-probes", "-c", "web", "--", "sh", "-c", "echo ok > /www/healthz"]);
    assert!(ok);
    wait_for("web ready again", Duration::from_secs(30), || async { container("e2e-probes", "web").filter(|c| c.ready).map(drop) }).await;
    assert_eq!(container("e2e-probes", "web").unwrap().restart_count, 0);
    // Ready again carries no reason or message: the patch clears the `ContainersNotReady` ones
    // (a strategic merge patch keeps fields it leaves out).
    wait_for("Ready=True without a reason", Duration::from_secs(30), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-probes"])?;
        let ready = p.status?.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some((ready.reason, ready.message))
    })
    .await;
    let p: Pod = kubectl_json(&["get", "pod", "e2e-probes"]).unwrap();
    let ready_cond = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready_cond.reason.as_deref(), ready_cond.message.as_deref()), (None, None), "{ready_cond:?}");

    // Deletion runs preStop before the container is stopped.
    let (ok, _, err) = kubectl(&["delete", "pod", "e2e-probes", "--wait=false"]);
    assert!(ok, "{err}");
    let prestop = hostdir.join("prestop");
    wait_for("preStop wrote its file", Duration::from_secs(30), || async {
        std::fs::read_to_string(&prestop).ok().filter(|t| t.contains("prestop"))
    })
    .await;
    wait_for("pod gone", Duration::from_secs(60), || async {
        let (ok, _, err) = kubectl(&["get", "pod", "e2e-probes"]);
        (!ok && err.contains("NotFound")).then_some(())
    })
    .await;
    kubectl(&["delete", "service", "e2e-probes", "--ignore-not-found"]);
    teardown(kubelet).await;
}

/// A container command that appends `<name>-up` to the shared log, and `<name>-term` on SIGTERM
/// (after `delay` seconds) before exiting 0.
fn traced(name: &str, delay: &str) -> String {
    format!(
        r#"["sh", "-c", "echo {name}-up >> /host/log; trap 'sleep {delay}; echo {name}-term >> /host/log; exit 0' TERM; while true; do sleep 0.2; done"]"#
    )
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn sidecars_termination_messages_deadlines_and_debug() {
    control_plane_ready().await;
    let node = TestNode::new();
    secure_config(&node); // kubectl logs reaches the kubelet server
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    let image = busybox_image();
    let job_dir = node.dir.path().join("job");
    let order_dir = node.dir.path().join("order");
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: e2e-job}}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  terminationGracePeriodSeconds: 10
  volumes: [{{name: host, hostPath: {{path: {job}, type: DirectoryOrCreate}}}}]
  initContainers:
  - name: proxy
    image: {image}
    imagePullPolicy: Never
    restartPolicy: Always
    command: {proxy}
    volumeMounts: [{{name: host, mountPath: /host}}]
  - name: setup
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "grep -q proxy-up /host/log && echo setup-done >> /host/log"]
    volumeMounts: [{{name: host, mountPath: /host}}]
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo main-ran >> /host/log; sleep 1"]
    volumeMounts: [{{name: host, mountPath: /host}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-order}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 20
  volumes: [{{name: host, hostPath: {{path: {order}, type: DirectoryOrCreate}}}}]
  initContainers:
  - {{name: s1, image: {image}, imagePullPolicy: Never, restartPolicy: Always, command: {s1}, volumeMounts: [{{name: host, mountPath: /host}}]}}
  - {{name: s2, image: {image}, imagePullPolicy: Never, restartPolicy: Always, command: {s2}, volumeMounts: [{{name: host, mountPath: /host}}]}}
  containers:
  - {{name: main, image: {image}, imagePullPolicy: Never, command: {main}, volumeMounts: [{{name: host, mountPath: /host}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-messages}}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  containers:
  - name: file
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "printf bye > /dev/termination-log; exit 3"]
  - name: custom-path
    image: {image}
    imagePullPolicy: Never
    terminationMessagePath: /tmp/why
    command: ["sh", "-c", "printf custom > /tmp/why"]
  - name: logs
    image: {image}
    imagePullPolicy: Never
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["sh", "-c", "echo from-logs; exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-oom}}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  containers:
  - name: hog
    image: {image}
    imagePullPolicy: Never
    command: ["tail", "/dev/zero"]
    resources: {{limits: {{memory: 32Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-debug-target}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: app, image: {image}, imagePullPolicy: Never, command: ["sleep", "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: e2e-deadline}}
spec:
  automountServiceAccountToken: false
  activeDeadlineSeconds: 5
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {image}, imagePullPolicy: Never, command: ["sleep", "3600"]}}
"#,
        job = job_dir.display(),
        order = order_dir.display(),
        proxy = traced("proxy", "0"),
        s1 = traced("s1", "0"),
        s2 = traced("s2", "1"),
        main = traced("main", "2"),
    );
    apply(&node, "lifecycle", &yaml);

    // Sidecar, then the regular init container (which saw the sidecar up), then main; the pod
    // succeeds when main does, and the sidecar is stopped after it.
    let job: Pod = wait_for("e2e-job Succeeded", Duration::from_secs(90), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-job"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(p)
    })
    .await;
    let log = wait_for("proxy stopped", Duration::from_secs(30), || async {
        let l = lines(&job_dir.join("log"));
        l.contains(&"proxy-term".to_string()).then_some(l)
    })
    .await;
    assert_eq!(log, ["proxy-up", "setup-done", "main-ran", "proxy-term"]);
    let inits = job.status.unwrap().init_container_statuses.unwrap();
    assert_eq!(inits.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["proxy", "setup"]);

    // Termination messages: from the file, from a custom path, from the logs on error.
    let messages: Pod = wait_for("e2e-messages Failed", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-messages"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await;
    let terminated = |name: &str| {
        let statuses = messages.status.as_ref().unwrap().container_statuses.as_ref().unwrap();
        let c = statuses.iter().find(|c| c.name == name).unwrap();
        c.state.as_ref().unwrap().terminated.clone().unwrap()
    };
    let file = terminated("file");
    assert_eq!((file.exit_code, file.reason.as_deref(), file.message.as_deref()), (3, Some("Error"), Some("bye")));
    let custom = terminated("custom-path");
    assert_eq!((custom.exit_code, custom.reason.as_deref(), custom.message.as_deref()), (0, Some("Completed"), Some("custom")));
    assert_eq!(terminated("logs").message.as_deref(), Some("from-logs\n"));

    // A container killed by the kernel for its memory limit: OOMKilled, 137.
    let oom: Pod = wait_for("e2e-oom Failed", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-oom"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await;
    let hog = oom.status.unwrap().container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!((hog.reason.as_deref(), hog.exit_code), (Some("OOMKilled"), 137));

    // activeDeadlineSeconds: Failed with DeadlineExceeded.
    let deadline: Pod = wait_for("e2e-deadline Failed", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-deadline"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await;
    let st = deadline.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(st.message.as_deref(), Some("Pod was active on the node longer than the specified deadline"));

    // kubectl debug: an ephemeral container in the target's process namespace sees its process,
    // runs once and is reported in ephemeralContainerStatuses.
    wait_for("e2e-debug-target running", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-debug-target"])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let (ok, _, err) = kubectl(&[
        "debug",
        "e2e-debug-target",
        &format!("--image={image}"),
        "--image-pull-policy=Never",
        "-c",
        "debugger",
        "--target=app",
        "--attach=false",
        "--",
        "sh",
        "-c",
        "ps -o args",
    ]);
    assert!(ok, "kubectl debug: {err}");
    let debugger = wait_for("debugger terminated", Duration::from_secs(60), || async {
        let p: Pod = kubectl_json(&["get", "pod", "e2e-debug-target"])?;
        let s = p.status?.ephemeral_container_statuses?.into_iter().find(|c| c.name == "debugger")?;
        s.state.as_ref()?.terminated.is_some().then_some(s)
    })
    .await;
    assert_eq!(debugger.state.unwrap().terminated.unwrap().exit_code, 0);
    let (ok, log, err) = kubectl(&["logs", "e2e-debug-target", "-c", "debugger"]);
    assert!(ok && log.contains("sleep 3600"), "the target's processes are visible: {log} {err}");

    // Deletion stops main first, then the sidecars in reverse order (s2 before s1), even though
    // main takes 2 s to stop and s2 1 s.
    wait_for("e2e-order running", Duration::from_secs(60), || async {
        let l = lines(&order_dir.join("log"));
        l.contains(&"main-up".to_string()).then_some(())
    })
    .await;
    let (ok, _, err) = kubectl(&["delete", "pod", "e2e-order", "--wait=false"]);
    assert!(ok, "{err}");
    let log = wait_for("all stopped", Duration::from_secs(40), || async {
        let l = lines(&order_dir.join("log"));
        (l.iter().filter(|x| x.ends_with("-term")).count() == 3).then_some(l)
    })
    .await;
    let terms: Vec<&str> = log.iter().filter(|x| x.ends_with("-term")).map(String::as_str).collect();
    assert_eq!(terms, ["main-term", "s2-term", "s1-term"], "{log:?}");
    for p in ["e2e-job", "e2e-messages", "e2e-deadline", "e2e-debug-target", "e2e-oom"] {
        kubectl(&["delete", "pod", p, "--wait=false"]);
    }
    teardown(kubelet).await;
}
