//! End-to-end: the IPVS mode on a kernel without IPVS (this machine's).
//! `kube-proxy --proxy-mode=ipvs` says clearly that it cannot use IPVS and
//! runs the iptables proxier instead, as upstream 1.20 does, and keeps
//! serving; `--cleanup` with the IPVS mode configured still succeeds and
//! removes the iptables rules. Everything runs in a network namespace this
//! test creates, with 198.18.140.1 on its loopback. Needs root (hack/test.sh).
//! Where the kernel has IPVS, the fallback test is skipped.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Netns, ProxyProcess};

const ADDR: &str = "198.18.140.1";

fn kernel_has_ipvs() -> bool {
    std::path::Path::new("/proc/net/ip_vs").exists()
}

fn netns() -> Netns {
    let ns = Netns::new("ipvs");
    ns.exec(&["ip", "addr", "add", &format!("{ADDR}/32"), "dev", "lo"]);
    ns
}

fn kube_proxy(ns: &Netns, args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_kube-proxy")]).args(args).env_remove("KUBE_PROXY_LOG");
    cmd
}

/// Stderr lines until one contains every needle of `wanted` in order, or `timeout`.
fn wait_for_lines(lines: &mpsc::Receiver<String>, wanted: &[&str], timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut next = 0;
    while next < wanted.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) => {
                if l.contains(wanted[next]) {
                    next += 1;
                }
                seen.push(l);
            }
            Err(_) => panic!("waited {timeout:?} for {:?}; kube-proxy said:\n{}", wanted[next], seen.join("\n")),
        }
    }
    seen
}

/// The status line of `GET /healthz` on `ADDR:port` from inside `ns`.
fn healthz_status(ns: &Netns, port: u16) -> String {
    ns.run(move || {
        let mut s = TcpStream::connect((ADDR, port)).expect("connect to healthz");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines().next().unwrap_or_default().to_string()
    })
    .join()
    .unwrap()
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn ipvs_mode_falls_back_to_iptables_without_kernel_support() {
    if kernel_has_ipvs() {
        eprintln!("skipping: this kernel has IPVS, so there is no fallback to see");
        return;
    }
    let ns = netns();
    let healthz = format!("{ADDR}:10256");
    let child = kube_proxy(
        &ns,
        &[
            "--proxy-mode=ipvs",
            "--ipvs-scheduler=rr",
            // Nothing listens there: kube-proxy keeps retrying, which is all we need.
            "--master=http://127.0.0.1:1",
            "--hostname-override=ipvs-e2e",
            "--healthz-bind-address",
            &healthz,
            "--metrics-bind-address",
            "127.0.0.1:10249",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start kube-proxy");
    let mut running = ProxyProcess(child);
    let stderr = running.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let seen =
        wait_for_lines(&rx, &["Can't use ipvs proxier, trying iptables proxier", "using the iptables proxier"], Duration::from_secs(30));
    let fallback = seen.iter().find(|l| l.contains("Can't use ipvs")).unwrap();
    assert!(fallback.contains("WARN"), "{fallback}");
    assert!(fallback.contains("IPVS is not available in this kernel"), "the log line says why: {fallback}");
    assert!(!seen.iter().any(|l| l.contains("using the ipvs proxier")), "{seen:?}");
    // Still running and serving after the fallback (503 until the first sync).
    std::thread::sleep(Duration::from_millis(300));
    assert!(running.0.try_wait().unwrap().is_none(), "kube-proxy exited: {seen:?}");
    let status = healthz_status(&ns, 10256);
    assert!(status.starts_with("HTTP/1."), "healthz answered {status:?}");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn cleanup_with_ipvs_mode_configured_works_without_ipvs() {
    let ns = netns();
    // Leftovers of an iptables-based mode: a jump and a kube-proxy chain.
    ns.exec(&["iptables", "-w", "-t", "nat", "-N", "KUBE-SERVICES"]);
    ns.exec(&[
        "iptables",
        "-w",
        "-t",
        "nat",
        "-I",
        "OUTPUT",
        "-m",
        "comment",
        "--comment",
        "kubernetes service portals",
        "-j",
        "KUBE-SERVICES",
    ]);
    ns.exec(&["iptables", "-w", "-t", "nat", "-N", "KUBE-NODE-PORT"]);
    let out = kube_proxy(&ns, &["--cleanup", "--proxy-mode=ipvs"]).stdin(Stdio::null()).output().expect("run kube-proxy --cleanup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--cleanup failed: {stderr}");
    if !kernel_has_ipvs() {
        assert!(stderr.contains("ipvs: no kernel support"), "{stderr}");
    }
    let saved = ns.exec(&["iptables-save", "-t", "nat"]);
    assert!(!saved.contains("KUBE-SERVICES"), "{saved}");
    assert!(!saved.contains("KUBE-NODE-PORT"), "the IPVS mode's chain is removed too: {saved}");
}
