//! Upstream's `ValidateKubeletConfiguration`, for the rules that matter to
//! this kubelet, plus the quantity/threshold checks upstream does when it
//! parses those strings. Each error names the field (and its flag).
//! Pure: takes a defaulted configuration, returns the first problem found.

use std::net::IpAddr;
use std::time::Duration;

use crate::error::{ConfigError, Origin};
use crate::features::FeatureGates;
use crate::labels::{check_label_value, check_qualified_name};
use crate::types::KubeletConfiguration;
use crate::{eviction, quantity};

type Problem = (String, String);

fn port_ok(p: i32) -> bool {
    (1..=65535).contains(&p)
}

/// Validates a defaulted configuration; `origin` is named in the error.
pub fn validate(c: &KubeletConfiguration, origin: &Origin) -> Result<(), ConfigError> {
    check(c).map_err(|(field, message)| ConfigError::invalid(origin, field, message))
}

fn req(ok: bool, field: &str, message: impl FnOnce() -> String) -> Result<(), Problem> {
    if ok {
        Ok(())
    } else {
        Err((field.to_string(), message()))
    }
}

fn check(c: &KubeletConfiguration) -> Result<(), Problem> {
    let gates = FeatureGates::new(&c.feature_gates);
    numbers(c)?;
    durations(c, &gates)?;
    req(
        c.system_cgroups.is_empty() || !c.cgroup_root.is_empty(),
        "systemCgroups",
        || {
            "systemCgroups (--system-cgroups) was specified and cgroupRoot (--cgroup-root) was not specified".into()
        },
    )?;
    if let Some(n) = c.max_parallel_image_pulls {
        req(n >= 1, "maxParallelImagePulls", || {
            format!("{n} must be a positive number")
        })?;
        req(
            !(c.serialize_image_pulls && n > 1),
            "maxParallelImagePulls",
            || {
                "cannot be larger than 1 unless serializeImagePulls (--serialize-image-pulls) is set to false".into()
            },
        )?;
    }
    req(
        !c.server_tls_bootstrap || gates.enabled("RotateKubeletServerCertificate"),
        "serverTLSBootstrap",
        || "requires feature gate RotateKubeletServerCertificate".into(),
    )?;
    req(!c.run_once, "runOnce", || {
        "runOnce (--runonce) mode has been deprecated and should not be set".into()
    })?;
    for (i, t) in c.register_with_taints.iter().enumerate() {
        let field = format!("registerWithTaints[{i}]");
        check_qualified_name(&t.key).map_err(|e| {
            (
                format!("{field}.key"),
                format!("invalid taint key {:?}: {e}", t.key),
            )
        })?;
        check_label_value(&t.value).map_err(|e| {
            (
                format!("{field}.value"),
                format!("invalid taint value {:?}: {e}", t.value),
            )
        })?;
        req(
            matches!(
                t.effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            ),
            &format!("{field}.effect"),
            || {
                format!(
                    "invalid taint effect {:?} (expected NoSchedule, PreferNoSchedule or NoExecute)",
                    t.effect
                )
            },
        )?;
        req(
            t.time_added.is_none(),
            &format!("{field}.timeAdded"),
            || "taint.TimeAdded must not be set".into(),
        )?;
    }
    one_of(
        &c.topology_manager_policy,
        "topologyManagerPolicy (--topology-manager-policy)",
        &["none", "best-effort", "restricted", "single-numa-node"],
    )?;
    one_of(
        &c.topology_manager_scope,
        "topologyManagerScope (--topology-manager-scope)",
        &["container", "pod"],
    )?;
    one_of(
        &c.hairpin_mode,
        "hairpinMode (--hairpin-mode)",
        &["none", "hairpin-veth", "promiscuous-bridge"],
    )?;
    one_of(
        &c.cgroup_driver,
        "cgroupDriver (--cgroup-driver)",
        &["cgroupfs", "systemd"],
    )?;
    one_of(
        &c.authorization.mode,
        "authorization.mode (--authorization-mode)",
        &["AlwaysAllow", "Webhook"],
    )?;
    one_of(
        &c.memory_reservation_policy,
        "memoryReservationPolicy",
        &["None", "TieredReservation"],
    )?;
    one_of(
        &c.logging.format,
        "logging.format (--logging-format)",
        &["text", "json"],
    )?;
    one_of(
        &c.tls_min_version,
        "tlsMinVersion (--tls-min-version)",
        &[
            "",
            "VersionTLS10",
            "VersionTLS11",
            "VersionTLS12",
            "VersionTLS13",
        ],
    )?;
    req(
        c.memory_reservation_policy != "TieredReservation" || gates.enabled("MemoryQoS"),
        "memoryReservationPolicy",
        || "\"TieredReservation\" requires the MemoryQoS feature gate".into(),
    )?;
    if gates.enabled("NodeSwap") {
        one_of(
            &c.memory_swap.swap_behavior,
            "memorySwap.swapBehavior",
            &["", "NoSwap", "LimitedSwap"],
        )?;
    } else {
        req(
            c.memory_swap.swap_behavior.is_empty(),
            "memorySwap.swapBehavior",
            || "cannot be set when NodeSwap feature flag is disabled".into(),
        )?;
    }
    node_allocatable(c)?;
    image_pull_policy(c, &gates)?;
    if !c.reserved_system_cpus.is_empty() {
        req(
            c.system_reserved_cgroup.is_empty() && c.kube_reserved_cgroup.is_empty(),
            "reservedSystemCPUs",
            || {
                "can't use reservedSystemCPUs (--reserved-cpus) with systemReservedCgroup (--system-reserved-cgroup) or kubeReservedCgroup (--kube-reserved-cgroup)".into()
            },
        )?;
        req(
            is_cpuset(&c.reserved_system_cpus),
            "reservedSystemCPUs",
            || {
                format!(
                    "unable to parse {:?} as a CPU list such as \"0-3,8\"",
                    c.reserved_system_cpus
                )
            },
        )?;
    }
    req(
        c.memory_throttling_factor > 0.0 && c.memory_throttling_factor <= 1.0,
        "memoryThrottlingFactor",
        || {
            format!(
                "{} must be greater than 0 and less than or equal to 1.0",
                c.memory_throttling_factor
            )
        },
    )?;
    req(
        !c.container_runtime_endpoint.is_empty(),
        "containerRuntimeEndpoint",
        || "was not specified or empty".into(),
    )?;
    req(
        !c.enable_system_log_query || gates.enabled("NodeLogQuery"),
        "enableSystemLogQuery",
        || "NodeLogQuery feature gate is required for enableSystemLogQuery".into(),
    )?;
    req(
        !c.enable_system_log_query || c.enable_system_log_handler,
        "enableSystemLogQuery",
        || "enableSystemLogHandler is required for enableSystemLogQuery".into(),
    )?;
    pod_logs_dir(&c.pod_logs_dir)?;
    addresses(c)?;
    quantities(c)
}

