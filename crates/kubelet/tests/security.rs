//! Security policy against the fake CRI runtime: `runAsNonRoot` against the image's user becomes
//! a `CreateContainerConfigError`, and a pod with a forbidden sysctl is rejected at admission
//! (Failed, `SysctlForbidden`) without a sandbox.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, PodSpec, SecurityContext, Sysctl};
use kubelet::admission::PodAdmitter;
use kubelet::kuberuntime::RuntimeManager;
use kubelet::kuberuntime::env::NoEnvSources;
use kubelet::kuberuntime::labels::PodRef;
use kubelet::pod_workers::{PodWorkerContext, PodWorkers};
use kubelet::prober::ProbeManager;
use kubelet::status_manager::StatusManager;
use kubelet::sysctl::SysctlAllowlist;
use kubelet_types::clock::TokioClock;
use kubelet_types::events::LogEventRecorder;
use test_support::FakeRuntime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "localhost/knode/busybox:1.35";

fn pod(pod_sc: PodSecurityContext, container_sc: Option<SecurityContext>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some("p".into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some("uid-p".into());
    p.spec = Some(PodSpec {
        restart_policy: Some("Never".into()),
        security_context: Some(pod_sc),
        containers: vec![Container { name: "c".into(), image: Some(IMAGE.into()), security_context: container_sc, ..Default::default() }],
        ..Default::default()
    });
    p
}

fn manager(fake: &FakeRuntime, root: &std::path::Path, clock: TokioClock) -> RuntimeManager {
    let events = Arc::new(LogEventRecorder);
    RuntimeManager::new(
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        events,
        Arc::new(NoEnvSources),
        common::manager_config(root),
        Arc::new(clock),
    )
}

#[tokio::test(start_paused = true)]
async fn run_as_non_root_with_a_root_image_is_a_create_container_config_error() {
    // The fake's images name no user: they run as root.
    let fake = FakeRuntime::with_images([IMAGE]);
    let root = tempfile::tempdir().unwrap();
    let m = manager(&fake, root.path(), TokioClock::starting_at(SystemTime::now()));
    let r = PodRef { uid: "uid-p".into(), name: "p".into(), namespace: "default".into() };

    let non_root = pod(PodSecurityContext { run_as_non_root: Some(true), ..Default::default() }, None);
    let status = m.pod_status(&r).await.unwrap();
    let outcome = m.sync_pod(&non_root, &status, &Default::default()).await;
    let (reason, message) = &outcome.waiting["c"];
    assert_eq!(reason, "CreateContainerConfigError");
    assert_eq!(message, "container has runAsNonRoot and image will run as root (pod: \"p_default(uid-p)\", container: c)");
    assert!(fake.calls_of("CreateContainer").is_empty(), "{:?}", fake.calls());

    // An explicit non-root runAsUser overrides the image's root user.
    let as_1000 = pod(
        PodSecurityContext { run_as_non_root: Some(true), ..Default::default() },
        Some(SecurityContext { run_as_user: Some(1000), ..Default::default() }),
    );
    let status = m.pod_status(&r).await.unwrap();
    let outcome = m.sync_pod(&as_1000, &status, &Default::default()).await;
    assert!(outcome.waiting.is_empty(), "{outcome:?}");
    assert_eq!(fake.calls_of("StartContainer").len(), 1, "{:?}", fake.calls());
}

#[tokio::test(start_paused = true)]
async fn a_pod_with_a_forbidden_sysctl_is_rejected_before_its_sandbox() {
    let fake = FakeRuntime::with_images([IMAGE]);
    let root = tempfile::tempdir().unwrap();
    let clock = TokioClock::starting_at(SystemTime::now());
    let status = StatusManager::default();
    let (probe_tx, _probe_updates) = mpsc::unbounded_channel();
    let prober = Arc::new(ProbeManager::new(Arc::new(fake.clone()), status.clone(), Arc::new(LogEventRecorder), Arc::new(clock), probe_tx));
    let ctx = Arc::new(PodWorkerContext {
        manager: Arc::new(manager(&fake, root.path(), clock)),
        status: status.clone(),
        prober,
        sync_frequency: Duration::from_secs(60),
        runtime_name: "containerd".into(),
        host_ip: "198.18.255.1".into(),
        admission: PodAdmitter { sysctls: SysctlAllowlist::for_node(Some("6.1.0"), &["net.core.somaxconn"]).unwrap(), apparmor: false },
        metrics: Default::default(),
        evictions: Default::default(),
    });
    let shutdown = CancellationToken::new();
    let (mut workers, _finished) = PodWorkers::new(ctx, shutdown.clone());
    let sysctls = |names: &[&str]| PodSecurityContext {
        sysctls: Some(names.iter().map(|n| Sysctl { name: n.to_string(), value: "1".into() }).collect()),
        ..Default::default()
    };

    workers.update_pod(Arc::new(pod(sysctls(&["kernel.shm_rmid_forced", "kernel.msgmax"]), None)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api = status.pod_status("uid-p").expect("a status");
    assert_eq!(api.phase.as_deref(), Some("Failed"));
    assert_eq!(api.reason.as_deref(), Some("SysctlForbidden"));
    assert_eq!(api.message.as_deref(), Some("Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"));
    assert!(fake.calls_of("RunPodSandbox").is_empty(), "{:?}", fake.calls());

    // Safe and allowed unsafe sysctls run.
    let mut allowed = pod(sysctls(&["kernel.shm_rmid_forced", "net.core.somaxconn"]), None);
    allowed.metadata.uid = Some("uid-q".into());
    workers.update_pod(Arc::new(allowed));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status.pod_status("uid-q").and_then(|s| s.phase).as_deref(), Some("Running"));
    assert_eq!(fake.calls_of("RunPodSandbox").len(), 1, "{:?}", fake.calls());
    shutdown.cancel();
}

fn userns_of_sandbox(s: &kubelet_cri::api::PodSandboxStatus) -> Option<kubelet_cri::api::UserNamespace> {
    s.linux.as_ref()?.namespaces.as_ref()?.options.as_ref()?.userns_options.clone()
}

#[tokio::test(start_paused = true)]
async fn host_users_false_pods_get_a_recorded_range_and_old_sandboxes_are_remade() {
    use kubelet_cri::RuntimeService;
    use kubelet_cri::api::NamespaceMode;
    let fake = FakeRuntime::with_images([IMAGE]);
    let root = tempfile::tempdir().unwrap();
    let clock = TokioClock::starting_at(SystemTime::now());
    let r = PodRef { uid: "uid-p".into(), name: "p".into(), namespace: "default".into() };
    let mut p = pod(PodSecurityContext::default(), None);
    p.spec.as_mut().unwrap().restart_policy = Some("Always".into());
    p.spec.as_mut().unwrap().host_users = Some(false);

    // A kubelet that supports no user namespaces on the default handler refuses the pod.
    let refusing = manager(&fake, root.path(), clock);
    let outcome = refusing.sync_pod(&p, &refusing.pod_status(&r).await.unwrap(), &Default::default()).await;
    assert!(outcome.errors.iter().any(|e| e.to_string().contains("runtime does not support user namespaces")), "{outcome:?}");
    assert!(fake.calls_of("RunPodSandbox").is_empty());

    // A sandbox left by a kubelet that ignored hostUsers (no range recorded).
    let mut cfg = common::manager_config(root.path());
    cfg.userns_handlers = vec![String::new()];
    let events = Arc::new(LogEventRecorder);
    let m = RuntimeManager::new(Arc::new(fake.clone()), Arc::new(fake.clone()), events, Arc::new(NoEnvSources), cfg, Arc::new(clock));
    let mut old = p.clone();
    old.spec.as_mut().unwrap().host_users = None;
    m.sync_pod(&old, &m.pod_status(&r).await.unwrap(), &Default::default()).await;
    let first = fake.sandbox_ids();
    assert_eq!(first.len(), 1);
    assert_eq!(userns_of_sandbox(&fake.pod_sandbox_status(&first[0]).await.unwrap()).map(|u| u.mode), Some(NamespaceMode::Node as i32));

    // The pod (asking for a user namespace) finds that sandbox: it is stopped, then made again
    // with a range that its containers share.
    let outcome = m.sync_pod(&p, &m.pod_status(&r).await.unwrap(), &Default::default()).await;
    assert!(outcome.errors.iter().any(|e| e.to_string().contains("no mappings recorded")), "{outcome:?}");
    assert_eq!(fake.calls_of("StopPodSandbox").len(), 1, "{:?}", fake.calls());
    for _ in 0..3 {
        m.sync_pod(&p, &m.pod_status(&r).await.unwrap(), &Default::default()).await;
    }
    let new_sandbox = fake.sandbox_ids().into_iter().find(|id| *id != first[0]).expect("a new sandbox");
    let ns = userns_of_sandbox(&fake.pod_sandbox_status(&new_sandbox).await.unwrap()).unwrap();
    assert_eq!((ns.mode, ns.uids.len(), ns.uids[0].host_id, ns.uids[0].length), (NamespaceMode::Pod as i32, 1, 65536, 65536));
    let in_sandbox = |sandbox: String| {
        let fake = fake.clone();
        async move {
            let all = fake.list_containers(None).await.unwrap();
            let mut ids: Vec<(i64, String)> =
                all.into_iter().filter(|c| c.pod_sandbox_id == sandbox).map(|c| (c.created_at, c.id)).collect();
            ids.sort();
            ids.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        }
    };
    let c = in_sandbox(new_sandbox.clone()).await.pop().expect("a container in the new sandbox");
    assert_eq!(fake.container_userns(&c), Some(ns.clone()), "the container joins the sandbox's user namespace");
    assert!(root.path().join("kubelet/pods/uid-p/userns").exists());

    // A new kubelet (restart) starts the next container in the same namespace.
    let mut cfg = common::manager_config(root.path());
    cfg.userns_handlers = vec![String::new()];
    let again = RuntimeManager::new(
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        Arc::new(LogEventRecorder),
        Arc::new(NoEnvSources),
        cfg,
        Arc::new(clock),
    );
    assert!(fake.exit_container(&c, 1));
    again.sync_pod(&p, &again.pod_status(&r).await.unwrap(), &Default::default()).await;
    tokio::time::advance(Duration::from_secs(20)).await;
    again.sync_pod(&p, &again.pod_status(&r).await.unwrap(), &Default::default()).await;
    let ids = in_sandbox(new_sandbox.clone()).await;
    assert_eq!(ids.len(), 2, "the container was started again in the same sandbox");
    let restarted = ids.into_iter().find(|id| *id != c).unwrap();
    assert_eq!(fake.container_userns(&restarted), Some(ns));
}
