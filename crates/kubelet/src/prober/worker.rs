//! One probe of one container: the loop of upstream's prober `worker`.
//!
//! Every `periodSeconds` (and when woken because the pod's status changed) it looks at the
//! container in the last published status. A new instance resets it; a container that is not
//! running reads as failing; startup gates liveness and readiness; the initial delay counts from
//! the instance's start. Each check's outcome goes through the thresholds ([`ProbeState`]) and a
//! reached verdict is stored in the manager's results.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::action::{probe_action, run};
use super::state::{ProbeState, Thresholds, initial_result};
use super::{ProbeKind, ProbeResult, Shared};
use crate::events::EventType;
use crate::kuberuntime::labels::PodRef;
use crate::probe::ProbeOutcomeKind;
use crate::status_manager::ProbeView;

pub(super) struct Worker {
    pub shared: Arc<Shared>,
    pub pod: Arc<Pod>,
    pub pod_ref: PodRef,
    pub container: Container,
    pub kind: ProbeKind,
    pub probe: Probe,
    pub stop: CancellationToken,
    pub wake: Arc<Notify>,
}

/// What one look at the container decided.
enum Step {
    /// Probe again after the period.
    Continue,
    /// Not yet: look again at this instant (initial delay).
    NotBefore(Instant),
    /// The container will not run again; the worker ends.
    Stop,
}

fn seconds(v: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(default))
}

impl Worker {
    pub async fn run(self) {
        let period = seconds(self.probe.period_seconds, 10);
        let mut state = ProbeState::default();
        // Pods that were running when the kubelet started are probed at random offsets so their
        // probes don't all fire at once.
        if self.shared.created.elapsed() < period {
            let jitter = period.mul_f64(fastrand::f64());
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(jitter) => {}
            }
        }
        let mut due = Instant::now();
        loop {
            let view = self.shared.status.probe_view(&self.pod_ref.uid, &self.container.name);
            let new_instance = view.as_ref().and_then(|v| v.container_id.as_deref()).is_some_and(|id| state.container_id.as_deref() != Some(id));
            if new_instance || Instant::now() >= due {
                match self.look(view, &mut state).await {
                    Step::Continue => due = Instant::now() + period,
                    Step::NotBefore(at) => due = at,
                    Step::Stop => return,
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn look(&self, view: Option<ProbeView>, state: &mut ProbeState) -> Step {
        let Some(view) = view else { return Step::Continue };
        if view.pod_terminal {
            return Step::Stop;
        }
        let Some(id) = view.container_id.clone() else { return Step::Continue };
        if state.observe_container(&id) {
            self.shared.set(&self.pod_ref, &id, self.kind, initial_result(self.kind));
        }
        if state.on_hold {
            return Step::Continue;
        }
        let Some(running_since) = view.running_since else {
            self.shared.set(&self.pod_ref, &id, self.kind, Some(ProbeResult::Failure));
            let never = self.pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
            return if view.terminated && never && self.container.restart_policy.is_none() { Step::Stop } else { Step::Continue };
        };
        match self.kind {
            ProbeKind::Startup if view.started => return Step::Continue,
            ProbeKind::Liveness | ProbeKind::Readiness if !view.started => return Step::Continue,
            _ => {}
        }
        let delay = seconds(self.probe.initial_delay_seconds, 0);
        let now = self.shared.clock.now();
        let age = now.duration_since(running_since).unwrap_or_default();
        if age < delay {
            return Step::NotBefore(Instant::now() + (delay - age));
        }
        let outcome = match view.pod_ip.as_deref().map(|ip| probe_action(&self.probe, &self.container, ip)) {
            Some(Ok(action)) => {
                let timeout = seconds(self.probe.timeout_seconds, 1);
                run(&action, self.shared.runtime.as_ref(), &id, Some(timeout)).await
            }
            Some(Err(e)) => crate::probe::ProbeOutcome::failure(e.to_string()),
            None => crate::probe::ProbeOutcome::failure("the pod has no IP yet"),
        };
        let counted = match outcome.kind {
            ProbeOutcomeKind::Failure => super::metrics::ProbeRunResult::Failed,
            _ => super::metrics::ProbeRunResult::Successful,
        };
        self.shared.counters.inc(&self.pod_ref, &self.container.name, self.kind, counted);
        match outcome.kind {
            ProbeOutcomeKind::Failure => {
                let message = format!("{} probe failed: {}", self.kind.title(), outcome.output.trim_end());
                self.shared.events.event(&self.pod, EventType::Warning, "Unhealthy", &message);
            }
            ProbeOutcomeKind::Warning => {
                let message = format!("{} probe warning: {}", self.kind.title(), outcome.output.trim_end());
                self.shared.events.event(&self.pod, EventType::Warning, "ProbeWarning", &message);
            }
            ProbeOutcomeKind::Success => {}
        }
        if let Some(verdict) = state.record(self.kind, outcome.passed(), Thresholds::of(&self.probe)) {
            self.shared.set(&self.pod_ref, &id, self.kind, Some(verdict));
        }
        Step::Continue
    }
}