fn one_of(value: &str, field: &str, allowed: &[&str]) -> Result<(), Problem> {
    let name = field.split(' ').next().unwrap_or(field);
    req(allowed.contains(&value), name, || {
        format!("{value:?} specified for {field}; valid options are {allowed:?}")
    })
}

fn numbers(c: &KubeletConfiguration) -> Result<(), Problem> {
    req(
        c.node_lease_duration_seconds > 0,
        "nodeLeaseDurationSeconds",
        || "must be greater than 0".into(),
    )?;
    let non_negative: [(&str, i64); 9] = [
        ("eventBurst (--event-burst)", c.event_burst.into()),
        ("eventRecordQPS (--event-qps)", c.event_record_qps.into()),
        ("kubeAPIBurst (--kube-api-burst)", c.kube_api_burst.into()),
        ("kubeAPIQPS (--kube-api-qps)", c.kube_api_qps.into()),
        ("maxOpenFiles (--max-open-files)", c.max_open_files),
        ("maxPods (--max-pods)", c.max_pods.into()),
        ("podsPerCore (--pods-per-core)", c.pods_per_core.into()),
        ("registryBurst (--registry-burst)", c.registry_burst.into()),
        (
            "registryPullQPS (--registry-qps)",
            c.registry_pull_qps.into(),
        ),
    ];
    for (field, v) in non_negative {
        req(v >= 0, field.split(' ').next().unwrap_or(field), || {
            format!("{field} {v} must not be a negative number")
        })?;
    }
    req(
        c.healthz_port == 0 || port_ok(c.healthz_port),
        "healthzPort",
        || {
            format!(
                "healthzPort (--healthz-port) {} must be between 1 and 65535, inclusive",
                c.healthz_port
            )
        },
    )?;
    req(port_ok(c.port), "port", || {
        format!(
            "port (--port) {} must be between 1 and 65535, inclusive",
            c.port
        )
    })?;
    req(
        c.read_only_port == 0 || port_ok(c.read_only_port),
        "readOnlyPort",
        || {
            format!(
                "readOnlyPort (--read-only-port) {} must be between 0 and 65535, inclusive",
                c.read_only_port
            )
        },
    )?;
    for (field, v) in [
        (
            "imageGCHighThresholdPercent (--image-gc-high-threshold)",
            c.image_gc_high_threshold_percent,
        ),
        (
            "imageGCLowThresholdPercent (--image-gc-low-threshold)",
            c.image_gc_low_threshold_percent,
        ),
    ] {
        req(
            (0..=100).contains(&v),
            field.split(' ').next().unwrap_or(field),
            || format!("{field} {v} must be between 0 and 100, inclusive"),
        )?;
    }
    req(
        c.image_gc_low_threshold_percent < c.image_gc_high_threshold_percent,
        "imageGCLowThresholdPercent",
        || {
            format!(
                "imageGCLowThresholdPercent (--image-gc-low-threshold) {} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {}",
                c.image_gc_low_threshold_percent, c.image_gc_high_threshold_percent
            )
        },
    )?;
    for (field, v) in [
        ("iptablesDropBit", c.iptables_drop_bit),
        ("iptablesMasqueradeBit", c.iptables_masquerade_bit),
    ] {
        req((0..=31).contains(&v), field, || {
            format!("{v} must be between 0 and 31, inclusive")
        })?;
    }
    req(
        c.node_status_max_images >= -1,
        "nodeStatusMaxImages",
        || {
            format!(
                "nodeStatusMaxImages (--node-status-max-images) {} must be -1 or greater",
                c.node_status_max_images
            )
        },
    )?;
    req(
        (-1000..=1000).contains(&c.oom_score_adj),
        "oomScoreAdj",
        || {
            format!(
                "oomScoreAdj (--oom-score-adj) {} must be between -1000 and 1000, inclusive",
                c.oom_score_adj
            )
        },
    )?;
    req(
        c.container_log_max_workers >= 1,
        "containerLogMaxWorkers",
        || "must be greater than or equal to 1".into(),
    )?;
    req(
        c.container_log_max_files > 1,
        "containerLogMaxFiles",
        || {
            format!(
                "containerLogMaxFiles (--container-log-max-files) {} must be greater than 1",
                c.container_log_max_files
            )
        },
    )
}

