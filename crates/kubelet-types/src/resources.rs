//! Node capacity and allocatable (upstream `MachineInfo` setter and the container manager's
//! `GetNodeAllocatableReservation`): capacity from the machine, minus kubeReserved,
//! systemReserved and the hard eviction thresholds, minus huge pages from memory.
//!
//! Amounts are exact integers (millicores for cpu, bytes or counts otherwise) and are written
//! in the API's canonical quantity form ("4", "500m", "16Gi", "110"). Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_config::eviction::parse_threshold;
use kubelet_config::quantity;

use crate::machine::MachineInfo;

/// Resource amounts: cpu in millicores, everything else in units.
pub type Amounts = BTreeMap<String, i64>;

/// What the node reserves away from pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservations {
    /// `kubeReserved` of the KubeletConfiguration: resource name → quantity (`cpu` → `100m`).
    pub kube_reserved: BTreeMap<String, String>,
    /// `systemReserved` of the KubeletConfiguration: resource name → quantity.
    pub system_reserved: BTreeMap<String, String>,
    /// `evictionHard` of the KubeletConfiguration: signal → threshold (`memory.available` →
    /// `100Mi` or `10%`); `memory.available` and `nodefs.available` are reserved.
    pub eviction_hard: BTreeMap<String, String>,
}

/// `hugepages-2Mi` for a page size in KiB.
pub fn hugepage_resource(size_kb: u64) -> String {
    let bytes = size_kb as i64 * 1024;
    format!("hugepages-{}", binary_si(bytes))
}

/// Capacity from machine facts and maxPods / podsPerCore.
pub fn capacity(machine: &MachineInfo, max_pods: i64, pods_per_core: i64) -> Amounts {
    let mut c = Amounts::new();
    c.insert("cpu".into(), machine.num_cores * 1000);
    c.insert("memory".into(), machine.memory_capacity);
    let pods = if pods_per_core > 0 { (machine.num_cores * pods_per_core).min(max_pods) } else { max_pods };
    c.insert("pods".into(), pods);
    c.insert("ephemeral-storage".into(), machine.ephemeral_storage);
    for (kb, bytes) in &machine.hugepages {
        c.insert(hugepage_resource(*kb), *bytes);
    }
    c
}

/// A quantity of `resource` as the node counts it: millicores for cpu, units otherwise.
pub fn amount(resource: &str, q: &quantity::Quantity) -> i64 {
    if resource == "cpu" { q.milli_value() } else { q.value() }
}

/// The reservation per resource: kube + system reserved + hard eviction thresholds.
pub fn reservation(capacity: &Amounts, r: &Reservations) -> Amounts {
    let mut out = Amounts::new();
    for map in [&r.kube_reserved, &r.system_reserved] {
        for (k, v) in map {
            if let Ok(q) = quantity::parse(v) {
                *out.entry(k.clone()).or_default() += amount(k, &q);
            }
        }
    }
    for (signal, resource) in [("memory.available", "memory"), ("nodefs.available", "ephemeral-storage")] {
        let Some(v) = r.eviction_hard.get(signal) else { continue };
        let reserve = match parse_threshold(signal, v) {
            Ok(Some(t)) => t.quantity_for(capacity.get(resource).copied().unwrap_or(0)),
            _ => 0,
        };
        *out.entry(resource.into()).or_default() += reserve;
    }
    out
}

/// What the `kubepods` cgroup is limited to when `enforceNodeAllocatable` has `pods` (upstream
/// `GetNodeAllocatableAbsolute`): capacity minus kubeReserved and systemReserved; the hard
/// eviction thresholds are not taken off (the kubelet evicts before the cgroup limit bites).
pub fn pods_cgroup_limits(capacity: &Amounts, r: &Reservations) -> Amounts {
    let reserved = reservation(capacity, &Reservations { eviction_hard: BTreeMap::new(), ..r.clone() });
    capacity.iter().map(|(k, v)| (k.clone(), (v - reserved.get(k).copied().unwrap_or(0)).max(0))).collect()
}

