//! Which cgroup driver the kubelet uses. Since 1.34 (KubeletCgroupDriverFromCRI, GA) upstream
//! takes it from the runtime's CRI `RuntimeConfig` when the runtime reports one, and the
//! configuration's `cgroupDriver` only when the runtime cannot say (CRI before 1.28 answers
//! `Unimplemented`). A driver that differs from the runtime's would put pods in cgroups the
//! runtime does not manage, so the runtime's wins.

use kubelet_cri::api;

use super::pod_cgroups::CgroupDriver;

/// Where the driver came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSource {
    /// The runtime reported it; `overrides` names the configured value it replaced.
    Runtime {
        /// The configured `cgroupDriver` when it differs from the runtime's; `None` when they
        /// agree.
        overrides: Option<String>,
    },
    /// The configuration's, with why the runtime's was not used.
    Config {
        /// Why the runtime's driver was not used.
        reason: String,
    },
}

/// The driver a `cgroupDriver` value names: `systemd`, else `cgroupfs`.
pub fn parse(name: &str) -> CgroupDriver {
    if name == "systemd" { CgroupDriver::Systemd } else { CgroupDriver::Cgroupfs }
}

/// Why the runtime's driver could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the container runtime's cgroup driver (CRI RuntimeConfig): {0}")]
pub struct DriverError(pub String);

/// The driver to use, given the configured one and the runtime's answer. Only a runtime that
/// does not implement `RuntimeConfig` falls back to the configuration (as upstream); another
/// error, or a driver this kubelet does not know, is an error (the caller retries).
pub fn effective(
    configured: &str,
    reported: kubelet_cri::Result<api::RuntimeConfigResponse>,
) -> Result<(CgroupDriver, DriverSource), DriverError> {
    let linux = match reported {
        Ok(r) => r.linux,
        Err(kubelet_cri::CriError::Status { code: tonic::Code::Unimplemented, .. }) => {
            return Ok((parse(configured), DriverSource::Config { reason: "the runtime does not implement CRI RuntimeConfig".into() }));
        }
        Err(e) => return Err(DriverError(e.to_string())),
    };
    let Some(linux) = linux else {
        return Ok((parse(configured), DriverSource::Config { reason: "the runtime's RuntimeConfig has no Linux settings".into() }));
    };
    let runtime = match api::CgroupDriver::try_from(linux.cgroup_driver) {
        Ok(api::CgroupDriver::Systemd) => CgroupDriver::Systemd,
        Ok(api::CgroupDriver::Cgroupfs) => CgroupDriver::Cgroupfs,
        Err(_) => return Err(DriverError(format!("unknown cgroup driver {}", linux.cgroup_driver))),
    };
    let overrides = (parse(configured) != runtime).then(|| configured.to_owned());
    Ok((runtime, DriverSource::Runtime { overrides }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(driver: api::CgroupDriver) -> kubelet_cri::Result<api::RuntimeConfigResponse> {
        Ok(api::RuntimeConfigResponse { linux: Some(api::LinuxRuntimeConfiguration { cgroup_driver: driver as i32 }) })
    }

    #[test]
    fn the_runtime_s_driver_wins_and_the_config_is_the_fallback() {
        assert_eq!(
            effective("cgroupfs", reported(api::CgroupDriver::Cgroupfs)),
            Ok((CgroupDriver::Cgroupfs, DriverSource::Runtime { overrides: None }))
        );
        assert_eq!(
            effective("systemd", reported(api::CgroupDriver::Cgroupfs)),
            Ok((CgroupDriver::Cgroupfs, DriverSource::Runtime { overrides: Some("systemd".into()) }))
        );
        assert_eq!(effective("cgroupfs", reported(api::CgroupDriver::Systemd)).unwrap().0, CgroupDriver::Systemd);
        let (driver, source) = effective("systemd", Err(kubelet_cri::unimplemented("RuntimeConfig"))).unwrap();
        assert_eq!(driver, CgroupDriver::Systemd);
        assert!(matches!(source, DriverSource::Config { reason } if reason.contains("does not implement")));
        assert_eq!(effective("cgroupfs", Ok(api::RuntimeConfigResponse { linux: None })).unwrap().0, CgroupDriver::Cgroupfs);
        let unavailable = kubelet_cri::CriError::Status {
            op: "RuntimeConfig",
            object: String::new(),
            code: tonic::Code::Unavailable,
            message: "down".into(),
        };
        assert!(effective("cgroupfs", Err(unavailable)).is_err(), "only Unimplemented falls back");
        let unknown = Ok(api::RuntimeConfigResponse { linux: Some(api::LinuxRuntimeConfiguration { cgroup_driver: 7 }) });
        assert_eq!(effective("cgroupfs", unknown), Err(DriverError("unknown cgroup driver 7".into())));
    }
}