fn durations(c: &KubeletConfiguration, gates: &FeatureGates) -> Result<(), Problem> {
    let fmt = |d: Duration| crate::go_duration::format(d);
    if gates.enabled("CustomCPUCFSQuotaPeriod") {
        req(
            (Duration::from_millis(1)..=Duration::from_secs(1)).contains(&c.cpu_cfs_quota_period),
            "cpuCFSQuotaPeriod",
            || {
                format!(
                    "cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {} must be between 1ms and 1sec, inclusive",
                    fmt(c.cpu_cfs_quota_period)
                )
            },
        )?;
    } else {
        req(
            c.cpu_cfs_quota_period == Duration::from_millis(100),
            "cpuCFSQuotaPeriod",
            || {
                format!(
                    "cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {} requires feature gate CustomCPUCFSQuotaPeriod",
                    fmt(c.cpu_cfs_quota_period)
                )
            },
        )?;
    }
    let (min, max) = (c.image_minimum_gc_age, c.image_maximum_gc_age);
    req(
        max.is_zero() || gates.enabled("ImageMaximumGCAge"),
        "imageMaximumGCAge",
        || {
            "ImageMaximumGCAge feature gate is required for Kubelet configuration option imageMaximumGCAge".into()
        },
    )?;
    req(max.is_zero() || max > min, "imageMaximumGCAge", || {
        format!(
            "{} must be greater than imageMinimumGCAge {}",
            fmt(max),
            fmt(min)
        )
    })?;
    req(
        !c.dra_manager_reconcile_period.is_zero(),
        "draManagerReconcilePeriod",
        || "must be greater than zero".into(),
    )?;
    req(
        c.container_log_monitor_interval >= Duration::from_secs(3),
        "containerLogMonitorInterval",
        || "must be a positive time duration greater than or equal to 3s".into(),
    )?;
    let (sgp, sgpc) = (
        c.shutdown_grace_period,
        c.shutdown_grace_period_critical_pods,
    );
    if gates.enabled("GracefulNodeShutdown") {
        req(sgpc <= sgp, "shutdownGracePeriodCriticalPods", || {
            format!("{} must be <= shutdownGracePeriod {}", fmt(sgpc), fmt(sgp))
        })?;
        for (field, d) in [
            ("shutdownGracePeriod", sgp),
            ("shutdownGracePeriodCriticalPods", sgpc),
        ] {
            req(d.is_zero() || d >= Duration::from_secs(1), field, || {
                format!("{} must be either zero or otherwise >= 1 sec", fmt(d))
            })?;
        }
    } else {
        req(
            sgp.is_zero() && sgpc.is_zero(),
            "shutdownGracePeriod",
            || "requires feature gate GracefulNodeShutdown".into(),
        )?;
    }
    if !c.shutdown_grace_period_by_pod_priority.is_empty() {
        req(
            gates.enabled("GracefulNodeShutdownBasedOnPodPriority"),
            "shutdownGracePeriodByPodPriority",
            || "requires feature gate GracefulNodeShutdownBasedOnPodPriority".into(),
        )?;
        req(
            sgp.is_zero() && sgpc.is_zero(),
            "shutdownGracePeriodByPodPriority",
            || {
                "cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time".into()
            },
        )?;
    }
    let max_restart = c.crash_loop_back_off.max_container_restart_period;
    if gates.enabled("KubeletCrashLoopBackOffMax") {
        let d = max_restart.unwrap_or_default();
        req(
            (Duration::from_secs(1)..=Duration::from_secs(300)).contains(&d),
            "crashLoopBackOff.maxContainerRestartPeriod",
            || format!("{} must be set between 1s and 300s", fmt(d)),
        )?;
    } else {
        req(
            max_restart.is_none(),
            "crashLoopBackOff.maxContainerRestartPeriod",
            || "FeatureGate KubeletCrashLoopBackOffMax not enabled, must not be set".into(),
        )?;
    }
    Ok(())
}

