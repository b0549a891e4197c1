//! Exec checks: a command run in the container through CRI `ExecSync` (upstream
//! `pkg/probe/exec`). Exit code 0 passes; any other code, a timeout or a runtime error fails.

use std::time::Duration;

use kubelet_cri::{CriError, RuntimeService};

use super::{ProbeOutcome, bounded_text};

/// Runs `command` in container `container_id`, killed after `timeout` when given.
pub async fn check(runtime: &dyn RuntimeService, container_id: &str, command: &[String], timeout: Option<Duration>) -> ProbeOutcome {
    match runtime.exec_sync(container_id, command.to_vec(), timeout).await {
        Ok(out) => {
            let mut text = out.stdout;
            text.extend_from_slice(&out.stderr);
            let text = bounded_text(&text);
            if out.exit_code == 0 {
                ProbeOutcome::success(text)
            } else if text.is_empty() {
                ProbeOutcome::failure(format!("command {command:?} exited with {}", out.exit_code))
            } else {
                ProbeOutcome::failure(format!("command {command:?} exited with {}: {text}", out.exit_code))
            }
        }
        Err(CriError::Timeout { timeout, .. }) => {
            let secs = timeout.as_secs();
            ProbeOutcome::failure(format!("command {command:?} timed out after {secs}s"))
        }
        Err(e) => ProbeOutcome::failure(e.to_string()),
    }
}
