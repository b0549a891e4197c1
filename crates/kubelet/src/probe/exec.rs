//! Exec checks: a command run in the container through CRI `ExecSync` (upstream
//! `pkg/probe/exec`). Exit code 0 passes; any other code or a timeout fails; a runtime error
//! (the command could not be run) is an error.

use std::time::Duration;

use kubelet_cri::{CriError, RuntimeService};

use super::{ProbeOutcome, bounded_text};

/// Runs `command` in container `container_id`, killed after `timeout` when given.
pub async fn check(runtime: &dyn RuntimeService, container_id: &str, command: &[String], timeout: Option<Duration>) -> ProbeOutcome {
    let command_timeout = timeout;
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
            // The deadline of the CRI call has the request timeout added: report the command's.
            let secs = command_timeout.unwrap_or(timeout).as_secs();
            ProbeOutcome::failure(format!("command {command:?} timed out after {secs}s"))
        }
        Err(e) => ProbeOutcome::error(e.to_string()),
    }
}