fn node_allocatable(c: &KubeletConfiguration) -> Result<(), Problem> {
    const FIELD: &str = "enforceNodeAllocatable";
    let list = &c.enforce_node_allocatable;
    let has = |k: &str| list.iter().any(|v| v == k);
    for (a, b) in [
        ("system-reserved", "system-reserved-compressible"),
        ("kube-reserved", "kube-reserved-compressible"),
    ] {
        req(!(has(a) && has(b)), FIELD, || {
            format!(
                "both {a:?} and {b:?} cannot be specified together (--enforce-node-allocatable)"
            )
        })?;
    }
    for (i, v) in list.iter().enumerate() {
        req(!list[..i].contains(v), FIELD, || {
            format!("duplicated enforcements {v:?} (--enforce-node-allocatable)")
        })?;
        match v.as_str() {
            "pods" => {}
            "system-reserved" | "system-reserved-compressible" => {
                req(!c.system_reserved_cgroup.is_empty(), FIELD, || {
                    format!(
                        "systemReservedCgroup (--system-reserved-cgroup) must be specified when {v:?} is included"
                    )
                })?
            }
            "kube-reserved" | "kube-reserved-compressible" => {
                req(!c.kube_reserved_cgroup.is_empty(), FIELD, || {
                    format!(
                        "kubeReservedCgroup (--kube-reserved-cgroup) must be specified when {v:?} is included"
                    )
                })?
            }
            "none" => {
                req(list.len() == 1, FIELD, || {
                    "may not contain additional enforcements when \"none\" is specified".into()
                })?;
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
            format!(
                "cgroupsPerQOS (--cgroups-per-qos) must be set to true when {v:?} is contained in enforceNodeAllocatable"
            )
        })?;
    }
    Ok(())
}

