//! What the node registers and serves on: its taints, the serving and
//! healthz addresses, cluster DNS servers, and the pod logs directory.

use std::net::IpAddr;

use super::{Problem, req};
use crate::labels::{check_label_value, check_qualified_name};
use crate::types::KubeletConfiguration;

/// Taints the node registers with: qualified key, label value, known effect.
pub(super) fn register_with_taints(c: &KubeletConfiguration) -> Result<(), Problem> {
    for (i, t) in c.register_with_taints.iter().enumerate() {
        let field = format!("registerWithTaints[{i}]");
        check_qualified_name(&t.key).map_err(|e| (format!("{field}.key"), format!("invalid taint key {:?}: {e}", t.key)))?;
        check_label_value(&t.value).map_err(|e| (format!("{field}.value"), format!("invalid taint value {:?}: {e}", t.value)))?;
        req(matches!(t.effect.as_str(), "NoSchedule" | "PreferNoSchedule" | "NoExecute"), &format!("{field}.effect"), || {
            format!("invalid taint effect {:?} (expected NoSchedule, PreferNoSchedule or NoExecute)", t.effect)
        })?;
        req(t.time_added.is_none(), &format!("{field}.timeAdded"), || "taint.TimeAdded must not be set".into())?;
    }
    Ok(())
}

pub(super) fn pod_logs_dir(dir: &str) -> Result<(), Problem> {
    const F: &str = "podLogsDir";
    req(!dir.is_empty(), F, || "was not specified".into())?;
    req(dir.starts_with('/'), F, || format!("pod logs path {dir:?} must be absolute path"))?;
    let clean = dir == "/" || (!dir.ends_with('/') && !dir.contains("//") && !dir.split('/').any(|s| s == "." || s == ".."));
    req(clean, F, || format!("pod logs path {dir:?} must be normalized"))?;
    req(dir.is_ascii(), F, || format!("pod logs path {dir:?} must contain ASCII characters only"))
}

pub(super) fn addresses(c: &KubeletConfiguration) -> Result<(), Problem> {
    for (field, v) in [("address", &c.address), ("healthzBindAddress", &c.healthz_bind_address)] {
        req(v.parse::<IpAddr>().is_ok(), field, || format!("{v:?} is not a valid IP address"))?;
    }
    for (i, v) in c.cluster_dns.iter().enumerate() {
        req(v.parse::<IpAddr>().is_ok(), &format!("clusterDNS[{i}]"), || format!("{v:?} is not a valid IP address"))?;
    }
    Ok(())
}
