//! End-to-end helpers: network namespaces and veth pairs that clean up on
//! drop, and a TCP server/client that run *inside* a namespace (a thread
//! that `setns`es into it), so tests never touch the host's network stack
//! or rules. Every address is in 198.18.128.0/17.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a command; panics with its stderr on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted (with its veth ends) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `kp<tag><pid>`, unique per test process.
    pub fn new(tag: &str) -> Netns {
        let name = format!("kp{tag}{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend(args);
        sh(&full)
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Connects `a` and `b` with a veth pair: `a_if` in `a` with `a_addr`, `b_if` in `b` with `b_addrs`.
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addrs: &[&str]) {
    sh(&["ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns", &b.name]);
    a.exec(&["ip", "addr", "add", a_addr, "dev", a_if]);
    a.exec(&["ip", "link", "set", a_if, "up"]);
    for addr in b_addrs {
        b.exec(&["ip", "addr", "add", addr, "dev", b_if]);
    }
    b.exec(&["ip", "link", "set", b_if, "up"]);
}

/// A TCP server in `ns` on `0.0.0.0:port` that answers every connection with
/// the address it was reached on (`198.18.128.2:8080\n`), then closes it.
/// Runs until the test process exits (bounded: at most 10 000 connections).
pub fn serve_local_addr(ns: &Netns, port: u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    ns.run(move || {
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind in the backend namespace");
        tx.send(()).unwrap();
        for mut c in l.incoming().take(10_000).flatten() {
            let local = c.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(c, "{local}");
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("server started");
}

/// What one connection attempt from inside a namespace gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server's answer (the endpoint address it was reached on).
    Answer(String),
    Refused,
    /// Anything else (timeout, unreachable), with how long it took.
    Other(String),
}

/// Connects from `ns` to `addr` (2 s timeout) and reads the answer.
pub fn connect(ns: &Netns, addr: &str) -> (Outcome, Duration) {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(move || {
        let start = Instant::now();
        let out = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = String::new();
                match s.read_to_string(&mut buf) {
                    Ok(_) => Outcome::Answer(buf.trim().to_string()),
                    Err(e) => Outcome::Other(format!("read: {e}")),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
            Err(e) => Outcome::Other(e.to_string()),
        };
        (out, start.elapsed())
    })
    .join()
    .unwrap()
}

/// The node namespace and a backend namespace reached through a veth:
/// node `198.18.<net>.1/24`, backend `198.18.<net>.2-4/24`, and a route for
/// the service range `198.18.<net+1>.0/24` towards the backend link.
pub struct Topology {
    pub node: Netns,
    pub backend: Netns,
    pub net: u8,
}

impl Topology {
    pub fn new(tag: &str, net: u8) -> Topology {
        assert!((128..254).contains(&net), "test networks live in 198.18.128.0/17");
        let node = Netns::new(&format!("n{tag}"));
        let backend = Netns::new(&format!("b{tag}"));
        let pid = std::process::id() % 100_000;
        veth(
            &node,
            &format!("kvn{pid}"),
            &format!("198.18.{net}.1/24"),
            &backend,
            &format!("kvb{pid}"),
            &[&format!("198.18.{net}.2/24"), &format!("198.18.{net}.3/24"), &format!("198.18.{net}.4/24")],
        );
        node.exec(&["ip", "route", "add", &format!("198.18.{}.0/24", net + 1), "dev", &format!("kvn{pid}")]);
        Topology { node, backend, net }
    }

    /// Endpoint `i` (0-based) of the backend.
    pub fn endpoint(&self, i: u8) -> String {
        format!("198.18.{}.{}", self.net, i + 2)
    }

    /// A service IP in the routed service range.
    pub fn service_ip(&self) -> String {
        format!("198.18.{}.10", self.net + 1)
    }

    pub fn node_ip(&self) -> String {
        format!("198.18.{}.1", self.net)
    }
}

/// A spawned kube-proxy (or any child), stopped on drop: SIGTERM, then SIGKILL after 5 s.
pub struct ProxyProcess(pub std::process::Child);

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // SAFETY: signalling the child we spawned, by its pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
