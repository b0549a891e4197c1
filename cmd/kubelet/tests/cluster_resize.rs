//! End-to-end, cluster mode: in-place pod resize through the API server's `resize` subresource
//! on our kubelet with pod cgroups (a cgroup tree of the test's own). A Burstable pod's two
//! containers grow in CPU and memory: one in place (same container, no restart), one restarted
//! because its `resizePolicy` asks for it for memory. The new values are checked in the
//! container and pod cgroups under `/sys/fs/cgroup`, in `status.containerStatuses[].resources`
//! and `allocatedResources`, with `observedGeneration` caught up, no resize condition left and
//! upstream's events. A kubelet restart afterwards restarts nothing and keeps the allocation.
//! A resize with no room next to another pod stays `PodResizePending` (`Deferred`), changes
//! nothing on the node, and is applied once that pod is gone; shrinking back is applied in place.
//! When two deferred resizes wait for the same room, the pod of the higher `priority` gets it,
//! though the other waited longer; their conditions survive a kubelet restart.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, wait_for};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

const CGROUP_ROOT: &str = "knode-e2e-resize";
const POD: &str = "e2e-resize";

fn pod_yaml() -> String {
    let image = e2e::busybox_image();
    let container = |name: &str, memory_policy: &str| {
        format!(
            "  - name: {name}\n    image: {image}\n    imagePullPolicy: Never\n    command: [sh, -c, 'sleep 100000']\n\
             \x20   resources: {{requests: {{cpu: 20m, memory: 35Mi}}, limits: {{cpu: 30m, memory: 45Mi}}}}\n\
             \x20   resizePolicy: [{{resourceName: cpu, restartPolicy: NotRequired}}, {{resourceName: memory, restartPolicy: {memory_policy}}}]\n"
        )
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {POD}, namespace: default}}\nspec:\n  terminationGracePeriodSeconds: 1\n  automountServiceAccountToken: false\n  containers:\n{}{}",
        container("inplace", "NotRequired"),
        container("restarts", "RestartContainer")
    )
}

fn resize(patch: &str) {
    let (ok, _, err) = kubectl(&["patch", "pod", POD, "--subresource", "resize", "-p", patch]);
    assert!(ok, "kubectl patch --subresource resize: {err}");
}

fn get_pod() -> Option<Pod> {
    kubectl_json(&["get", "pod", POD])
}

fn statuses(p: &Pod) -> Vec<ContainerStatus> {
    p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default()
}

fn status_of(p: &Pod, name: &str) -> ContainerStatus {
    statuses(p).into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no status for {name}: {p:?}"))
}

fn events() -> String {
    let (_, out, _) = kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={POD}"),
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    out
}

fn conditions(p: &Pod) -> Vec<(String, String, String)> {
    let cs = p.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    cs.into_iter()
        .filter(|c| c.type_.starts_with("PodResize"))
        .map(|c| (c.type_, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
        .collect()
}

/// Waits until the kubelet observed the pod's generation and no resize is pending or in
/// progress; returns the pod.
async fn resize_settled(what: &str) -> Pod {
    wait_for(what, Duration::from_secs(60), || async {
        let p = get_pod()?;
        let observed = p.status.as_ref()?.observed_generation?;
        (observed >= p.metadata.generation? && conditions(&p).is_empty() && statuses(&p).iter().all(|c| c.ready)).then_some(p)
    })
    .await
}

/// A value from the pod's or a container's cgroup (`container_id` `None`: the pod's).
fn cgroup_value(p: &Pod, container_id: Option<&str>, controller: &str, file: &str) -> String {
    let uid = p.metadata.uid.as_deref().unwrap();
    let mut dir = std::path::PathBuf::from(format!("/sys/fs/cgroup/{controller}/{CGROUP_ROOT}/kubepods/burstable/pod{uid}"));
    if let Some(id) = container_id {
        dir.push(id);
    }
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display())).trim().to_string()
}

fn bare_id(c: &ContainerStatus) -> String {
    c.container_id.as_deref().unwrap().split_once("://").unwrap().1.to_string()
}

