//! Node conditions (upstream `nodestatus` setters): `MemoryPressure`, `DiskPressure`,
//! `PIDPressure` and `Ready`, with upstream's reasons and messages. `Ready` is last, as upstream
//! keeps it. Transition times only move when a status flips. Pure.

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubelet_types::node::Pressure;

/// Why the runtime is not ready, from the CRI `Status` call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeHealth {
    /// `container runtime not ready: ...`, `container runtime network not ready: ...`, PLEG, ...
    pub errors: Vec<String>,
}

impl RuntimeHealth {
    /// Reads the `RuntimeReady` and `NetworkReady` conditions of a CRI status (upstream
    /// `updateRuntimeUp`); `None` means the runtime did not answer.
    pub fn from_cri(status: Option<&kubelet_cri::api::RuntimeStatus>) -> RuntimeHealth {
        let Some(status) = status else {
            return RuntimeHealth { errors: vec!["container runtime is down".into()] };
        };
        let find = |t: &str| status.conditions.iter().find(|c| c.r#type == t);
        let mut errors = Vec::new();
        match find("RuntimeReady") {
            Some(c) if c.status => {}
            Some(c) => errors.push(format!("container runtime not ready: RuntimeReady=false reason:{} message:{}", c.reason, c.message)),
            None => errors.push("container runtime not ready: RuntimeReady condition is missing".into()),
        }
        match find("NetworkReady") {
            Some(c) if c.status => {}
            Some(c) => {
                errors.push(format!("container runtime network not ready: NetworkReady=false reason:{} message:{}", c.reason, c.message))
            }
            None => errors.push("container runtime network not ready: NetworkReady condition is missing".into()),
        }
        RuntimeHealth { errors }
    }
}

/// Go's `utilerrors.NewAggregate(errs).Error()`.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn set(conditions: &mut Vec<NodeCondition>, type_: &str, status: &str, reason: &str, message: &str, now: &Time) {
    let fresh = NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status == status {
                let since = c.last_transition_time.clone().or(Some(now.clone()));
                *c = NodeCondition { last_transition_time: since, ..fresh };
            } else {
                *c = fresh;
            }
        }
        None => conditions.push(fresh),
    }
}

/// Updates the kubelet-owned conditions in `conditions` (others, like `NetworkUnavailable`, are
/// kept). `missing_capacity` lists required capacities the node lacks.
pub fn set_conditions(
    conditions: &mut Vec<NodeCondition>,
    health: &RuntimeHealth,
    pressure: Pressure,
    missing_capacity: &[&str],
    now: &Time,
) {
    let pressures = [
        (
            "MemoryPressure",
            pressure.memory,
            ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
            ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ),
        (
            "DiskPressure",
            pressure.disk,
            ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ),
        (
            "PIDPressure",
            pressure.pid,
            ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
            ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ),
    ];
    for (type_, under, (on_reason, on_msg), (off_reason, off_msg)) in pressures {
        if under {
            set(conditions, type_, "True", on_reason, on_msg, now);
        } else {
            set(conditions, type_, "False", off_reason, off_msg, now);
        }
    }
    let mut errors = health.errors.clone();
    if !missing_capacity.is_empty() {
        errors.push(format!("Missing node capacity for resources: {}", missing_capacity.join(", ")));
    }
    if errors.is_empty() {
        set(conditions, "Ready", "True", "KubeletReady", "kubelet is posting ready status", now);
    } else {
        set(conditions, "Ready", "False", "KubeletNotReady", &aggregate(&errors), now);
    }
    // Ready goes last (upstream keeps it there for old readers).
    if let Some(i) = conditions.iter().position(|c| c.type_ == "Ready") {
        let ready = conditions.remove(i);
        conditions.push(ready);
    }
}

/// The status of condition `type_`, if present.
pub fn condition_status<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a str> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use kubelet_cri::api::{RuntimeCondition, RuntimeStatus};

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    fn cri(runtime: bool, network: bool) -> RuntimeStatus {
        let c = |t: &str, ok: bool, reason: &str, msg: &str| RuntimeCondition {
            r#type: t.into(),
            status: ok,
            reason: reason.into(),
            message: msg.into(),
        };
        RuntimeStatus {
            conditions: vec![
                c("RuntimeReady", runtime, "", ""),
                c("NetworkReady", network, "NetworkPluginNotReady", "Network plugin returns error: cni plugin not initialized"),
            ],
        }
    }

    #[test]
    fn ready_when_runtime_and_network_are_ready() {
        let mut conds = Vec::new();
        set_conditions(&mut conds, &RuntimeHealth::from_cri(Some(&cri(true, true))), Pressure::default(), &[], &t(10));
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
        let ready = conds.last().unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
        assert_eq!(conds[0].reason.as_deref(), Some("KubeletHasSufficientMemory"));
        assert_eq!(conds[1].message.as_deref(), Some("kubelet has no disk pressure"));
    }

    #[test]
    fn network_not_ready_message_and_transition_times() {
        let mut conds = Vec::new();
        let bad = RuntimeHealth::from_cri(Some(&cri(true, false)));
        set_conditions(&mut conds, &bad, Pressure::default(), &[], &t(10));
        let ready = conds.last().unwrap().clone();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
            )
        );
        set_conditions(&mut conds, &bad, Pressure::default(), &[], &t(20));
        let again = conds.last().unwrap();
        assert_eq!((again.last_transition_time.clone(), again.last_heartbeat_time.clone()), (Some(t(10)), Some(t(20))));
        set_conditions(&mut conds, &RuntimeHealth::default(), Pressure { memory: true, ..Pressure::default() }, &["cpu"], &t(30));
        let ready = conds.last().unwrap();
        assert_eq!(ready.message.as_deref(), Some("Missing node capacity for resources: cpu"));
        assert_eq!(ready.last_transition_time, Some(t(10)), "still False");
        assert_eq!(condition_status(&conds, "MemoryPressure"), Some("True"));
        assert_eq!(conds[0].last_transition_time, Some(t(30)));
    }

    #[test]
    fn keeps_foreign_conditions_and_aggregates_errors() {
        let mut conds = vec![NodeCondition { type_: "NetworkUnavailable".into(), status: "False".into(), ..Default::default() }];
        set_conditions(&mut conds, &RuntimeHealth::from_cri(None), Pressure::default(), &["pods"], &t(1));
        assert_eq!(conds[0].type_, "NetworkUnavailable");
        assert_eq!(
            conds.last().unwrap().message.as_deref(),
            Some("[container runtime is down, Missing node capacity for resources: pods]")
        );
    }
}
