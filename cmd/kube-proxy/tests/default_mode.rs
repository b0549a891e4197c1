//! End-to-end start-up of the `kube-proxy` binary with no mode configured,
//! in a network namespace with only loopback (no API server is reachable:
//! kube-proxy builds its proxier and prepares the host before it needs
//! one). With `nft` usable it runs nftables and removes an iptables-mode
//! kube-proxy's leftovers; with `nft` missing from its PATH it falls back
//! to iptables, says so, and sets `route_localnet`. Both apply the
//! `conntrack` timeouts to the namespace's sysctls and only warn about
//! `nf_conntrack_max`, which a network namespace cannot change.
//! Addresses: none but loopback; the unreachable master is 198.18.150.1.

mod support;

use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Netns, ProxyProcess};

/// The running binary and its log; stopped on drop.
struct Proxy {
    process: ProxyProcess,
    log: std::path::PathBuf,
}

impl Proxy {
    fn start(ns: &Netns, path: Option<&str>, log: std::path::PathBuf) -> Proxy {
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name]);
        if let Some(p) = path {
            cmd.args(["env", &format!("PATH={p}")]);
        }
        let child = cmd
            .arg(env!("CARGO_BIN_EXE_kube-proxy"))
            .args([
                "--master",
                "https://198.18.150.1:6443",
                "--hostname-override",
                "knode-default-mode",
                "--healthz-bind-address",
                "127.0.0.1:10256",
                "--metrics-bind-address",
                "127.0.0.1:10249",
                "--conntrack-tcp-timeout-close-wait",
                "1234s",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start kube-proxy");
        Proxy { process: ProxyProcess(child), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 20 s) until the log contains `text`.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sysctl(ns: &Netns, name: &str) -> String {
    ns.exec(&["cat", &format!("/proc/sys/{name}")]).trim().to_string()
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn empty_mode_runs_nftables_and_removes_iptables_leftovers() {
    let ns = Netns::new("dm");
    ns.exec(&["iptables", "-t", "nat", "-N", "KUBE-SERVICES"]);
    ns.exec(&["iptables", "-t", "nat", "-N", "KUBE-SEP-LEFTOVER"]);
    ns.exec(
        &["iptables", "-t", "nat", "-I", "OUTPUT", "-m", "comment"]
            .into_iter()
            .chain(["--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"])
            .collect::<Vec<_>>(),
    );
    let dir = TempDir::new("dm");
    let mut proxy = Proxy::start(&ns, None, dir.path().join("log"));
    let log = proxy.wait_for(" proxier for V4 on node");
    assert!(log.contains("no proxy mode configured: using nftables"), "{log}");
    assert!(log.contains("using the nftables proxier"), "{log}");
    assert!(log.contains("nf_conntrack_max"), "a warning, not an exit:\n{log}");
    let saved = ns.exec(&["iptables-save"]);
    assert!(!saved.contains("KUBE-"), "iptables leftovers kept:\n{saved}");
    assert_eq!(sysctl(&ns, "net/netfilter/nf_conntrack_tcp_timeout_close_wait"), "1234");
    assert_eq!(sysctl(&ns, "net/netfilter/nf_conntrack_tcp_timeout_established"), "86400", "the default tcpEstablishedTimeout");
    assert!(proxy.process.0.try_wait().unwrap().is_none(), "kube-proxy still runs");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn empty_mode_falls_back_to_iptables_without_nft() {
    let ns = Netns::new("di");
    ns.exec(&["nft", "add", "table", "ip", "kube-proxy"]);
    // A PATH with every tool kube-proxy runs except nft.
    let bin = TempDir::new("di");
    for tool in ["ip", "iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore", "conntrack"] {
        let real = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
        assert!(!real.is_empty(), "{tool} not installed");
        symlink(&real, bin.path().join(tool)).unwrap();
    }
    let path = bin.path().to_str().unwrap().to_string();
    let mut proxy = Proxy::start(&ns, Some(&path), bin.path().join("log"));
    let log = proxy.wait_for(" proxier for V4 on node");
    assert!(log.contains("nftables is unusable") && log.contains("using iptables"), "{log}");
    assert!(log.contains("using the iptables proxier"), "{log}");
    assert_eq!(sysctl(&ns, "net/ipv4/conf/all/route_localnet"), "1");
    // Without nft the nftables table cannot be removed: a warning, not an exit.
    assert!(log.contains("cleaning up other proxy modes' rules"), "{log}");
    assert!(proxy.process.0.try_wait().unwrap().is_none(), "kube-proxy still runs");
}