fn quantity(c: &ContainerStatus, limits: bool, resource: &str) -> String {
    let r = c.resources.as_ref().unwrap_or_else(|| panic!("no status resources: {c:?}"));
    let list = if limits { r.limits.as_ref() } else { r.requests.as_ref() };
    list.and_then(|l| l.get(resource)).map(|q| q.0.clone()).unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn resize_in_place_with_restart_policy_and_infeasible() {
    control_plane_ready().await;
    let node = TestNode::new();
    let kubelet = start_kubelet_with_pod_cgroups(&node, CGROUP_ROOT).await;
    kubectl(&["delete", "pod", POD, "--force", "--grace-period=0", "--ignore-not-found"]);
    kubectl(&["delete", "events", "--field-selector", &format!("involvedObject.name={POD}")]);
    apply(&node, "resize", &pod_yaml());
    pod_running(POD, Duration::from_secs(90)).await;
    let before = resize_settled("the pod ready with its resources reported").await;
    let inplace = status_of(&before, "inplace");
    assert_eq!((quantity(&inplace, false, "cpu"), quantity(&inplace, true, "memory")), ("20m".into(), "45Mi".into()), "{inplace:?}");
    assert_eq!(inplace.allocated_resources.as_ref().unwrap()["memory"].0, "35Mi");
    let inplace_id = bare_id(&inplace);
    // The pod cgroup: 2 × 30m of quota, 2 × 45Mi of memory.
    assert_eq!(cgroup_value(&before, None, "cpu", "cpu.cfs_quota_us"), "6000");
    assert_eq!(cgroup_value(&before, None, "memory", "memory.limit_in_bytes"), (90u64 << 20).to_string());

    // Both grow: CPU in place for both, memory in place for one and by a restart for the other.
    let grow = r#"{"spec":{"containers":[
        {"name":"inplace","resources":{"requests":{"cpu":"25m","memory":"40Mi"},"limits":{"cpu":"40m","memory":"50Mi"}}},
        {"name":"restarts","resources":{"requests":{"cpu":"20m","memory":"40Mi"},"limits":{"cpu":"30m","memory":"50Mi"}}}]}}"#;
    resize(grow);
    let after = resize_settled("the resize applied").await;
    let (inplace, restarted) = (status_of(&after, "inplace"), status_of(&after, "restarts"));
    assert_eq!(bare_id(&inplace), inplace_id, "resized in place, not recreated");
    assert_eq!((inplace.restart_count, restarted.restart_count), (0, 1), "{:?}", statuses(&after));
    assert_eq!(
        (quantity(&inplace, false, "cpu"), quantity(&inplace, true, "cpu"), quantity(&inplace, true, "memory")),
        ("25m".into(), "40m".into(), "50Mi".into())
    );
    assert_eq!(restarted.allocated_resources.as_ref().unwrap()["memory"].0, "40Mi");
    assert_eq!(cgroup_value(&after, Some(&inplace_id), "cpu", "cpu.cfs_quota_us"), "4000");
    assert_eq!(cgroup_value(&after, Some(&inplace_id), "cpu", "cpu.shares"), "25");
    assert_eq!(cgroup_value(&after, Some(&inplace_id), "memory", "memory.limit_in_bytes"), (50u64 << 20).to_string());
    assert_eq!(cgroup_value(&after, Some(&bare_id(&restarted)), "memory", "memory.limit_in_bytes"), (50u64 << 20).to_string());
    assert_eq!(cgroup_value(&after, None, "cpu", "cpu.cfs_quota_us"), "7000");
    assert_eq!(cgroup_value(&after, None, "memory", "memory.limit_in_bytes"), (100u64 << 20).to_string());
    let ev = events();
    assert!(ev.contains("ResizeStarted: Pod resize started: {\"containers\":[{\"name\":\"inplace\""), "{ev}");
    assert!(ev.contains("ResizeCompleted: Pod resize completed"), "{ev}");
    assert!(ev.contains("Killing: Container restarts resize requires restart"), "{ev}");

    // A kubelet restart keeps everything as it is.
    let log = node.logs();
    kubelet.stop().await;
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = resize_settled("the pod after a kubelet restart").await;
    assert_eq!(status_of(&again, "inplace").restart_count, 0, "{log:?}");
    assert_eq!(status_of(&again, "restarts").restart_count, 1);
    assert_eq!(quantity(&status_of(&again, "inplace"), true, "memory"), "50Mi");

    // More than the node has room for next to another pod (the API server itself refuses more
    // than the node's allocatable): Deferred, nothing changes on the node; applied once the
    // other pod is gone.
    let node_obj = wait_node_ready(Duration::from_secs(10)).await;
    let alloc_cpu = node_obj.status.as_ref().and_then(|s| s.allocatable.as_ref()).and_then(|a| a.get("cpu")).map(|q| q.0.clone()).unwrap();
    let alloc_milli: i64 = alloc_cpu.strip_suffix('m').map_or_else(|| alloc_cpu.parse::<i64>().unwrap() * 1000, |m| m.parse().unwrap());
    let hog = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {POD}-hog, namespace: default}}\nspec:\n  terminationGracePeriodSeconds: 1\n  automountServiceAccountToken: false\n  containers:\n  - name: hog\n    image: {}\n    imagePullPolicy: Never\n    command: [sh, -c, 'sleep 100000']\n    resources: {{requests: {{cpu: {}m}}}}\n",
        e2e::busybox_image(),
        alloc_milli - 300
    );
    apply(&node, "hog", &hog);
    pod_running(&format!("{POD}-hog"), Duration::from_secs(60)).await;
    resize(r#"{"spec":{"containers":[{"name":"inplace","resources":{"requests":{"cpu":"400m"},"limits":{"cpu":"400m"}}}]}}"#);
    let pending = wait_for("PodResizePending Deferred", Duration::from_secs(30), || async {
        let p = get_pod()?;
        conditions(&p).into_iter().find(|(t, r, _)| t == "PodResizePending" && r == "Deferred").map(|c| (p, c))
    })
    .await;
    assert!(pending.1.2.starts_with("Node didn't have enough resource: cpu, requested: 420, used: "), "{:?}", pending.1);
    assert_eq!(quantity(&status_of(&pending.0, "inplace"), true, "cpu"), "40m");
    assert_eq!(cgroup_value(&pending.0, Some(&inplace_id), "cpu", "cpu.cfs_quota_us"), "4000");
    assert!(events().contains("ResizeDeferred: Pod resize Deferred"), "{}", events());
    kubectl(&["delete", "pod", &format!("{POD}-hog"), "--grace-period=1"]);
    let applied = resize_settled("the deferred resize applied once the other pod went").await;
    assert_eq!(quantity(&status_of(&applied, "inplace"), true, "cpu"), "400m");
    assert_eq!(cgroup_value(&applied, Some(&inplace_id), "cpu", "cpu.cfs_quota_us"), "40000");

    // Back to the original: applied in place (shrinking), the pending resize gone.
    let shrink = r#"{"spec":{"containers":[{"name":"inplace","resources":{"requests":{"cpu":"20m","memory":"35Mi"},"limits":{"cpu":"30m","memory":"45Mi"}}}]}}"#;
    resize(shrink);
    let shrunk = resize_settled("the shrink applied").await;
    let inplace = status_of(&shrunk, "inplace");
    assert_eq!((bare_id(&inplace), inplace.restart_count), (inplace_id.clone(), 0));
    assert_eq!(cgroup_value(&shrunk, Some(&inplace_id), "memory", "memory.limit_in_bytes"), (45u64 << 20).to_string());
    assert_eq!(cgroup_value(&shrunk, None, "memory", "memory.limit_in_bytes"), (95u64 << 20).to_string());
    assert_eq!(cgroup_value(&shrunk, None, "cpu", "cpu.cfs_quota_us"), "6000");

    teardown(kubelet).await;
    remove_test_cgroups(CGROUP_ROOT);
}

