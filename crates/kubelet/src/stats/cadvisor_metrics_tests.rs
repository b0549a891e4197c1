use std::time::Duration;

use super::*;
use crate::stats::api::{NodeStats, Summary};
use crate::stats::cgroup::{BlkioSample, CgroupSample, MemorySample};
use crate::stats::collector::MachineLabels;
use crate::stats::network::InterfaceCounters;
use crate::status::api_time;

fn snapshot(cgroups: Vec<CgroupRecord>) -> StatsSnapshot {
    let taken = UNIX_EPOCH + Duration::from_secs(1_000);
    StatsSnapshot {
        taken,
        summary: Summary {
            node: NodeStats {
                node_name: "n".into(),
                system_containers: vec![],
                start_time: api_time(taken),
                cpu: None,
                memory: None,
                io: None,
                network: None,
                fs: None,
                runtime: None,
                rlimit: None,
                swap: None,
            },
            pods: vec![],
        },
        cgroups,
        num_cores: 2,
        memory_capacity: 1 << 30,
        machine: MachineLabels { machine_id: "m".into(), ..Default::default() },
        root_disk: None,
    }
}

fn container() -> CgroupRecord {
    CgroupRecord {
        id: "/kubepods/burstable/podu/abc".into(),
        container: "busybox-container".into(),
        pod: "stats-busybox-0".into(),
        namespace: "ns".into(),
        image: "busybox".into(),
        name: "abc".into(),
        sample: CgroupSample {
            cpu_usage_ns: Some(2_500_000_000),
            cpu_user_ns: Some(2_000_000_000),
            cpu_system_ns: Some(500_000_000),
            cpu_shares: Some(2),
            cpu_period_us: Some(100_000),
            memory: Some(MemorySample { usage: 50_000, inactive_file: 10_000, limit: Some(79_998_976), rss: 30_000, ..Default::default() }),
            pids: Some(1),
            blkio: vec![BlkioSample { major: 253, minor: 0, read_bytes: 8192, write_bytes: 8192, reads: 2, writes: 2 }],
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn container_samples_carry_the_kubelet_labels_sorted() {
    let body = render_at(Some(&snapshot(vec![container()])), UNIX_EPOCH + Duration::from_secs(1_005));
    let labels = r#"container="busybox-container",id="/kubepods/burstable/podu/abc",image="busybox",name="abc",namespace="ns",pod="stats-busybox-0""#;
    assert!(body.contains("container_cpu_usage_seconds_total{container=\"busybox-container\",cpu=\"total\",id=\"/kubepods/burstable/podu/abc\",image=\"busybox\",name=\"abc\",namespace=\"ns\",pod=\"stats-busybox-0\"} 2.5 1000000\n"), "{body}");
    assert!(body.contains(&format!("container_memory_working_set_bytes{{{labels}}} 40000 1000000\n")), "{body}");
    assert!(body.contains(&format!("container_spec_memory_limit_bytes{{{labels}}} 79998976\n")), "{body}");
    assert!(body.contains(&format!("container_spec_cpu_shares{{{labels}}} 2\n")), "{body}");
    assert!(body.contains(&format!("container_last_seen{{{labels}}} 1005 1005000\n")), "{body}");
    assert!(body.contains("container_memory_failures_total{container=\"busybox-container\",failure_type=\"pgfault\",id="), "{body}");
    assert!(body.contains("operation=\"Write\""), "{body}");
    // No quota: no CFS families.
    assert!(!body.contains("container_cpu_cfs_periods_total"), "{body}");
    assert!(body.contains("machine_cpu_cores{boot_id=\"\",machine_id=\"m\",system_uuid=\"\"} 2\n"), "{body}");
}

#[test]
fn each_family_appears_once_with_help_and_type_first() {
    let mut sandbox = container();
    sandbox.container = String::new();
    sandbox.id = "/kubepods/burstable/podu/sandbox".into();
    sandbox.network = vec![InterfaceCounters { name: "eth0".into(), rx_bytes: 100, ..Default::default() }];
    let body = render_at(Some(&snapshot(vec![container(), sandbox])), UNIX_EPOCH);
    let mut seen = std::collections::HashSet::new();
    let mut current = String::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().unwrap().to_string();
            assert!(seen.insert(name.clone()), "family {name} split");
            current = name;
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "sample outside its family: {line}");
        }
    }
    assert!(seen.contains("container_network_receive_bytes_total"));
}

#[test]
fn the_root_filesystem_and_its_disk() {
    let mut s = snapshot(vec![CgroupRecord { id: "/".into(), ..Default::default() }]);
    s.root_disk = Some(crate::stats::collector::RootDisk {
        device: "/dev/vda".into(),
        fs: crate::stats::fs::FsInfo { capacity: 100, available: 40, used: 60, inodes: 10, inodes_free: 4 },
        io: Some(crate::stats::host::DiskStats { reads: 7, writes: 9, io_ms: 2_000, ..Default::default() }),
    });
    let body = render_at(Some(&s), UNIX_EPOCH);
    let l = r#"container="",device="/dev/vda",id="/",image="",name="",namespace="",pod="""#;
    for want in [
        format!("container_fs_limit_bytes{{{l}}} 100 "),
        format!("container_fs_usage_bytes{{{l}}} 60 "),
        format!("container_fs_reads_total{{{l}}} 7 "),
        format!("container_fs_writes_total{{{l}}} 9 "),
        format!("container_fs_io_time_seconds_total{{{l}}} 0.000002 "),
    ] {
        assert!(body.contains(&want), "{want} in {body}");
    }
}

#[test]
fn nothing_sampled_yet_is_a_scrape_error() {
    let body = render_at(None, UNIX_EPOCH);
    assert!(body.contains("container_scrape_error 1\n"), "{body}");
}
