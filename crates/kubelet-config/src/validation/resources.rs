//! What the node keeps back from pods: node allocatable enforcement,
//! reserved CPUs, kube/system/QoS reservations and reserved NUMA memory,
//! eviction thresholds, and the quantities they are written in.

use super::{Problem, req};
use crate::types::KubeletConfiguration;
use crate::{eviction, quantity};

pub(super) fn node_allocatable(c: &KubeletConfiguration) -> Result<(), Problem> {
    const FIELD: &str = "enforceNodeAllocatable";
    let list = &c.enforce_node_allocatable;
    let has = |k: &str| list.iter().any(|v| v == k);
    for (a, b) in [("system-reserved", "system-reserved-compressible"), ("kube-reserved", "kube-reserved-compressible")] {
        req(!(has(a) && has(b)), FIELD, || format!("both {a:?} and {b:?} cannot be specified together (--enforce-node-allocatable)"))?;
    }
    for (i, v) in list.iter().enumerate() {
        req(!list[..i].contains(v), FIELD, || format!("duplicated enforcements {v:?} (--enforce-node-allocatable)"))?;
        match v.as_str() {
            "pods" => {}
            "system-reserved" | "system-reserved-compressible" => req(!c.system_reserved_cgroup.is_empty(), FIELD, || {
                format!("systemReservedCgroup (--system-reserved-cgroup) must be specified when {v:?} is included")
            })?,
            "kube-reserved" | "kube-reserved-compressible" => req(!c.kube_reserved_cgroup.is_empty(), FIELD, || {
                format!("kubeReservedCgroup (--kube-reserved-cgroup) must be specified when {v:?} is included")
            })?,
            "none" => {
                req(list.len() == 1, FIELD, || "may not contain additional enforcements when \"none\" is specified".into())?;
                continue;
            }
            other => {
                return Err((
                    FIELD.into(),
                    format!(
                        "option {other:?} is not valid; valid options are \"pods\", \"system-reserved\", \"system-reserved-compressible\", \"kube-reserved\", \"kube-reserved-compressible\" or \"none\""
                    ),
                ));
            }
        }
        req(c.cgroups_per_qos, "cgroupsPerQOS", || {
            format!("cgroupsPerQOS (--cgroups-per-qos) must be set to true when {v:?} is contained in enforceNodeAllocatable")
        })?;
    }
    Ok(())
}

/// `reservedSystemCPUs` excludes reserved cgroups and must be a CPU list.
pub(super) fn reserved_system_cpus(c: &KubeletConfiguration) -> Result<(), Problem> {
    if !c.reserved_system_cpus.is_empty() {
        req(c.system_reserved_cgroup.is_empty() && c.kube_reserved_cgroup.is_empty(), "reservedSystemCPUs", || {
            "can't use reservedSystemCPUs (--reserved-cpus) with systemReservedCgroup (--system-reserved-cgroup) or kubeReservedCgroup (--kube-reserved-cgroup)".into()
        })?;
        req(is_cpuset(&c.reserved_system_cpus), "reservedSystemCPUs", || {
            format!("unable to parse {:?} as a CPU list such as \"0-3,8\"", c.reserved_system_cpus)
        })?;
    }
    Ok(())
}

fn is_cpuset(s: &str) -> bool {
    s.split(',').map(str::trim).all(|part| {
        let mut ends = part.splitn(2, '-').map(|n| n.parse::<u32>());
        match (ends.next(), ends.next()) {
            (Some(Ok(_)), None) => true,
            (Some(Ok(a)), Some(Ok(b))) => a <= b,
            _ => false,
        }
    })
}

pub(super) fn quantities(c: &KubeletConfiguration) -> Result<(), Problem> {
    eviction::validate(&c.eviction_hard, &c.eviction_soft, &c.eviction_soft_grace_period, &c.eviction_minimum_reclaim)?;
    for (field, map) in [("kubeReserved", &c.kube_reserved), ("systemReserved", &c.system_reserved)] {
        for (res, v) in map {
            let path = format!("{field}.{res}");
            let known = matches!(res.as_str(), "cpu" | "memory" | "ephemeral-storage" | "pid") || res.starts_with("hugepages-");
            req(known, &path, || {
                format!("cannot reserve {res:?} resource (supported: cpu, memory, ephemeral-storage, pid, hugepages-<size>)")
            })?;
            let q = quantity::parse(v).map_err(|e| (path.clone(), e.to_string()))?;
            req(!q.is_negative(), &path, || format!("resource quantity for {res:?} cannot be negative: {v}"))?;
        }
    }
    for (res, v) in &c.qos_reserved {
        let path = format!("qosReserved.{res}");
        req(res == "memory", &path, || format!("cannot reserve {res:?} resource (only memory is supported)"))?;
        let p = quantity::parse_percentage(v).map_err(|e| (path.clone(), e.to_string()))?;
        req((0.0..=1.0).contains(&p), &path, || format!("{v} must be between 0% and 100%"))?;
    }
    for (i, r) in c.reserved_memory.iter().enumerate() {
        for (res, v) in &r.limits {
            let path = format!("reservedMemory[{i}].limits.{res}");
            let q = quantity::parse(v).map_err(|e| (path.clone(), e.to_string()))?;
            req(!q.is_negative() && !q.is_zero(), &path, || format!("{v} must be greater than zero"))?;
        }
    }
    quantity::parse(&c.container_log_max_size).map_err(|e| ("containerLogMaxSize".to_string(), e.to_string()))?;
    Ok(())
}