/// Deletes the queue test's pods and PriorityClass when dropped, also when the test fails: a
/// resized pod left bound to the node would take CPU the scheduler counts for later tests.
struct QueueCleanup(&'static [&'static str]);

impl QueueCleanup {
    fn clean(&self) {
        for p in self.0 {
            kubectl(&["delete", "pod", p, "--force", "--grace-period=0", "--ignore-not-found"]);
        }
        kubectl(&["delete", "priorityclass", "e2e-resize-high", "--ignore-not-found"]);
    }
}

impl Drop for QueueCleanup {
    fn drop(&mut self) {
        self.clean();
    }
}

fn small_pod(name: &str, priority_class: Option<&str>) -> String {
    let class = priority_class.map(|c| format!("  priorityClassName: {c}\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{class}  terminationGracePeriodSeconds: 1\n  automountServiceAccountToken: false\n  containers:\n  - name: c\n    image: {}\n    imagePullPolicy: Never\n    command: [sh, -c, 'sleep 100000']\n    resources: {{requests: {{cpu: 20m}}}}\n",
        e2e::busybox_image()
    )
}

fn pending_of(name: &str) -> Option<(String, String, String)> {
    let p: Pod = kubectl_json(&["get", "pod", name])?;
    let c = p.status?.conditions?.into_iter().find(|c| c.type_ == "PodResizePending")?;
    Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default(), c.last_transition_time.map(|t| t.0.to_string()).unwrap_or_default()))
}

