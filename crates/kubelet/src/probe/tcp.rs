//! TCP checks: a connection to `host:port` that opens within the timeout passes (upstream
//! `pkg/probe/tcp`).

use std::time::Duration;

use super::ProbeOutcome;

/// Opens (and closes) a TCP connection to `host:port`.
pub async fn check(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_stream)) => ProbeOutcome::success(""),
        Ok(Err(e)) => ProbeOutcome::failure(format!("dial tcp {addr}: {e}")),
        Err(_) => ProbeOutcome::failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// `host:port`, with IPv6 literals in brackets.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_port_passes_and_closed_port_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(check("127.0.0.1", port, Duration::from_secs(1)).await.passed());
        drop(listener);
        let out = check("127.0.0.1", port, Duration::from_secs(1)).await;
        assert!(!out.passed());
        assert!(out.output.contains(&format!("127.0.0.1:{port}")), "{out:?}");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
        assert_eq!(join_host_port("198.18.0.5", 80), "198.18.0.5:80");
    }
}
