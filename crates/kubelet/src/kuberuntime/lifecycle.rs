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
use crate::prober::action::{Action, ActionError, hook_action};

/// Why a lifecycle hook failed; the text is upstream's event message (`FailedPostStartHook`,
/// `FailedPreStopHook`).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook's handler could not be resolved (no handler, an unknown or invalid port).
    #[error("Lifecycle hook for Container {container:?} in Pod {pod:?} failed - error: {source}")]
    Handler {
        /// The container's name in the pod spec.
        container: String,
        /// The pod's full name (`<name>_<namespace>`).
        pod: String,
        /// Why the handler could not be resolved.
        #[source]
        source: ActionError,
    },
    /// The `exec` hook failed or exited non-zero.
    #[error("Exec lifecycle hook ({command:?}) for Container {container:?} in Pod {pod:?} failed - error: {output}")]
    Exec {
        /// The hook's command.
        command: Vec<String>,
        /// The container's name in the pod spec.
        container: String,
        /// The pod's full name (`<name>_<namespace>`).
        pod: String,
        /// What the check reported (the command's output or the error).
        output: String,
    },
    /// The `httpGet` hook could not be sent.
    #[error("HTTP lifecycle hook ({path}) for Container {container:?} in Pod {pod:?} failed - error: {output}")]
    Http {
        /// The request's path.
        path: String,
        /// The container's name in the pod spec.
        container: String,
        /// The pod's full name (`<name>_<namespace>`).
        pod: String,
        /// What the check reported.
        output: String,
    },
    /// A `tcpSocket` (or `grpc`) handler, which hooks cannot run (the check's output).
    #[error("{0}")]
    Unsupported(String),
}

/// Runs `handler` for container `container_id`; `Err` carries upstream's event message.
pub async fn run_hook(
    runtime: &dyn RuntimeService,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    handler: &LifecycleHandler,
    pod_ip: &str,
    timeout: Option<Duration>,
) -> Result<(), HookError> {
    let action = hook_action(handler, container, pod_ip).map_err(|source| HookError::Handler {
        container: container.name.clone(),
        pod: pod_full_name(pod),
        source,
    })?;
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
    let (container, pod, output) = (container.name.clone(), pod_full_name(pod), outcome.output);
    Err(match action {
        Action::Exec(command) => HookError::Exec { command, container, pod, output },
        Action::Http(target) => HookError::Http { path: target.path, container, pod, output },
        _ => HookError::Unsupported(output),
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

    #[tokio::test]
    async fn failed_hooks_carry_upstreams_messages() {
        use k8s_openapi::api::core::v1::ExecAction;
        let runtime = test_support::FakeRuntime::new();
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        let c = Container { name: "c".into(), ..Default::default() };
        let err = run_hook(&runtime, &pod, &c, "gone", &LifecycleHandler::default(), "", None).await.unwrap_err();
        assert!(matches!(&err, HookError::Handler { source: ActionError::NoHandler(_), .. }), "{err}");
        assert_eq!(err.to_string(), "Lifecycle hook for Container \"c\" in Pod \"p_default\" failed - error: missing probe handler for c");
        let exec = LifecycleHandler { exec: Some(ExecAction { command: Some(vec!["true".into()]) }), ..Default::default() };
        let err = run_hook(&runtime, &pod, &c, "gone", &exec, "", None).await.unwrap_err();
        assert!(matches!(&err, HookError::Exec { command, .. } if command == &["true"]), "{err}");
        assert!(
            err.to_string().starts_with("Exec lifecycle hook ([\"true\"]) for Container \"c\" in Pod \"p_default\" failed - error: "),
            "{err}"
        );
    }
}
