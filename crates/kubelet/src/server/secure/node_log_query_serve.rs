//! Answers a validated node log query: services the journal knows are read with `journalctl`,
//! the others from files under the log directory found by upstream's heuristics (`<name>`,
//! `<name>.log`, `<name>/<name>.log`, opened beneath the directory; regular files only). Bounded
//! by upstream's 30 s deadline and, unlike upstream, by 64 MiB; what went wrong is written into
//! the body, as upstream does.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::node_log_query::NodeLogQuery;
use super::node_logs::open_beneath;

/// Upstream's deadline for one query.
const QUERY_DEADLINE: Duration = Duration::from_secs(30);
/// The most one query answers (upstream streams without a bound; this kubelet collects the
/// answer in memory, so it is capped).
const MAX_QUERY_BYTES: u64 = 64 << 20;

/// Whether journald has the unit `<service>.service`.
async fn in_journal(service: &str) -> bool {
    let out = tokio::process::Command::new("journalctl").args(["--field", "_SYSTEMD_UNIT"]).kill_on_drop(true).output();
    match tokio::time::timeout(QUERY_DEADLINE, out).await {
        Ok(Ok(o)) if o.status.success() => String::from_utf8_lossy(&o.stdout).contains(&format!("{service}.service")),
        _ => false,
    }
}

/// The query's output.
pub async fn collect(q: &NodeLogQuery, log_dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut native, mut files) = (Vec::new(), Vec::new());
    for s in &q.services {
        if in_journal(s).await { native.push(s.clone()) } else { files.push(s.clone()) }
    }
    if !native.is_empty() {
        let child = tokio::process::Command::new("journalctl")
            .args(q.journalctl_args(&native))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(mut child) => {
                // What journalctl wrote by the deadline (at most MAX_QUERY_BYTES) is answered.
                if let Some(stdout) = child.stdout.take() {
                    let mut capped = tokio::io::AsyncReadExt::take(stdout, MAX_QUERY_BYTES);
                    let mut chunk = vec![0u8; 64 * 1024];
                    let deadline = tokio::time::Instant::now() + QUERY_DEADLINE;
                    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(&mut capped, &mut chunk)).await {
                        if n == 0 {
                            break;
                        }
                        out.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            Err(_) if q.boot.unwrap_or(0) == 0 => out.extend_from_slice(b"\nerror: journal output not available\n"),
            Err(_) => {}
        }
    }
    if files.is_empty() {
        return out;
    }
    if q.since_time.is_some() || q.until_time.is_some() || q.tail_lines.is_some() || q.boot.is_some() || !q.pattern.is_empty() {
        out.extend_from_slice(
            format!("\noptions present and query resolved to log files for [{}]\ntry without specifying options\n", files.join(" "))
                .as_bytes(),
        );
        return out;
    }
    for service in files {
        let dir = log_dir.to_path_buf();
        let found = tokio::task::spawn_blocking(move || file_log(&dir, &service))
            .await
            .unwrap_or_else(|e| Err(format!("\nerror getting log: {e}\n")));
        match found {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(msg) => out.extend_from_slice(msg.as_bytes()),
        }
    }
    out
}

/// The first of upstream's candidate files for `service` that exists and is not a directory.
fn file_log(log_dir: &Path, service: &str) -> Result<Vec<u8>, String> {
    for name in [service.to_string(), format!("{service}.log"), format!("{service}/{service}.log")] {
        match open_beneath(log_dir, &name) {
            Ok(f) => {
                let mut buf = Vec::new();
                return f
                    .take(MAX_QUERY_BYTES)
                    .read_to_end(&mut buf)
                    .map(|_| buf)
                    .map_err(|e| format!("\nerror getting log for {service}: {e}\n"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("\nerror getting log for {service}: {e}\n")),
        }
    }
    Err(format!("\nlog not found for {service}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_heuristics_in_upstream_order_and_never_outside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("svc")).unwrap();
        std::fs::write(d.path().join("svc/svc.log"), "nested\n").unwrap();
        assert_eq!(file_log(d.path(), "svc").unwrap(), b"nested\n");
        std::fs::write(d.path().join("svc.log"), "flat\n").unwrap();
        assert_eq!(file_log(d.path(), "svc").unwrap(), b"flat\n");
        assert_eq!(file_log(d.path(), "gone").unwrap_err(), "\nlog not found for gone\n");
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("escape.log")).unwrap();
        assert!(file_log(d.path(), "escape").unwrap_err().contains("error getting log for escape"));
    }
}
