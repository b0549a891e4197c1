//! Behaviour of `FakeRuntime` that kubelet tests rely on: lifecycles, filters, injected failures.

use std::collections::HashMap;
use std::time::Duration;

use kubelet_cri::{Code, CriError, ImageService, RuntimeService, api};
use test_support::FakeRuntime;

fn sandbox_config(name: &str) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        log_directory: format!("/var/log/pods/default_{name}"),
        labels: HashMap::from([("app".to_owned(), name.to_owned())]),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: name.to_owned(), attempt: 0 }),
        image: Some(api::ImageSpec { image: image.to_owned(), ..Default::default() }),
        log_path: format!("{name}/0.log"),
        labels: HashMap::from([("container".to_owned(), name.to_owned())]),
        ..Default::default()
    }
}

async fn running_container(fake: &FakeRuntime, pod: &str, name: &str) -> (String, String) {
    let sandbox = fake.run_pod_sandbox(sandbox_config(pod), "").await.expect("sandbox");
    let id = fake.create_container(&sandbox, container_config(name, "busybox"), sandbox_config(pod)).await.expect("create");
    fake.start_container(&id).await.expect("start");
    (sandbox, id)
}

#[tokio::test(start_paused = true)]
async fn lifecycle_records_calls_and_timestamps() {
    let fake = FakeRuntime::with_images(["busybox"]);
    let (sandbox, id) = running_container(&fake, "nginx", "web").await;
    assert_eq!(sandbox.len(), 64);
    let status = fake.container_status(&id).await.expect("status");
    assert_eq!(status.state, api::ContainerState::ContainerRunning as i32);
    assert!(status.started_at >= status.created_at && status.created_at > 0);
    assert_eq!(status.log_path, "/var/log/pods/default_nginx/web/0.log");
    assert!(status.image_ref.starts_with("sha256:"));

    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(fake.exit_container(&id, 3));
    let status = fake.container_status(&id).await.expect("status");
    assert_eq!((status.exit_code, status.reason.as_str()), (3, "Error"));
    assert!(status.finished_at - status.started_at >= 5_000_000_000);

    assert_eq!(
        fake.calls(),
        [
            "RunPodSandbox nginx".to_owned(),
            "CreateContainer web".to_owned(),
            format!("StartContainer {id}"),
            format!("ContainerStatus {id}"),
            format!("ContainerStatus {id}"),
        ]
    );
    let sandbox_status = fake.pod_sandbox_status(&sandbox).await.expect("sandbox status");
    assert!(sandbox_status.network.expect("network").ip.starts_with("198.18.0."));
}

#[tokio::test]
async fn stop_and_remove_sandbox_cascade_to_containers() {
    let fake = FakeRuntime::with_images(["busybox"]);
    let (sandbox, id) = running_container(&fake, "nginx", "web").await;
    fake.stop_pod_sandbox(&sandbox).await.expect("stop");
    let status = fake.container_status(&id).await.expect("status");
    assert_eq!(status.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(status.exit_code, 137);
    let err =
        fake.create_container(&sandbox, container_config("late", "busybox"), sandbox_config("nginx")).await.expect_err("sandbox not ready");
    assert!(matches!(err, CriError::Status { code: Code::FailedPrecondition, .. }), "{err}");

    fake.remove_pod_sandbox(&sandbox).await.expect("remove");
    assert!(fake.container_status(&id).await.expect_err("gone").is_not_found());
    assert!(fake.sandbox_ids().is_empty() && fake.container_ids().is_empty());
    fake.remove_pod_sandbox(&sandbox).await.expect("remove is idempotent");
}

#[tokio::test]
async fn list_filters_like_containerd() {
    let fake = FakeRuntime::with_images(["busybox"]);
    let (sandbox_a, web) = running_container(&fake, "a", "web").await;
    let (_sandbox_b, _db) = running_container(&fake, "b", "db").await;
    fake.exit_container(&web, 0);

    let by_sandbox = api::ContainerFilter { pod_sandbox_id: sandbox_a[..12].to_owned(), ..Default::default() };
    let found = fake.list_containers(Some(by_sandbox)).await.expect("list");
    assert_eq!(found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [web.as_str()]);

    let running = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: api::ContainerState::ContainerRunning as i32 }),
        ..Default::default()
    };
    let found = fake.list_containers(Some(running)).await.expect("list");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].metadata.as_ref().map(|m| m.name.as_str()), Some("db"));

    let by_label = api::PodSandboxFilter { label_selector: HashMap::from([("app".to_owned(), "b".to_owned())]), ..Default::default() };
    let found = fake.list_pod_sandbox(Some(by_label)).await.expect("list");
    assert_eq!(found.len(), 1);
    let unknown = api::ContainerFilter { id: "nope".to_owned(), ..Default::default() };
    assert!(fake.list_containers(Some(unknown)).await.expect("list").is_empty());
    assert_eq!(fake.list_containers(None).await.expect("list").len(), 2);
}

#[tokio::test]
async fn injected_start_and_pull_errors() {
    let fake = FakeRuntime::new();
    let denied = CriError::Status {
        op: "PullImage",
        object: "private/app".to_owned(),
        code: Code::Unknown,
        message: "pull access denied".to_owned(),
    };
    fake.set_pull_error("private/app", denied);
    let spec = |image: &str| api::ImageSpec { image: image.to_owned(), ..Default::default() };
    let err = fake.pull_image(spec("private/app:latest"), None, None).await.expect_err("injected");
    assert!(err.to_string().contains("pull access denied"), "{err}");
    assert_eq!(fake.image_status(&spec("busybox")).await.expect("status"), None);
    let image_ref = fake.pull_image(spec("busybox"), None, None).await.expect("pull");
    let found = fake.image_status(&spec("docker.io/library/busybox:latest")).await.expect("status");
    assert_eq!(found.map(|image| image.id), Some(image_ref));

    let sandbox = fake.run_pod_sandbox(sandbox_config("p"), "").await.expect("sandbox");
    let err =
        fake.create_container(&sandbox, container_config("app", "private/app"), sandbox_config("p")).await.expect_err("image missing");
    assert!(err.is_not_found(), "{err}");

    let crash = CriError::Status {
        op: "StartContainer",
        object: String::new(),
        code: Code::Unknown,
        message: "exec: \"nope\": executable file not found".to_owned(),
    };
    fake.set_start_error("web", crash);
    let id = fake.create_container(&sandbox, container_config("web", "busybox"), sandbox_config("p")).await.expect("create");
    fake.start_container(&id).await.expect_err("injected");
    let status = fake.container_status(&id).await.expect("status");
    assert_eq!((status.exit_code, status.reason.as_str()), (128, "StartError"));
    assert_eq!(fake.calls_of("StartContainer"), [format!("StartContainer {id}")]);
}

#[tokio::test]
async fn names_are_reserved_per_attempt() {
    let fake = FakeRuntime::with_images(["busybox"]);
    let (sandbox, _) = running_container(&fake, "p", "web").await;
    let err = fake.run_pod_sandbox(sandbox_config("p"), "").await.expect_err("reserved");
    assert!(matches!(err, CriError::Status { code: Code::AlreadyExists, .. }), "{err}");
    let err = fake.create_container(&sandbox, container_config("web", "busybox"), sandbox_config("p")).await.expect_err("reserved");
    assert!(matches!(err, CriError::Status { code: Code::AlreadyExists, .. }), "{err}");
    let mut retry = container_config("web", "busybox");
    retry.metadata = Some(api::ContainerMetadata { name: "web".to_owned(), attempt: 1 });
    fake.create_container(&sandbox, retry, sandbox_config("p")).await.expect("next attempt");
}
