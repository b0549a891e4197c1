//! Traffic inside the test node's namespaces: TCP and UDP servers that
//! answer `"<endpoint> <source-ip>"`, one-shot clients, a long-lived TCP
//! connection, an HTTP GET, and the health-check node port servers run on a
//! tokio runtime inside the node namespace. Every loop is bounded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proxy::app::health::ProxierHealth;
use proxy::app::proxier::HealthCheck;
use proxy::app::service_health::ServiceHealthServers;
use proxy::service::NamespacedName;

use crate::support::Netns;

/// What one request gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Served by `endpoint` (`ip:port`), which saw the client as `source`.
    From {
        endpoint: String,
        source: String,
    },
    Refused,
    /// Timeout, unreachable, ... with the error.
    Failed(String),
}

impl Reply {
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Reply::From { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }

    fn parse(line: &str) -> Reply {
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some(e), Some(s)) => Reply::From { endpoint: e.to_string(), source: s.to_string() },
            _ => Reply::Failed(format!("bad answer {line:?}")),
        }
    }
}

/// TCP server in `ns` on `0.0.0.0:port`, calling itself `<ip>:<port>`: greets
/// each connection with `"<ip>:<port> <peer-ip>"`, then echoes every line
/// back with the same prefix.
pub fn serve_tcp(ns: &Netns, ip: &str, port: u16) {
    let me = format!("{ip}:{port}");
    let (tx, rx) = std::sync::mpsc::channel();
    ns.run(move || {
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind TCP in the pod");
        tx.send(()).unwrap();
        for c in l.incoming().take(5_000).flatten() {
            let me = me.clone();
            std::thread::spawn(move || {
                let peer = c.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let mut w = match c.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                if writeln!(w, "{me} {peer}").is_err() {
                    return;
                }
                for line in BufReader::new(c).lines().take(1_000) {
                    let Ok(line) = line else { return };
                    if writeln!(w, "{me} {peer} {line}").is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("TCP server started");
}

/// UDP server in `ns` on `0.0.0.0:port`: answers each datagram with `"<ip>:<port> <peer-ip>"`.
pub fn serve_udp(ns: &Netns, ip: &str, port: u16) {
    let me = format!("{ip}:{port}");
    let (tx, rx) = std::sync::mpsc::channel();
    ns.run(move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).expect("bind UDP in the pod");
        tx.send(()).unwrap();
        let mut buf = [0u8; 512];
        for _ in 0..20_000 {
            let Ok((_, peer)) = s.recv_from(&mut buf) else {
                return;
            };
            let _ = s.send_to(format!("{me} {}", peer.ip()).as_bytes(), peer);
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("UDP server started");
}

/// One TCP request from `ns` to `addr` (`timeout` to connect and to read).
pub fn tcp(ns: &Netns, addr: &str, timeout: Duration) -> Reply {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(move || match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => {
            let _ = s.set_read_timeout(Some(timeout));
            let mut line = String::new();
            match BufReader::new(s).read_line(&mut line) {
                Ok(n) if n > 0 => Reply::parse(&line),
                Ok(_) => Reply::Failed("closed without an answer".into()),
                Err(e) => Reply::Failed(format!("read: {e}")),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Reply::Refused,
        Err(e) => Reply::Failed(e.to_string()),
    })
    .join()
    .unwrap()
}

/// One UDP request from `ns` to `addr` from a fresh socket.
pub fn udp(ns: &Netns, addr: &str, timeout: Duration) -> Reply {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(timeout)).unwrap();
        let _ = s.send_to(b"ping", addr);
        let mut buf = [0u8; 512];
        match s.recv(&mut buf) {
            Ok(n) => Reply::parse(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Reply::Refused,
            Err(e) => Reply::Failed(e.to_string()),
        }
    })
    .join()
    .unwrap()
}

/// A UDP client socket created in `ns` that keeps its source port.
pub fn udp_socket(ns: &Netns) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind("0.0.0.0:0").unwrap()).join().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    s
}

/// Sends one datagram on `s` to `addr` and waits briefly for the answer.
pub fn udp_on(s: &UdpSocket, addr: &str) -> Reply {
    let _ = s.send_to(b"ping", addr);
    let mut buf = [0u8; 512];
    match s.recv(&mut buf) {
        Ok(n) => Reply::parse(&String::from_utf8_lossy(&buf[..n])),
        Err(e) => Reply::Failed(e.to_string()),
    }
}

/// A long-lived TCP connection made from inside a namespace (the socket
/// keeps its namespace after the thread ends).
pub struct Flow {
    stream: BufReader<TcpStream>,
    pub greeting: Reply,
}

impl Flow {
    pub fn open(ns: &Netns, addr: &str) -> Flow {
        let addr: SocketAddr = addr.parse().unwrap();
        let s = ns
            .run(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut stream = BufReader::new(s);
        let mut line = String::new();
        stream.read_line(&mut line).expect("greeting");
        Flow { stream, greeting: Reply::parse(&line) }
    }

    /// Sends `msg` and returns the echoed line, or the error.
    pub fn echo(&mut self, msg: &str) -> Result<String, String> {
        writeln!(self.stream.get_mut(), "{msg}").map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => Err("connection closed".into()),
            Ok(_) => Ok(line.trim().to_string()),
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// `GET /` over HTTP/1.0 from `ns`; the whole response, or the error.
pub fn http_get(ns: &Netns, addr: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: node\r\n\r\n").map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    })
    .join()
    .unwrap()
}

type Checks = BTreeMap<NamespacedName, HealthCheck>;

/// The health-check node port servers, running in the node namespace.
pub struct HealthServers {
    tx: tokio::sync::mpsc::UnboundedSender<(Checks, std::sync::mpsc::Sender<()>)>,
}

impl HealthServers {
    pub fn start(node: &Netns) -> HealthServers {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Checks, std::sync::mpsc::Sender<()>)>();
        node.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let health = Arc::new(ProxierHealth::new(Duration::from_secs(60)));
                health.updated(SystemTime::now());
                let mut servers = ServiceHealthServers::new(health);
                while let Some((checks, done)) = rx.recv().await {
                    servers.sync(&checks).await;
                    let _ = done.send(());
                }
                servers.shutdown();
            });
        });
        HealthServers { tx }
    }

    /// Starts/stops/updates the servers to `checks` (what the sync loop does after a sync).
    pub fn sync(&self, checks: Checks) {
        let (done, wait) = std::sync::mpsc::channel();
        self.tx.send((checks, done)).expect("health servers running");
        wait.recv_timeout(Duration::from_secs(5)).expect("health servers synced");
    }
}