fn cpu_request_of(name: &str) -> Option<String> {
    let p: Pod = kubectl_json(&["get", "pod", name])?;
    let c = p.status?.container_statuses?.into_iter().next()?;
    Some(c.allocated_resources?.get("cpu")?.0.clone())
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn deferred_resizes_get_freed_room_by_priority_across_a_restart() {
    const ROOT: &str = "knode-e2e-resize-queue";
    const HOG: &str = "e2e-rq-hog";
    const LOW: &str = "e2e-rq-low";
    const HIGH: &str = "e2e-rq-high";
    control_plane_ready().await;
    let node = TestNode::new();
    let kubelet = start_kubelet_with_pod_cgroups(&node, ROOT).await;
    let cleanup = QueueCleanup(&[HOG, LOW, HIGH]);
    // What an earlier run left goes first.
    cleanup.clean();
    apply(&node, "priority", "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: e2e-resize-high}\nvalue: 1000\n");
    let node_obj = wait_node_ready(Duration::from_secs(30)).await;
    let alloc_cpu = node_obj.status.as_ref().and_then(|s| s.allocatable.as_ref()).and_then(|a| a.get("cpu")).map(|q| q.0.clone()).unwrap();
    let alloc: i64 = alloc_cpu.strip_suffix('m').map_or_else(|| alloc_cpu.parse::<i64>().unwrap() * 1000, |m| m.parse().unwrap());
    // The hog leaves room for the two small pods but not for either resize; without it there is
    // room for one resize (each asks for more than half the node), not both.
    let hog = small_pod(HOG, None).replace("cpu: 20m", &format!("cpu: {}m", alloc - 1000));
    apply(&node, "hog", &hog);
    apply(&node, "low", &small_pod(LOW, None));
    apply(&node, "high", &small_pod(HIGH, Some("e2e-resize-high")));
    for p in [HOG, LOW, HIGH] {
        pod_running(p, Duration::from_secs(60)).await;
    }
    let want = alloc / 2 + 100;
    let patch = format!(r#"{{"spec":{{"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{want}m"}}}}}}]}}}}"#);
    // The low-priority pod asks first, so it has waited longer.
    for p in [LOW, HIGH] {
        let (ok, _, err) = kubectl(&["patch", "pod", p, "--subresource", "resize", "-p", &patch]);
        assert!(ok, "resize {p}: {err}");
        wait_for(&format!("{p} Deferred"), Duration::from_secs(30), || async { pending_of(p).filter(|c| c.0 == "Deferred") }).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let low_since = pending_of(LOW).unwrap().2;

    // A kubelet restart: both stay deferred, and the condition keeps its transition time.
    kubelet.stop().await;
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for p in [LOW, HIGH] {
        let c = pending_of(p).unwrap_or_else(|| panic!("{p}: the resize is no longer pending after the restart"));
        assert_eq!(c.0, "Deferred", "{p}: {c:?}");
    }
    assert_eq!(pending_of(LOW).unwrap().2, low_since, "the transition time survives the restart");

    // The hog goes: the room goes to the higher priority, at once (not at a periodic retry).
    kubectl(&["delete", "pod", HOG, "--grace-period=1"]);
    let want_q = format!("{want}m");
    wait_for("the high-priority resize allocated", Duration::from_secs(20), || async {
        cpu_request_of(HIGH).filter(|c| *c == want_q && pending_of(HIGH).is_none())
    })
    .await;
    let low = pending_of(LOW).expect("the low-priority resize still waits");
    assert_eq!(low.0, "Deferred", "{low:?}");
    assert_eq!(cpu_request_of(LOW).as_deref(), Some("20m"));
    // The high-priority pod goes too: now the other one fits.
    kubectl(&["delete", "pod", HIGH, "--grace-period=1"]);
    wait_for("the low-priority resize allocated", Duration::from_secs(20), || async {
        cpu_request_of(LOW).filter(|c| *c == want_q && pending_of(LOW).is_none())
    })
    .await;

    teardown(kubelet).await;
    drop(cleanup);
    remove_test_cgroups(ROOT);
}
