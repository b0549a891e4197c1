//! End-to-end: the real kubelet binary runs static pods on the real containerd.
//!
//! Needs root and the containerd of `hack/node-env.sh`; run through `hack/test.sh`. Tests run one
//! at a time (nextest group `containerd`) because a kubelet owns every kubelet-labelled pod.

use std::path::Path;
use std::time::Duration;

use e2e::{KubeletProcess, TestNode, busybox_image, containers_of, remove_all_pods, sandboxes_of, wait_for};

const KUBELET: &str = env!("CARGO_BIN_EXE_kubelet");
const NEEDS: &str = "needs root and containerd: run hack/test.sh";

fn pod_yaml(name: &str, policy: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 3\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", {}]\n",
        busybox_image(),
        serde_json::to_string(script).unwrap()
    )
}

fn full(name: &str) -> String {
    format!("{name}-e2e-node")
}

fn restart_count(pod: &k8s_openapi::api::core::v1::Pod) -> i32 {
    pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|c| c[0].restart_count).unwrap_or(-1)
}

async fn start(node: &TestNode) -> KubeletProcess {
    remove_all_pods().await;
    start_keeping_pods(node).await
}

/// Starts a kubelet on `node` without removing the pods an earlier kubelet left running.
async fn start_keeping_pods(node: &TestNode) -> KubeletProcess {
    KubeletProcess::start(Path::new(KUBELET), node, &[]).await
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn pod_runs_and_writes_its_log_where_upstream_puts_it() {
    let _ = NEEDS;
    let node = TestNode::new();
    node.write_manifest("hello.yaml", &pod_yaml("hello", "Always", "echo hello from $(hostname); sleep 3600"));
    let kubelet = start(&node).await;
    let pod = node.wait_phase("hello", "Running", Duration::from_secs(60)).await;
    let status = pod.status.clone().unwrap();
    let ip = status.pod_ip.clone().unwrap_or_default();
    assert!(ip.starts_with("198.18."), "pod IP {ip:?} should come from the test CNI range");
    let uid = pod.metadata.uid.clone().unwrap();
    assert_eq!(uid.len(), 32, "static pod UIDs are md5 hex");
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("kubernetes.io/config.source").map(String::as_str), Some("file"));
    let cs = &status.container_statuses.unwrap()[0];
    assert!(cs.ready && cs.container_id.as_deref().unwrap_or_default().starts_with("containerd://"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    // The root directory is a shared mount (as upstream), for mount propagation into pods.
    let root = node.root().canonicalize().unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_mount = mountinfo.lines().rev().find(|l| l.split(' ').nth(4).map(Path::new) == Some(root.as_path()));
    assert!(root_mount.is_some_and(|l| l.contains(" shared:")), "root {} on a shared mount: {mountinfo}", root.display());

    let log = node.logs().join(format!("default_{}_{uid}/main/0.log", full("hello")));
    let text = wait_for("container log", Duration::from_secs(20), || async {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains("hello from"))
    })
    .await;
    // CRI log format: <RFC3339Nano> stdout F <line>
    let line = text.lines().next().unwrap();
    let fields: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!((fields[1], fields[2], fields[3]), ("stdout", "F", format!("hello from {}", full("hello")).as_str()));

    // Log shippers' view: /var/log/containers/<pod>_<ns>_<container>-<id>.log links to the log.
    let id = cs.container_id.as_deref().unwrap().trim_start_matches("containerd://").to_string();
    let link = Path::new("/var/log/containers").join(format!("{}_default_main-{id}.log", full("hello")));
    assert_eq!(std::fs::read_link(&link).unwrap(), log);

    // The sandbox carries upstream's labels, and the kubelet wrote the pod directory.
    let sb = sandboxes_of(&full("hello")).await;
    assert_eq!(sb.len(), 1);
    assert_eq!(sb[0].labels["io.kubernetes.pod.uid"], uid);
    assert_eq!(sb[0].labels["app"], "hello");
    assert!(node.root().join("pods").join(&uid).join("etc-hosts").exists());
    let (code, body) = e2e::http_get(&format!("127.0.0.1:{}", node.healthz_port), "/healthz").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "ok"));
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn exit_codes_drive_restarts_per_policy_with_growing_backoff() {
    let node = TestNode::new();
    node.write_manifest("crash.yaml", &pod_yaml("crash", "Always", "echo crashing; exit 3"));
    node.write_manifest("done.yaml", &pod_yaml("done", "OnFailure", "echo done; exit 0"));
    node.write_manifest("once.yaml", &pod_yaml("once", "Never", "exit 7"));
    node.write_manifest("retry.yaml", &pod_yaml("retry", "OnFailure", "exit 1"));
    let kubelet = start(&node).await;

    let done = node.wait_phase("done", "Succeeded", Duration::from_secs(60)).await;
    assert_eq!(restart_count(&done), 0);
    let once = node.wait_phase("once", "Failed", Duration::from_secs(60)).await;
    assert_eq!(restart_count(&once), 0);
    let term = once.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].state.clone().unwrap().terminated.unwrap();
    assert_eq!(term.exit_code, 7);

    // Restarts: the first is immediate, then 10 s, then 20 s (CrashLoopBackOff in between).
    let mut restart_times = vec![];
    for want in 1..=3 {
        wait_for(&format!("crash restart {want}"), Duration::from_secs(60), || async {
            node.pod("crash").await.filter(|p| restart_count(p) >= want)
        })
        .await;
        restart_times.push(tokio::time::Instant::now());
    }
    let gap1 = restart_times[1] - restart_times[0];
    let gap2 = restart_times[2] - restart_times[1];
    assert!(gap1 >= Duration::from_secs(9) && gap1 < Duration::from_secs(16), "second restart after {gap1:?}");
    assert!(gap2 >= Duration::from_secs(19) && gap2 < Duration::from_secs(27), "third restart after {gap2:?}");
    let cs = wait_for("crash in CrashLoopBackOff", Duration::from_secs(15), || async {
        let pod = node.pod("crash").await?;
        let cs = pod.status?.container_statuses?.into_iter().next()?;
        let waiting = cs.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
        (waiting == "CrashLoopBackOff").then_some(cs)
    })
    .await;
    let message = cs.state.as_ref().unwrap().waiting.as_ref().unwrap().message.clone().unwrap();
    assert!(message.starts_with("back-off 40s restarting failed container=main pod=crash-e2e-node_default("), "{message}");
    assert_eq!(cs.image, busybox_image());
    assert_eq!(cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 3);
    let retry = node.pod("retry").await.unwrap();
    assert!(restart_count(&retry) >= 2, "OnFailure restarts a failing container");
    // Old dead instances are garbage-collected: at most the running/latest plus one dead.
    assert!(containers_of(&full("crash")).await.len() <= 2);
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn manifest_edit_restarts_gracefully_and_removal_removes_the_sandbox() {
    let node = TestNode::new();
    let marks = tempfile::tempdir().unwrap();
    let script = "trap 'echo got-term > /marks/$(cat /etc/hostname)-$VERSION; exit 0' TERM; while true; do sleep 1; done";
    let manifest = |version: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  terminationGracePeriodSeconds: 10\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", {}]\n    env:\n    - name: VERSION\n      value: \"{version}\"\n    volumeMounts:\n    - name: marks\n      mountPath: /marks\n  volumes:\n  - name: marks\n    hostPath:\n      path: {}\n",
            busybox_image(),
            serde_json::to_string(script).unwrap(),
            marks.path().display()
        )
    };
    node.write_manifest("web.yaml", &manifest("v1"));
    let kubelet = start(&node).await;
    let v1 = node.wait_phase("web", "Running", Duration::from_secs(60)).await;
    let uid1 = v1.metadata.uid.clone().unwrap();

    node.write_manifest("web.yaml", &manifest("v2"));
    let v2 = wait_for("edited pod running with a new UID", Duration::from_secs(60), || async {
        node.pod("web").await.filter(|p| {
            p.metadata.uid.as_deref() != Some(uid1.as_str()) && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
    })
    .await;
    // The old container got SIGTERM and exited by itself within its grace period.
    let mark = marks.path().join(format!("{}-v1", full("web")));
    wait_for("SIGTERM mark of the old pod", Duration::from_secs(20), || async { mark.exists().then_some(()) }).await;
    wait_for("old sandbox removed", Duration::from_secs(30), || async {
        let sbs = sandboxes_of(&full("web")).await;
        (sbs.len() == 1 && sbs[0].labels["io.kubernetes.pod.uid"] == *v2.metadata.uid.as_ref().unwrap()).then_some(())
    })
    .await;
    assert!(!node.root().join("pods").join(&uid1).exists(), "old pod directory removed");

    node.remove_manifest("web.yaml");
    wait_for("sandbox removed after manifest removal", Duration::from_secs(30), || async {
        sandboxes_of(&full("web")).await.is_empty().then_some(())
    })
    .await;
    assert!(marks.path().join(format!("{}-v2", full("web"))).exists());
    assert!(node.pod("web").await.is_none());
    kubelet.stop().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn kubelet_restart_adopts_running_pods_without_restarting_them() {
    let node = TestNode::new();
    node.write_manifest("a.yaml", &pod_yaml("steady", "Always", "sleep 3600"));
    node.write_manifest("b.yaml", &pod_yaml("flaky", "Always", "sleep 2; exit 1"));
    let kubelet = start(&node).await;
    node.wait_phase("steady", "Running", Duration::from_secs(60)).await;
    wait_for("flaky restarted once", Duration::from_secs(60), || async { node.pod("flaky").await.filter(|p| restart_count(p) >= 1) }).await;
    let ids = |cs: Vec<kubelet_cri::api::Container>| {
        let mut v: Vec<(String, i32)> = cs.into_iter().map(|c| (c.id, c.state)).collect();
        v.sort();
        v
    };
    let steady_before = ids(containers_of(&full("steady")).await);
    let status = kubelet.stop().await;
    assert!(status.success(), "kubelet exits cleanly on SIGTERM: {status:?}");

    // Pods keep running while the kubelet is down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ids(containers_of(&full("steady")).await), steady_before);

    let kubelet = KubeletProcess::start(Path::new(KUBELET), &node, &[]).await;
    let pod = node.wait_phase("steady", "Running", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ids(containers_of(&full("steady")).await), steady_before, "no container was recreated");
    assert_eq!(restart_count(&pod), 0);
    let flaky = node.pod("flaky").await.unwrap();
    assert!(restart_count(&flaky) >= 1, "restart count is recovered from the runtime");
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn a_failed_kubelet_task_exits_non_zero_naming_it_and_pods_keep_running() {
    let node = TestNode::new();
    node.write_manifest("a.yaml", &pod_yaml("steady", "Always", "sleep 3600"));
    let kubelet = start(&node).await;
    node.wait_phase("steady", "Running", Duration::from_secs(60)).await;
    let before: Vec<String> = containers_of(&full("steady")).await.into_iter().map(|c| c.id).collect();
    assert!(kubelet.stop().await.success());

    // Something else holds the read-only port: the server task fails, and the kubelet stops
    // (non-zero, for its service manager to restart it) instead of running without it.
    let taken = std::net::TcpListener::bind(("127.0.0.1", node.read_only_port)).expect("bind the read-only port");
    let mut child = tokio::process::Command::new(KUBELET)
        .arg(format!("--config={}", node.config_path().display()))
        .arg(format!("--root-dir={}", node.root().display()))
        .arg(format!("--hostname-override={}", "e2e-node"))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn kubelet");
    let mut stderr = child.stderr.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("kubelet exits").unwrap();
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut log).await.unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let want = format!("kubelet: read-only server on 127.0.0.1:{}", node.read_only_port);
    assert!(log.contains(&want), "the failed task is named ({want}): {log}");
    drop(taken);

    let after: Vec<String> = containers_of(&full("steady")).await.into_iter().map(|c| c.id).collect();
    assert_eq!(after, before, "the pod's container kept running");
    let kubelet = start_keeping_pods(&node).await;
    let pod = node.wait_phase("steady", "Running", Duration::from_secs(30)).await;
    assert_eq!(restart_count(&pod), 0);
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn a_manifest_removed_and_written_again_restarts_its_pod_with_restart_count_one() {
    let node = TestNode::new();
    let manifest = pod_yaml("again", "Always", "sleep 3600");
    node.write_manifest("again.yaml", &manifest);
    let kubelet = start(&node).await;
    let first = node.wait_phase("again", "Running", Duration::from_secs(60)).await;
    // Removed, then written again unchanged (same UID) while the pod takes its 3 s grace to stop.
    node.remove_manifest("again.yaml");
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.write_manifest("again.yaml", &manifest);
    let pod = wait_for("the pod running again with restart count 1", Duration::from_secs(60), || async {
        node.pod("again").await.filter(|p| restart_count(p) == 1 && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    assert_eq!(pod.metadata.uid, first.metadata.uid, "the same pod, as upstream's mirror-pod conformance spec expects");
    assert_eq!(containers_of(&full("again")).await.len(), 2, "the stopped container is kept beside the new one");
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn broken_manifests_are_reported_and_do_not_affect_good_pods() {
    let node = TestNode::new();
    node.write_manifest("good.yaml", &pod_yaml("good", "Always", "sleep 3600"));
    node.write_manifest("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [not, a, map\n");
    node.write_manifest("wrongkind.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n");
    node.write_manifest(
        "invalid.json",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"Bad_Name\"},\"spec\":{\"containers\":[]}}",
    );
    let kubelet = start(&node).await;
    node.wait_phase("good", "Running", Duration::from_secs(60)).await;
    let log = wait_for("errors for each broken file", Duration::from_secs(20), || async {
        let log = kubelet.log_text();
        ["broken.yaml", "wrongkind.yaml", "invalid.json"].iter().all(|f| log.contains(f)).then_some(log)
    })
    .await;
    assert!(log.contains("Service"), "wrong kind is named: {log}");
    assert_eq!(node.pods().await.len(), 1);
    // Fixing a broken file brings its pod up; the good pod is untouched.
    let good_ids = containers_of(&full("good")).await;
    node.write_manifest("broken.yaml", &pod_yaml("fixed", "Always", "sleep 3600"));
    node.wait_phase("fixed", "Running", Duration::from_secs(60)).await;
    assert_eq!(containers_of(&full("good")).await.len(), good_ids.len());
    kubelet.stop().await;
    remove_all_pods().await;
}

/// Serves `body` for every request on 127.0.0.1; returns the URL.
async fn serve_manifest(body: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/pods.yaml")
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn manifest_url_pods_run_and_follow_the_url() {
    let node = TestNode::new();
    node.write_config("httpCheckFrequency: 1s\n");
    let body = std::sync::Arc::new(std::sync::Mutex::new(pod_yaml("fromurl", "Always", "sleep 3600")));
    let url = serve_manifest(body.clone()).await;
    remove_all_pods().await;
    let kubelet = KubeletProcess::start(Path::new(KUBELET), &node, &[&format!("--manifest-url={url}")]).await;
    let pod = node.wait_phase("fromurl", "Running", Duration::from_secs(60)).await;
    let annotations = pod.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get("kubernetes.io/config.source").map(String::as_str), Some("http"));
    // The URL now serves nothing: the pod goes away.
    *body.lock().unwrap() = "apiVersion: v1\nkind: PodList\nitems: []\n".into();
    wait_for("url pod removed", Duration::from_secs(30), || async { sandboxes_of(&full("fromurl")).await.is_empty().then_some(()) }).await;
    kubelet.stop().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn standalone_probes_gate_readiness_and_restart_on_liveness_failure() {
    let node = TestNode::new();
    // Ready only once /tmp/ready exists (after 3 s); alive only while /tmp/alive exists (removed
    // after 8 s): readiness turns true, then liveness fails and the container is restarted.
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: probed\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", \"touch /tmp/alive; sleep 3; touch /tmp/ready; sleep 5; rm /tmp/alive; sleep 3600\"]\n    readinessProbe:\n      exec: {{command: [\"test\", \"-f\", \"/tmp/ready\"]}}\n      periodSeconds: 1\n    livenessProbe:\n      exec: {{command: [\"test\", \"-f\", \"/tmp/alive\"]}}\n      periodSeconds: 1\n      failureThreshold: 2\n",
        busybox_image()
    );
    node.write_manifest("probed.yaml", &yaml);
    let kubelet = start(&node).await;
    let pod = node.wait_phase("probed", "Running", Duration::from_secs(60)).await;
    let cs = &pod.status.unwrap().container_statuses.unwrap()[0];
    assert!(!cs.ready, "not ready before its readiness probe passed");
    wait_for("ready", Duration::from_secs(30), || async {
        let p = node.pod("probed").await?;
        p.status?.container_statuses?[0].ready.then_some(())
    })
    .await;
    wait_for("restarted by liveness", Duration::from_secs(60), || async {
        let p = node.pod("probed").await?;
        (restart_count(&p) >= 1).then_some(())
    })
    .await;
    let log = kubelet.log_text();
    assert!(log.contains("Liveness probe failed"), "the Unhealthy event is logged");
    assert!(log.contains("Container main failed liveness probe, will be restarted"), "the Killing event is logged");
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn directories_of_a_pod_deleted_while_the_kubelet_was_down_are_removed() {
    let node = TestNode::new();
    node.write_manifest("keeper.yaml", &pod_yaml("keeper", "Always", "sleep 3600"));
    let goner = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: goner\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: scratch\n    emptyDir: {{medium: Memory}}\n  containers:\n  - name: main\n    image: {}\n    command: [\"sh\", \"-c\", \"echo hi > /scratch/f; sleep 3600\"]\n    volumeMounts: [{{name: scratch, mountPath: /scratch}}]\n",
        busybox_image()
    );
    node.write_manifest("goner.yaml", &goner);
    let kubelet = start(&node).await;
    let keeper = node.wait_phase("keeper", "Running", Duration::from_secs(60)).await;
    let gone = node.wait_phase("goner", "Running", Duration::from_secs(60)).await;
    let (keeper_uid, gone_uid) = (keeper.metadata.uid.unwrap(), gone.metadata.uid.unwrap());
    assert!(kubelet.stop().await.success());

    // While the kubelet is down the pod's manifest goes and its sandbox is removed from the
    // runtime: only its directories, its tmpfs and its logs remain.
    node.remove_manifest("goner.yaml");
    let rt = e2e::cri();
    for s in sandboxes_of(&full("goner")).await {
        use kubelet_cri::RuntimeService;
        rt.stop_pod_sandbox(&s.id).await.unwrap();
        rt.remove_pod_sandbox(&s.id).await.unwrap();
    }
    let pod_dir = node.root().join("pods").join(&gone_uid);
    let log_dir = node.logs().join(format!("default_{}_{gone_uid}", full("goner")));
    let mounted = |dir: &Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|m| Path::new(m).starts_with(dir)))
    };
    assert!(pod_dir.is_dir() && log_dir.is_dir() && mounted(&pod_dir), "the deleted pod left its directories and tmpfs");
    // Its container's `/var/log/containers` link, which dangles once the log directory goes.
    let link_prefix = format!("{}_default_main-", full("goner"));
    let links = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/var/log/containers")
            .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&link_prefix)).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    assert!(!links().is_empty(), "the deleted pod's container log link is there before the restart");

    let kubelet = start_keeping_pods(&node).await;
    wait_for("the orphaned pod's directories removed", Duration::from_secs(30), || async {
        (!pod_dir.exists() && !log_dir.exists()).then_some(())
    })
    .await;
    assert!(!mounted(&pod_dir), "its tmpfs was unmounted");
    // Removed right after its log directory (in the same sweep), not at the next minute's.
    wait_for("its container log link removed", Duration::from_secs(5), || async { links().is_empty().then_some(()) }).await;
    assert!(node.root().join("pods").join(&keeper_uid).is_dir(), "the running pod's directory stays");
    assert!(node.logs().join(format!("default_{}_{keeper_uid}", full("keeper"))).is_dir(), "the running pod's logs stay");
    assert!(kubelet.log_text().contains("removed the directory of an orphaned pod"));
    kubelet.stop().await;
    remove_all_pods().await;
}

#[tokio::test]
#[ignore = "needs root and containerd: run hack/test.sh"]
async fn an_image_volume_is_mounted_read_only_and_a_missing_one_is_err_image_never_pull() {
    let node = TestNode::new();
    let image = busybox_image();
    // Mounted whole at /tools, and its `bin` directory alone at /sub (a subPath, which the
    // runtime resolves inside the image: CRI `Mount.image_sub_path`).
    let pod = |name: &str, volume_image: &str, sub_path: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: tools\n    image: {{reference: {volume_image}, pullPolicy: Never}}\n  containers:\n  - name: main\n    image: {image}\n    command: [\"sh\", \"-c\", \"/tools/bin/busybox echo from-the-image-volume; touch /tools/x 2>/dev/null || echo read-only; /sub/busybox echo from-the-sub-path; sleep 3600\"]\n    volumeMounts: [{{name: tools, mountPath: /tools}}, {{name: tools, mountPath: /sub, subPath: {sub_path}}}]\n"
        )
    };
    node.write_manifest("imgvol.yaml", &pod("imgvol", &image, "bin"));
    node.write_manifest("imgvol-missing.yaml", &pod("imgvol-missing", "localhost/knode/absent:1.0", "bin"));
    node.write_manifest("imgvol-badsub.yaml", &pod("imgvol-badsub", &image, "no/such/dir"));
    let kubelet = start(&node).await;
    node.wait_phase("imgvol", "Running", Duration::from_secs(60)).await;
    let log_dir = node.logs().join(format!("default_{}_{}", full("imgvol"), node.pod("imgvol").await.unwrap().metadata.uid.unwrap()));
    wait_for("the container read the image volume", Duration::from_secs(30), || async {
        let log = std::fs::read_to_string(log_dir.join("main/0.log")).ok()?;
        (log.contains("from-the-image-volume") && log.contains("read-only") && log.contains("from-the-sub-path")).then_some(())
    })
    .await;
    // The waiting message of a pod's container once its reason is `reason`.
    let waiting_with = |name: &'static str, reason: &'static str| {
        let node = &node;
        wait_for(reason, Duration::from_secs(30), move || async move {
            let p = node.pod(name).await?;
            let w = p.status?.container_statuses?.first()?.state.clone()?.waiting?;
            (w.reason.as_deref() == Some(reason)).then_some(w.message.unwrap_or_default())
        })
    };
    let bad_sub = waiting_with("imgvol-badsub", "CreateContainerError").await;
    assert!(bad_sub.contains("no/such/dir"), "the runtime names the sub-path the image lacks: {bad_sub}");
    let waiting = waiting_with("imgvol-missing", "ErrImageNeverPull").await;
    assert!(
        waiting
            .starts_with("image volume \"tools\": Container image \"localhost/knode/absent:1.0\" is not present with pull policy of Never"),
        "{waiting}"
    );
    kubelet.stop().await;
    remove_all_pods().await;
}
