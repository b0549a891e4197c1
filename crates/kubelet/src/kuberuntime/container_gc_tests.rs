use super::*;
use kubelet_cri::ImageService;
use test_support::FakeRuntime;

fn container(id: &str, uid: &str, name: &str, created_at: i64, state: api::ContainerState) -> api::Container {
    api::Container {
        id: id.into(),
        pod_sandbox_id: format!("sb-{uid}"),
        created_at,
        state: state as i32,
        labels: [(POD_UID.to_string(), uid.to_string()), (CONTAINER_NAME.to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

fn sandbox(id: &str, uid: &str, created_at: i64, ready: bool) -> api::PodSandbox {
    api::PodSandbox {
        id: id.into(),
        created_at,
        state: if ready { api::PodSandboxState::SandboxReady } else { api::PodSandboxState::SandboxNotready } as i32,
        metadata: Some(api::PodSandboxMetadata { uid: uid.into(), ..Default::default() }),
        ..Default::default()
    }
}

fn ids<'a>(v: impl IntoIterator<Item = &'a api::Container>) -> Vec<&'a str> {
    let mut out: Vec<&str> = v.into_iter().map(|c| c.id.as_str()).collect();
    out.sort();
    out
}

#[test]
fn a_live_pod_keeps_the_newest_dead_instance_of_each_container_and_a_finished_pod_none() {
    use api::ContainerState::{ContainerCreated as Created, ContainerExited as Exited, ContainerRunning as Running};
    let all = vec![
        container("live-web-1", "live", "web", 1, Exited),
        container("live-web-2", "live", "web", 2, Exited),
        container("live-web-3", "live", "web", 3, Running),
        container("live-init-1", "live", "init", 1, Exited),
        container("done-main-1", "done", "main", 1, Exited),
        container("done-main-2", "done", "main", 2, Exited),
        container("done-stuck", "done", "side", 1, Created),
        container("live-side-1", "live", "side", 1, Exited),
        container("live-side-2", "live", "side", 2, Created),
        container("unlabelled", "", "x", 1, Exited),
    ];
    let mut all = all;
    all.last_mut().unwrap().labels.clear();
    let doomed = containers_to_remove(&all, &|uid| uid == "done");
    assert_eq!(
        ids(doomed),
        ["done-main-1", "done-main-2", "done-stuck", "live-side-1", "live-web-1"],
        "created (never started) containers count as dead, the newest instance stays"
    );
}

#[test]
fn stopped_sandboxes_go_when_empty_and_not_the_live_pods_newest() {
    let sandboxes = vec![
        sandbox("live-old", "live", 1, false),
        sandbox("live-new", "live", 2, true),
        sandbox("done-1", "done", 1, false),
        sandbox("done-2", "done", 2, false),
        sandbox("busy", "done2", 1, false),
    ];
    let left = container("c", "done2", "main", 1, api::ContainerState::ContainerExited);
    let left = api::Container { pod_sandbox_id: "busy".into(), ..left };
    let doomed = sandboxes_to_remove(&sandboxes, &[&left], &|uid| uid.starts_with("done"));
    let mut got: Vec<&str> = doomed.iter().map(|s| s.id.as_str()).collect();
    got.sort();
    assert_eq!(got, ["done-1", "done-2", "live-old"], "a ready sandbox and one still holding a container stay");
}

#[tokio::test]
async fn a_finished_pods_containers_and_sandbox_are_removed_on_the_runtime() {
    let runtime = FakeRuntime::with_images(["busybox"]);
    let logs = tempfile::tempdir().unwrap();
    let run = |uid: &'static str| {
        let runtime = runtime.clone();
        async move {
            let meta = api::PodSandboxMetadata { name: uid.into(), uid: uid.into(), namespace: "ns".into(), attempt: 0 };
            let sandbox_config = api::PodSandboxConfig { metadata: Some(meta), ..Default::default() };
            let sandbox = runtime.run_pod_sandbox(sandbox_config.clone(), "").await.unwrap();
            let config = api::ContainerConfig {
                metadata: Some(api::ContainerMetadata { name: "main".into(), attempt: 0 }),
                image: Some(api::ImageSpec { image: "busybox".into(), ..Default::default() }),
                labels: [(POD_UID.to_string(), uid.to_string()), (CONTAINER_NAME.to_string(), "main".to_string())].into(),
                ..Default::default()
            };
            let id = runtime.create_container(&sandbox, config, sandbox_config).await.unwrap();
            runtime.start_container(&id).await.unwrap();
            assert!(runtime.exit_container(&id, 0));
            runtime.stop_pod_sandbox(&sandbox).await.unwrap();
            (sandbox, id)
        }
    };
    let (done_sandbox, done) = run("done").await;
    let (live_sandbox, live) = run("live").await;
    let removed = delete_all_unused_containers(&runtime, logs.path(), &|uid| uid == "done").await.unwrap();
    assert_eq!((removed.containers, removed.sandboxes), (1, 1));
    assert!(!runtime.container_ids().contains(&done) && !runtime.sandbox_ids().contains(&done_sandbox));
    assert!(runtime.container_ids().contains(&live), "the live pod keeps its last dead instance");
    assert!(runtime.sandbox_ids().contains(&live_sandbox), "and its sandbox");
    assert!(runtime.image_status(&api::ImageSpec { image: "busybox".into(), ..Default::default() }).await.unwrap().is_some());
}
