//! Duration fields, several of them allowed only behind a feature gate:
//! CFS quota period, image GC ages, graceful node shutdown, crash-loop
//! back-off, reconcile and log-monitor intervals.

use std::time::Duration;

use super::{Problem, req};
use crate::features::FeatureGates;
use crate::types::KubeletConfiguration;

pub(super) fn durations(c: &KubeletConfiguration, gates: &FeatureGates) -> Result<(), Problem> {
    let fmt = |d: Duration| crate::go_duration::format(d);
    if gates.enabled("CustomCPUCFSQuotaPeriod") {
        req((Duration::from_millis(1)..=Duration::from_secs(1)).contains(&c.cpu_cfs_quota_period), "cpuCFSQuotaPeriod", || {
            format!("cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {} must be between 1ms and 1sec, inclusive", fmt(c.cpu_cfs_quota_period))
        })?;
    } else {
        req(c.cpu_cfs_quota_period == Duration::from_millis(100), "cpuCFSQuotaPeriod", || {
            format!(
                "cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {} requires feature gate CustomCPUCFSQuotaPeriod",
                fmt(c.cpu_cfs_quota_period)
            )
        })?;
    }
    let (min, max) = (c.image_minimum_gc_age, c.image_maximum_gc_age);
    req(max.is_zero() || gates.enabled("ImageMaximumGCAge"), "imageMaximumGCAge", || {
        "ImageMaximumGCAge feature gate is required for Kubelet configuration option imageMaximumGCAge".into()
    })?;
    req(max.is_zero() || max > min, "imageMaximumGCAge", || format!("{} must be greater than imageMinimumGCAge {}", fmt(max), fmt(min)))?;
    req(!c.dra_manager_reconcile_period.is_zero(), "draManagerReconcilePeriod", || "must be greater than zero".into())?;
    req(c.container_log_monitor_interval >= Duration::from_secs(3), "containerLogMonitorInterval", || {
        "must be a positive time duration greater than or equal to 3s".into()
    })?;
    let (sgp, sgpc) = (c.shutdown_grace_period, c.shutdown_grace_period_critical_pods);
    if gates.enabled("GracefulNodeShutdown") {
        req(sgpc <= sgp, "shutdownGracePeriodCriticalPods", || format!("{} must be <= shutdownGracePeriod {}", fmt(sgpc), fmt(sgp)))?;
        for (field, d) in [("shutdownGracePeriod", sgp), ("shutdownGracePeriodCriticalPods", sgpc)] {
            req(d.is_zero() || d >= Duration::from_secs(1), field, || format!("{} must be either zero or otherwise >= 1 sec", fmt(d)))?;
        }
    } else {
        req(sgp.is_zero() && sgpc.is_zero(), "shutdownGracePeriod", || "requires feature gate GracefulNodeShutdown".into())?;
    }
    if !c.shutdown_grace_period_by_pod_priority.is_empty() {
        req(gates.enabled("GracefulNodeShutdownBasedOnPodPriority"), "shutdownGracePeriodByPodPriority", || {
            "requires feature gate GracefulNodeShutdownBasedOnPodPriority".into()
        })?;
        req(sgp.is_zero() && sgpc.is_zero(), "shutdownGracePeriodByPodPriority", || {
            "cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time".into()
        })?;
    }
    let max_restart = c.crash_loop_back_off.max_container_restart_period;
    if gates.enabled("KubeletCrashLoopBackOffMax") {
        let d = max_restart.unwrap_or_default();
        req((Duration::from_secs(1)..=Duration::from_secs(300)).contains(&d), "crashLoopBackOff.maxContainerRestartPeriod", || {
            format!("{} must be set between 1s and 300s", fmt(d))
        })?;
    } else {
        req(max_restart.is_none(), "crashLoopBackOff.maxContainerRestartPeriod", || {
            "FeatureGate KubeletCrashLoopBackOffMax not enabled, must not be set".into()
        })?;
    }
    Ok(())
}
