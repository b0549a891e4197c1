//! One probe of one container: the loop of upstream's prober `worker`.
//!
//! Every `periodSeconds` (start to start), and when woken because the pod's status changed, it
//! looks at the container in the last published status. A new instance resets it (and drops
//! the old instance's verdict); a container that is not running reads as failing; startup gates
//! liveness and readiness, and a readiness probe runs at once when its container has just
//! started; the initial delay counts from the instance's start. Each check's outcome goes
//! through the thresholds ([`ProbeState`]); a check that could not be made is retried, then
//! ignored. A reached verdict is stored in the manager's results.
//!
//! An instance that was running before this kubelet started gets no initial verdict: it keeps
//! its published readiness until probed (a kubelet restart must not make ready pods flap).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::action::{probe_action, run};
use super::state::{ProbeState, Thresholds, initial_result};
use super::{ProbeKind, ProbeResult, Shared};
use crate::kuberuntime::labels::PodRef;
use crate::probe::{ProbeOutcome, ProbeOutcomeKind};
use crate::status_manager::ProbeView;
use kubelet_types::events::EventType;

/// Attempts of a check that could not be made, before the round is given up (upstream's
/// `maxProbeRetries`).
const MAX_ATTEMPTS: usize = 3;

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
    /// Probed (or nothing to do): look again a period after this look began.
    Continue,
    /// Held back until the container has started: look again as soon as it has.
    Gated,
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
        let mut gated = false;
        loop {
            let view = self.shared.status.probe_view(&self.pod_ref.uid, &self.container.name);
            let new_instance =
                view.as_ref().and_then(|v| v.container_id.as_deref()).is_some_and(|id| state.container_id.as_deref() != Some(id));
            let just_started = gated && view.as_ref().is_some_and(|v| v.started);
            if new_instance || just_started || Instant::now() >= due {
                let began = Instant::now();
                let step = tokio::select! {
                    _ = self.stop.cancelled() => return,
                    step = self.look(view, &mut state) => step,
                };
                gated = matches!(step, Step::Gated);
                match step {
                    Step::Continue | Step::Gated => due = began + period,
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

    /// Stores a verdict unless the worker was stopped meanwhile (its pod is gone).
    fn set(&self, id: &str, result: Option<ProbeResult>) {
        if !self.stop.is_cancelled() {
            self.shared.set(&self.pod_ref, id, self.kind, result);
        }
    }

    async fn look(&self, view: Option<ProbeView>, state: &mut ProbeState) -> Step {
        let Some(view) = view else { return Step::Continue };
        if view.pod_terminal {
            return Step::Stop;
        }
        let Some(id) = view.container_id.clone() else { return Step::Continue };
        let previous = state.container_id.clone();
        if state.observe_container(&id) {
            if let Some(old) = previous {
                self.set(&old, None);
            }
            let adopted = view.running_since.is_some_and(|t| t < self.shared.adopted_before);
            if !adopted {
                self.set(&id, initial_result(self.kind));
            } else if self.kind == ProbeKind::Startup && view.started {
                // It had started before the restart: that stands until probed again.
                self.set(&id, Some(ProbeResult::Success));
            }
        }
        if state.on_hold {
            return Step::Continue;
        }
        let Some(running_since) = view.running_since else {
            self.set(&id, Some(ProbeResult::Failure));
            let never = self.pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
            return if view.terminated && never && self.container.restart_policy.is_none() { Step::Stop } else { Step::Continue };
        };
        match self.kind {
            ProbeKind::Startup if view.started => return Step::Continue,
            ProbeKind::Liveness | ProbeKind::Readiness if !view.started => return Step::Gated,
            _ => {}
        }
        let delay = seconds(self.probe.initial_delay_seconds, 0);
        let age = self.shared.clock.now().duration_since(running_since).unwrap_or_default();
        if age < delay {
            return Step::NotBefore(Instant::now() + (delay - age));
        }
        let probing = Instant::now();
        let outcome = self.check(&view, &id).await;
        let took = probing.elapsed().as_secs_f64();
        let counted = match outcome.kind {
            ProbeOutcomeKind::Failure => super::metrics::ProbeRunResult::Failed,
            ProbeOutcomeKind::Error => super::metrics::ProbeRunResult::Unknown,
            _ => super::metrics::ProbeRunResult::Successful,
        };
        if self.stop.is_cancelled() {
            return Step::Stop;
        }
        self.shared.counters.inc(&self.pod_ref, &self.container.name, self.kind, counted);
        self.shared.counters.observe_duration(&self.pod_ref, &self.container.name, self.kind, counted, took);
        let title = self.kind.title();
        let output = outcome.output.trim_end();
        match outcome.kind {
            ProbeOutcomeKind::Failure => {
                self.shared.events.event(&self.pod, EventType::Warning, "Unhealthy", &format!("{title} probe failed: {output}"));
            }
            ProbeOutcomeKind::Warning => {
                self.shared.events.event(&self.pod, EventType::Warning, "ProbeWarning", &format!("{title} probe warning: {output}"));
            }
            ProbeOutcomeKind::Error => {
                // Neither success nor failure: the thresholds don't move.
                let message = format!("{title} probe errored and resulted in unknown state: {output}");
                self.shared.events.event(&self.pod, EventType::Warning, "Unhealthy", &message);
                return Step::Continue;
            }
            ProbeOutcomeKind::Success => {}
        }
        if let Some(verdict) = state.record(self.kind, outcome.passed(), Thresholds::of(&self.probe)) {
            self.set(&id, Some(verdict));
        }
        Step::Continue
    }

    /// Runs the check, again (up to [`MAX_ATTEMPTS`]) while it could not be made.
    async fn check(&self, view: &ProbeView, id: &str) -> ProbeOutcome {
        let Some(ip) = view.pod_ip.as_deref() else { return ProbeOutcome::error("the pod has no IP yet") };
        let action = match probe_action(&self.probe, &self.container, ip) {
            Ok(a) => a,
            Err(e) => return ProbeOutcome::error(e.to_string()),
        };
        let timeout = seconds(self.probe.timeout_seconds, 1);
        let mut outcome = ProbeOutcome::error("not run");
        for _ in 0..MAX_ATTEMPTS {
            outcome = run(&action, self.shared.runtime.as_ref(), id, Some(timeout)).await;
            if outcome.kind != ProbeOutcomeKind::Error {
                break;
            }
        }
        outcome
    }
}
