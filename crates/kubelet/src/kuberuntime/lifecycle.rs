//! Lifecycle hooks (upstream `pkg/kubelet/lifecycle` handler runner): `postStart` right after a
//! container starts, `preStop` before it is stopped, within the grace period.
//!
//! Hooks run `exec` (through CRI `ExecSync`, unbounded as upstream, the grace period bounding
//! `preStop`), `httpGet` (any answer passes) or `sleep`. A failed hook is reported with
//! upstream's message; what follows (killing the container) is the runtime manager's call.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use kubelet_cri::RuntimeService;

use super::labels::pod_full_name;
use crate::probe::{self, ProbeOutcome};
use crate::prober::action::{Action, hook_action};

/// Runs `handler` for container `container_id`; `Err` carries upstream's event message.
pub async fn run_hook(
    runtime: &dyn RuntimeService,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    handler: &LifecycleHandler,
    pod_ip: &str,
    timeout: Option<Duration>,
) -> Result<(), String> {
    let action = hook_action(handler, container, pod_ip)
        .map_err(|e| format!("Lifecycle hook for Container {:?} in Pod {:?} failed - error: {e}", container.name, pod_full_name(pod)))?;
    let bounded = timeout.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
    let outcome: ProbeOutcome = match &action {
        Action::Exec(cmd) => probe::exec::check(runtime, container_id, cmd, timeout).await,
        Action::Http(target) => probe::http::hook(target, bounded).await,
        // Upstream cannot run tcpSocket hooks (the API keeps the field for compatibility only).
        Action::Tcp { .. } | Action::Grpc { .. } => ProbeOutcome::failure("Cannot run handler: invalid handler"),
        Action::Sleep(d) => {
            tokio::time::sleep(*d).await;
            ProbeOutcome::success("")
        }
    };
    if outcome.passed() {
        return Ok(());
    }
    Err(match &action {
        Action::Exec(cmd) => format!(
            "Exec lifecycle hook ({cmd:?}) for Container {:?} in Pod {:?} failed - error: {}",
            container.name,
            pod_full_name(pod),
            outcome.output
        ),
        Action::Http(target) => format!(
            "HTTP lifecycle hook ({}) for Container {:?} in Pod {:?} failed - error: {}",
            target.path,
            container.name,
            pod_full_name(pod),
            outcome.output
        ),
        _ => outcome.output,
    })
}

/// The spec of container `name` among the pod's containers, init containers and ephemeral
/// containers.
pub fn container_spec<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(|c| c.name == name)
}

/// The grace period left after a `preStop` hook took `spent`, never below upstream's floor of 2s.
pub fn grace_after_hook(grace: Duration, spent: Duration) -> Duration {
    grace.saturating_sub(spent).max(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_left_after_a_hook_has_a_floor() {
        assert_eq!(grace_after_hook(Duration::from_secs(30), Duration::from_secs(10)), Duration::from_secs(20));
        assert_eq!(grace_after_hook(Duration::from_secs(30), Duration::from_secs(29)), Duration::from_secs(2));
        assert_eq!(grace_after_hook(Duration::from_secs(5), Duration::from_secs(60)), Duration::from_secs(2));
    }
}