fn image_pull_policy(c: &KubeletConfiguration, gates: &FeatureGates) -> Result<(), Problem> {
    const POLICIES: &[&str] = &[
        "NeverVerify",
        "NeverVerifyPreloadedImages",
        "NeverVerifyAllowlistedImages",
        "AlwaysVerify",
    ];
    let policy = &c.image_pull_credentials_verification_policy;
    if gates.enabled("KubeletEnsureSecretPulledImages") {
        req(
            POLICIES.contains(&policy.as_str()),
            "imagePullCredentialsVerificationPolicy",
            || format!("option {policy:?} is not valid; valid options are {POLICIES:?}"),
        )?;
        req(
            c.preloaded_images_verification_allowlist.is_empty()
                || policy == "NeverVerifyAllowlistedImages",
            "preloadedImagesVerificationAllowlist",
            || {
                "can't be set if imagePullCredentialsVerificationPolicy is not \"NeverVerifyAllowlistedImages\"".into()
            },
        )
    } else {
        req(
            policy.is_empty(),
            "imagePullCredentialsVerificationPolicy",
            || {
                "must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled"
                    .into()
            },
        )?;
        req(
            c.preloaded_images_verification_allowlist.is_empty(),
            "preloadedImagesVerificationAllowlist",
            || {
                "must not be set if KubeletEnsureSecretPulledImages feature gate is not enabled"
                    .into()
            },
        )
    }
}

fn pod_logs_dir(dir: &str) -> Result<(), Problem> {
    const F: &str = "podLogsDir";
    req(!dir.is_empty(), F, || "was not specified".into())?;
    req(dir.starts_with('/'), F, || {
        format!("pod logs path {dir:?} must be absolute path")
    })?;
    let clean = dir == "/"
        || (!dir.ends_with('/')
            && !dir.contains("//")
            && !dir.split('/').any(|s| s == "." || s == ".."));
    req(clean, F, || {
        format!("pod logs path {dir:?} must be normalized")
    })?;
    req(dir.is_ascii(), F, || {
        format!("pod logs path {dir:?} must contain ASCII characters only")
    })
}

fn addresses(c: &KubeletConfiguration) -> Result<(), Problem> {
    for (field, v) in [
        ("address", &c.address),
        ("healthzBindAddress", &c.healthz_bind_address),
    ] {
        req(v.parse::<IpAddr>().is_ok(), field, || {
            format!("{v:?} is not a valid IP address")
        })?;
    }
    for (i, v) in c.cluster_dns.iter().enumerate() {
        req(
            v.parse::<IpAddr>().is_ok(),
            &format!("clusterDNS[{i}]"),
            || format!("{v:?} is not a valid IP address"),
        )?;
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

fn quantities(c: &KubeletConfiguration) -> Result<(), Problem> {
    eviction::validate(
        &c.eviction_hard,
        &c.eviction_soft,
        &c.eviction_soft_grace_period,
        &c.eviction_minimum_reclaim,
    )?;
    for (field, map) in [
        ("kubeReserved", &c.kube_reserved),
        ("systemReserved", &c.system_reserved),
    ] {
        for (res, v) in map {
            let path = format!("{field}.{res}");
            let known = matches!(res.as_str(), "cpu" | "memory" | "ephemeral-storage" | "pid")
                || res.starts_with("hugepages-");
            req(known, &path, || {
                format!(
                    "cannot reserve {res:?} resource (supported: cpu, memory, ephemeral-storage, pid, hugepages-<size>)"
                )
            })?;
            let q = quantity::parse(v).map_err(|e| (path.clone(), e.to_string()))?;
            req(!q.is_negative(), &path, || {
                format!("resource quantity for {res:?} cannot be negative: {v}")
            })?;
        }
    }
    for (res, v) in &c.qos_reserved {
        let path = format!("qosReserved.{res}");
        req(res == "memory", &path, || {
            format!("cannot reserve {res:?} resource (only memory is supported)")
        })?;
        let p = quantity::parse_percentage(v).map_err(|e| (path.clone(), e.to_string()))?;
        req((0.0..=1.0).contains(&p), &path, || {
            format!("{v} must be between 0% and 100%")
        })?;
    }
    for (i, r) in c.reserved_memory.iter().enumerate() {
        for (res, v) in &r.limits {
            let path = format!("reservedMemory[{i}].limits.{res}");
            let q = quantity::parse(v).map_err(|e| (path.clone(), e.to_string()))?;
            req(!q.is_negative() && !q.is_zero(), &path, || {
                format!("{v} must be greater than zero")
            })?;
        }
    }
    quantity::parse(&c.container_log_max_size)
        .map_err(|e| ("containerLogMaxSize".to_string(), e.to_string()))?;
    Ok(())
}