/// Allocatable: capacity minus reservation (never negative), minus huge pages from memory.
pub fn allocatable(capacity: &Amounts, reserved: &Amounts) -> Amounts {
    let mut out: Amounts = capacity.iter().map(|(k, v)| (k.clone(), (v - reserved.get(k).copied().unwrap_or(0)).max(0))).collect();
    let huge: i64 = capacity.iter().filter(|(k, _)| k.starts_with("hugepages-")).map(|(_, v)| *v).sum();
    if let Some(mem) = out.get_mut("memory") {
        *mem = (*mem - huge).max(0);
    }
    out
}

/// `n` bytes in canonical BinarySI: the largest of Ki, Mi, ... that divides it exactly.
pub fn binary_si(n: i64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if n == 0 {
        return "0".into();
    }
    let (mut v, mut suffix) = (n, "");
    for s in SUFFIXES {
        if v % 1024 != 0 {
            break;
        }
        v /= 1024;
        suffix = s;
    }
    format!("{v}{suffix}")
}

/// The API quantity for an amount of `resource`.
pub fn to_quantity(resource: &str, value: i64) -> Quantity {
    Quantity(match resource {
        "cpu" if value % 1000 == 0 => (value / 1000).to_string(),
        "cpu" => format!("{value}m"),
        "memory" | "ephemeral-storage" => binary_si(value),
        r if r.starts_with("hugepages-") => binary_si(value),
        _ => value.to_string(),
    })
}

/// Amounts as an API `ResourceList`.
pub fn to_resource_list(amounts: &Amounts) -> BTreeMap<String, Quantity> {
    amounts.iter().map(|(k, v)| (k.clone(), to_quantity(k, *v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> MachineInfo {
        MachineInfo {
            num_cores: 4,
            memory_capacity: 16 << 30,
            hugepages: [(2048, 512 << 20)].into(),
            ephemeral_storage: 100 << 30,
            ..MachineInfo::default()
        }
    }

    #[test]
    fn the_pods_cgroup_limit_leaves_eviction_thresholds_in() {
        let cap = capacity(&machine(), 110, 0);
        let r = Reservations {
            kube_reserved: [("memory".to_string(), "256Mi".to_string())].into(),
            system_reserved: [("cpu".to_string(), "500m".to_string())].into(),
            eviction_hard: [("memory.available".to_string(), "100Mi".to_string())].into(),
        };
        let l = pods_cgroup_limits(&cap, &r);
        assert_eq!((l["memory"], l["cpu"]), ((16 << 30) - (256 << 20), 3500));
    }

    #[test]
    fn capacity_and_allocatable_follow_upstream() {
        let cap = capacity(&machine(), 110, 0);
        let r = Reservations {
            kube_reserved: [("cpu".to_string(), "100m".to_string()), ("memory".into(), "256Mi".into())].into(),
            system_reserved: [("cpu".to_string(), "0.4".to_string())].into(),
            eviction_hard: [("memory.available".to_string(), "100Mi".to_string()), ("nodefs.available".into(), "10%".into())].into(),
        };
        let alloc = allocatable(&cap, &reservation(&cap, &r));
        let list = to_resource_list(&alloc);
        assert_eq!(list["cpu"].0, "3500m");
        // 16Gi - 256Mi - 100Mi - 512Mi of huge pages.
        assert_eq!(list["memory"].0, "15516Mi");
        assert_eq!(list["pods"].0, "110");
        assert_eq!(list["hugepages-2Mi"].0, "512Mi");
        assert_eq!(alloc["ephemeral-storage"], (100i64 << 30) - (10i64 << 30));
        let cap_list = to_resource_list(&cap);
        assert_eq!(cap_list["cpu"].0, "4");
        assert_eq!(cap_list["memory"].0, "16Gi");
        assert_eq!(cap_list["ephemeral-storage"].0, "100Gi");
    }

    #[test]
    fn pods_per_core_caps_pods() {
        assert_eq!(capacity(&machine(), 110, 10)["pods"], 40);
        assert_eq!(capacity(&machine(), 30, 10)["pods"], 30);
    }

    #[test]
    fn binary_si_is_canonical() {
        assert_eq!(binary_si(1000), "1000");
        assert_eq!(binary_si(2048), "2Ki");
        assert_eq!(binary_si(32_856_344 * 1024), "32856344Ki");
        assert_eq!(hugepage_resource(1_048_576), "hugepages-1Gi");
    }
}
