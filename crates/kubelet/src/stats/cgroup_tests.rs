use super::*;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn reads_a_v1_cgroup_across_hierarchies() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path();
    let c = "kubepods/podX/abc";
    write(m, &format!("cpuacct/{c}/cpuacct.usage"), "5000000000\n");
    write(m, &format!("cpuacct/{c}/cpuacct.stat"), "user 300\nsystem 100\n");
    write(m, &format!("cpu/{c}/cpu.stat"), "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\n");
    write(m, &format!("cpu/{c}/cpu.shares"), "204\n");
    write(m, &format!("cpu/{c}/cpu.cfs_quota_us"), "20000\n");
    write(m, &format!("cpu/{c}/cpu.cfs_period_us"), "100000\n");
    write(m, &format!("memory/{c}/memory.usage_in_bytes"), "10000\n");
    write(m, &format!("memory/{c}/memory.limit_in_bytes"), "9223372036854771712\n");
    write(m, &format!("memory/{c}/memory.max_usage_in_bytes"), "20000\n");
    write(m, &format!("memory/{c}/memory.failcnt"), "0\n");
    write(
        m,
        &format!("memory/{c}/memory.stat"),
        "cache 1\nrss 2\ntotal_cache 3000\ntotal_rss 6000\ntotal_inactive_file 1000\ntotal_pgfault 50\ntotal_pgmajfault 2\ntotal_mapped_file 40\n",
    );
    write(m, &format!("memory/{c}/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    write(m, &format!("pids/{c}/pids.current"), "3\n");
    write(m, &format!("pids/{c}/pids.max"), "max\n");
    write(
        m,
        &format!("blkio/{c}/blkio.throttle.io_service_bytes_recursive"),
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
    );
    write(m, &format!("blkio/{c}/blkio.throttle.io_serviced_recursive"), "8:0 Read 1\n8:0 Write 2\nTotal 3\n");
    let r = CgroupReader::new(Cgroupfs::V1 { mount: m.to_path_buf() });
    let s = r.read(c).unwrap();
    assert_eq!(s.cpu_usage_ns, Some(5_000_000_000));
    assert_eq!((s.cpu_user_ns, s.cpu_system_ns), (Some(3_000_000_000), Some(1_000_000_000)));
    assert_eq!((s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns), (Some(10), Some(4), Some(123456)));
    assert_eq!((s.cpu_shares, s.cpu_quota_us, s.cpu_period_us), (Some(204), Some(20_000), Some(100_000)));
    let mem = s.memory.unwrap();
    assert_eq!((mem.usage, mem.working_set(), mem.rss, mem.cache, mem.limit), (10_000, 9_000, 6_000, 3_000, None));
    assert_eq!((mem.page_faults, mem.major_page_faults, mem.oom_kills, mem.max_usage, mem.swap), (50, 2, 1, Some(20_000), None));
    assert_eq!((s.pids, s.pids_max), (Some(3), None));
    assert_eq!(s.blkio, vec![BlkioSample { major: 8, minor: 0, read_bytes: 4096, write_bytes: 8192, reads: 1, writes: 2 }]);
    assert_eq!(s.cpu_psi, None);
    assert!(r.read("kubepods/gone").is_none());
}

#[test]
fn reads_a_v2_cgroup_with_pressure() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path();
    write(m, "cgroup.controllers", "cpu memory pids\n");
    let c = "kubepods/burstable/podY";
    write(
        m,
        &format!("{c}/cpu.stat"),
        "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_periods 7\nnr_throttled 1\nthrottled_usec 30\n",
    );
    write(m, &format!("{c}/cpu.weight"), "100\n");
    write(m, &format!("{c}/cpu.max"), "20000 100000\n");
    write(m, &format!("{c}/memory.current"), "8192\n");
    write(m, &format!("{c}/memory.max"), "80000000\n");
    write(m, &format!("{c}/memory.stat"), "anon 4096\nfile 2048\ninactive_file 1024\nfile_mapped 512\npgfault 9\npgmajfault 1\n");
    write(m, &format!("{c}/memory.events"), "low 0\nhigh 2\nmax 3\noom 0\noom_kill 1\n");
    write(m, &format!("{c}/memory.swap.current"), "0\n");
    write(m, &format!("{c}/memory.swap.max"), "max\n");
    write(m, &format!("{c}/io.stat"), "8:16 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
    write(
        m,
        &format!("{c}/cpu.pressure"),
        "some avg10=1.50 avg60=0.50 avg300=0.10 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=6\n",
    );
    write(m, &format!("{c}/pids.current"), "2\n");
    let r = CgroupReader::new(Cgroupfs::detect(m));
    assert!(r.is_v2());
    let s = r.read(c).unwrap();
    assert_eq!((s.cpu_usage_ns, s.cpu_user_ns, s.cpu_throttled_ns), (Some(2_000_000_000), Some(1_500_000_000), Some(30_000)));
    assert_eq!((s.cpu_shares, s.cpu_quota_us, s.cpu_period_us), (Some(weight_to_shares(100)), Some(20_000), Some(100_000)));
    let mem = s.memory.unwrap();
    assert_eq!(
        (mem.usage, mem.working_set(), mem.rss, mem.cache, mem.limit, mem.swap, mem.swap_limit),
        (8192, 7168, 4096, 2048, Some(80_000_000), Some(0), None)
    );
    assert_eq!((mem.oom_kills, mem.events_high, mem.events_max, mem.failcnt), (1, 2, 3, None));
    assert_eq!(s.blkio, vec![BlkioSample { major: 8, minor: 16, read_bytes: 100, write_bytes: 200, reads: 1, writes: 2 }]);
    let psi = s.cpu_psi.unwrap();
    assert_eq!((psi.some.avg10, psi.some.total, psi.full.total), (1.5, 12345, 6));
    assert_eq!(s.memory_psi, None);
}

#[test]
fn weight_maps_back_to_shares_at_the_ends() {
    assert_eq!(weight_to_shares(1), 2);
    assert_eq!(weight_to_shares(10_000), 262_144);
}

#[test]
fn limits_are_cached_for_a_few_rounds_and_usage_is_not() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path();
    let c = "kubepods/podZ";
    write(m, &format!("memory/{c}/memory.usage_in_bytes"), "100\n");
    write(m, &format!("memory/{c}/memory.limit_in_bytes"), "1000\n");
    write(m, &format!("cpuacct/{c}/cpuacct.usage"), "5\n");
    let r = CgroupReader::new(Cgroupfs::V1 { mount: m.to_path_buf() });
    r.begin_round();
    assert_eq!(r.read(c).unwrap().memory.unwrap().limit, Some(1000));
    write(m, &format!("memory/{c}/memory.limit_in_bytes"), "2000\n");
    write(m, &format!("memory/{c}/memory.usage_in_bytes"), "200\n");
    r.begin_round();
    let mem = r.read(c).unwrap().memory.unwrap();
    assert_eq!((mem.usage, mem.limit), (200, Some(1000)), "usage fresh, limit cached");
    for _ in 0..SPEC_REFRESH_ROUNDS {
        r.begin_round();
        r.read(c);
    }
    assert_eq!(r.read(c).unwrap().memory.unwrap().limit, Some(2000), "limit read again after a minute");
    // A cgroup not read for a round is forgotten; a removed one reads as gone.
    r.begin_round();
    r.begin_round();
    assert!(r.specs.lock().unwrap().is_empty());
    for h in ["memory", "cpuacct"] {
        std::fs::remove_dir_all(m.join(h).join(c)).unwrap();
    }
    assert!(r.read(c).is_none());
}

#[test]
fn keyed_matches_whole_keys_only() {
    let stat = "rss_huge 7\ntotal_rss 5\nrss 3\nbad x\nbad 9\ntab\t4\n";
    assert_eq!(keyed(stat, "rss"), Some(3));
    assert_eq!(keyed(stat, "total_rss"), Some(5));
    assert_eq!(keyed(stat, "bad"), Some(9), "a line that does not parse is skipped");
    assert_eq!(keyed(stat, "tab"), Some(4));
    assert_eq!(keyed(stat, "rs"), None);
    assert_eq!(keyed(stat, "missing"), None);
}
