//! Observing without interfering: process statistics (from [`crate::proc_stats`]), the CRI view of the benchmark
//! namespace (how many of its containers run), a minimal HTTP GET for the kubelet's ports, and the
//! cleanup that leaves containerd without any benchmark sandbox.
//!
//! Cleanup only touches sandboxes labelled with the benchmark namespace, never other pods.

use std::time::{Duration, Instant};

use kubelet_cri::{RemoteRuntime, RuntimeService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench_pods::{NAMESPACE, POD_NAMESPACE_LABEL};
pub use crate::bench_pods::{remove_bench_pods, running_containers, sandboxes};
pub use crate::proc_stats::{ProcSample, clock_ticks, containerd_pid, sample};
/// How often the watcher lists containers while waiting.
pub const POLL: Duration = Duration::from_millis(100);

/// `/proc/<pid>/smaps_rollup`, for the report of where memory goes.
pub fn smaps_rollup(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default()
}

/// Kubelet-labelled sandboxes outside the benchmark namespace (someone else's pods: a kubelet
/// under benchmark would adopt them, so the run would not be clean).
pub async fn foreign_sandboxes(rt: &RemoteRuntime) -> anyhow::Result<usize> {
    let all = rt.list_pod_sandbox(None).await?;
    Ok(all
        .iter()
        .filter(|s| {
            s.labels.contains_key("io.kubernetes.pod.uid") && s.labels.get(POD_NAMESPACE_LABEL).map(String::as_str) != Some(NAMESPACE)
        })
        .count())
}

/// Polls until `want` benchmark containers run; returns the time since `start`.
pub async fn wait_running(rt: &RemoteRuntime, want: usize, start: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    loop {
        if running_containers(rt).await? >= want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("only {} of {want} containers running after {timeout:?}", running_containers(rt).await?);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until no benchmark sandbox is left; returns the time since `start`.
pub async fn wait_no_sandboxes(rt: &RemoteRuntime, start: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    loop {
        let left = sandboxes(rt).await?.len();
        if left == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("{left} benchmark sandboxes still present after {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `GET path` on `addr` over HTTP/1.1; returns the status code and body.
pub async fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no header end"))?;
        let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow::anyhow!("bad status line"))?;
        Ok::<_, anyhow::Error>((code, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id(), clock_ticks()).unwrap();
        assert!(s.rss_kib > 0 && s.threads >= 1 && s.hwm_kib >= s.rss_kib);
    }
}
