//! The collector against the fake runtime, a written cgroup v1 tree and a written `/proc`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, Pod, PodSpec, Volume};
use kubelet_cri::{RuntimeService, api};
use test_support::FakeRuntime;

use super::*;
use crate::cm::cgroupfs::Cgroupfs;

struct Pods(Vec<Pod>);
impl PodLister for Pods {
    fn pods(&self) -> Vec<Pod> {
        self.0.clone()
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A cgroup v1 directory with CPU and memory figures.
fn cgroup(mount: &Path, rel: &str, cpu_ns: u64, usage: u64) {
    write(mount, &format!("cpuacct/{rel}/cpuacct.usage"), &format!("{cpu_ns}\n"));
    write(mount, &format!("memory/{rel}/memory.usage_in_bytes"), &format!("{usage}\n"));
    write(mount, &format!("memory/{rel}/memory.limit_in_bytes"), "67108864\n");
    write(mount, &format!("memory/{rel}/memory.stat"), "total_rss 4096\ntotal_inactive_file 1024\n");
    write(mount, &format!("pids/{rel}/pids.current"), "1\n");
    write(mount, &format!("pids/{rel}/cgroup.procs"), "4242\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_its_container_volume_and_cpu_rate() {
    let t = tempfile::tempdir().unwrap();
    let (mount, proc_root, root_dir, logs) =
        (t.path().join("cg"), t.path().join("proc"), t.path().join("kubelet"), t.path().join("pods-logs"));
    let fake = Arc::new(FakeRuntime::with_images(["busybox"]));
    let uid = "0f2c-11";
    let meta = api::PodSandboxMetadata { name: "web".into(), namespace: "default".into(), uid: uid.into(), attempt: 0 };
    let sandbox_config = api::PodSandboxConfig { metadata: Some(meta), ..Default::default() };
    let sandbox = fake.run_pod_sandbox(sandbox_config.clone(), "").await.unwrap();
    let labels: std::collections::HashMap<String, String> =
        [("io.kubernetes.pod.uid".to_string(), uid.to_string()), ("io.kubernetes.container.name".into(), "app".into())].into();
    let config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: "app".into(), attempt: 0 }),
        image: Some(api::ImageSpec { image: "busybox".into(), ..Default::default() }),
        labels,
        ..Default::default()
    };
    let id = fake.create_container(&sandbox, config, sandbox_config).await.unwrap();
    fake.start_container(&id).await.unwrap();

    // BestEffort pod cgroup with the sandbox's and the container's below it.
    let pod_rel = format!("kubepods/besteffort/pod{uid}");
    cgroup(&mount, &pod_rel, 1_000_000_000, 40_960);
    cgroup(&mount, &format!("{pod_rel}/{sandbox}"), 0, 8192);
    cgroup(&mount, &format!("{pod_rel}/{id}"), 1_000_000_000, 32_768);
    cgroup(&mount, "kubepods", 1_000_000_000, 40_960);
    write(&proc_root, "4242/net/dev", "h1\nh2\n  eth0: 500 5 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n");
    write(&proc_root, "meminfo", "MemTotal: 1048576 kB\nMemFree: 524288 kB\n");
    std::fs::create_dir_all(&logs).unwrap();
    let vol = root_dir.join(format!("pods/{uid}/volumes/kubernetes.io~empty-dir/scratch"));
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("data"), vec![7u8; 20_000]).unwrap();

    let mut pod = Pod {
        spec: Some(PodSpec {
            containers: vec![Container { name: "app".into(), ..Default::default() }],
            volumes: Some(vec![Volume { name: "scratch".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    pod.metadata.name = Some("web".into());
    pod.metadata.namespace = Some("default".into());
    pod.metadata.uid = Some(uid.into());
    let cfg = StatsConfig {
        node_name: "node-a".into(),
        cgroup_root: "/".into(),
        cgroup_driver: CgroupDriver::Cgroupfs,
        root_dir,
        pod_logs_dir: logs,
        proc_root,
        kubelet_cgroup: String::new(),
        runtime_cgroup: String::new(),
        system_cgroup: String::new(),
        memory_capacity: 1 << 30,
        interval: Duration::from_secs(10),
        du_period: Duration::from_secs(60),
        kubelet_start: std::time::SystemTime::now(),
        machine: MachineLabels::default(),
    };
    let store = StatsStore::default();
    let mut c = StatsCollector::new(
        cfg,
        CgroupReader::new(Cgroupfs::V1 { mount: mount.clone() }),
        Arc::new(Pods(vec![pod])),
        fake.clone(),
        fake,
        store.clone(),
    );
    let first = c.collect().await;
    let p = &first.summary.pods[0];
    assert_eq!((p.pod_ref.name.as_str(), p.containers.len()), ("web", 1));
    let app = &p.containers[0];
    assert_eq!(app.name, "app");
    assert_eq!(app.cpu.as_ref().unwrap().usage_nano_cores, None, "one sample: no rate yet");
    let mem = app.memory.as_ref().unwrap();
    assert_eq!((mem.usage_bytes, mem.working_set_bytes, mem.available_bytes), (Some(32_768), Some(31_744), Some(67_108_864 - 31_744)));
    let net = p.network.as_ref().unwrap();
    assert_eq!((net.default_interface.name.as_str(), net.default_interface.rx_bytes), ("eth0", Some(500)));
    let v = p.volume_stats.iter().find(|v| v.name == "scratch").unwrap();
    assert!(v.fs.used_bytes.unwrap() >= 20_000 && v.pvc_ref.is_none(), "{v:?}");
    assert!(p.ephemeral_storage.as_ref().unwrap().used_bytes.unwrap() >= 20_000);
    assert_eq!(p.process_stats.as_ref().unwrap().process_count, Some(1));
    let sys: BTreeMap<&str, _> = first.summary.node.system_containers.iter().map(|c| (c.name.as_str(), c)).collect();
    assert!(sys.contains_key("pods"));
    // The records /metrics/cadvisor renders: the sandbox (no container name), the app, the pod.
    let ids: Vec<&str> = first.cgroups.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&format!("/{pod_rel}/{id}").as_str()) && ids.contains(&format!("/{pod_rel}").as_str()), "{ids:?}");
    let sandbox_rec = first.cgroups.iter().find(|r| r.name == sandbox).unwrap();
    assert_eq!((sandbox_rec.container.as_str(), sandbox_rec.network.len()), ("", 1));

    // 0.5 s of CPU more in the container: a rate over the time between the two rounds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    cgroup(&mount, &format!("{pod_rel}/{id}"), 1_500_000_000, 32_768);
    let second = c.collect().await;
    let rate = second.summary.pods[0].containers[0].cpu.as_ref().unwrap().usage_nano_cores.unwrap();
    assert!(rate > 500_000_000, "0.5 s of CPU in about 0.2 s: {rate}");
    store.publish(second);
    assert!(store.latest().is_some());
}
