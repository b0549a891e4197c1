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
    Runtime { overrides: Option<String> },
    /// The configuration's, with why the runtime's was not used.
    Config { reason: String },
}

pub fn parse(name: &str) -> CgroupDriver {
    if name == "systemd" { CgroupDriver::Systemd } else { CgroupDriver::Cgroupfs }
}

/// The driver to use, given the configured one and the runtime's answer.
pub fn effective(configured: &str, reported: kubelet_cri::Result<api::RuntimeConfigResponse>) -> (CgroupDriver, DriverSource) {
    let linux = match reported {
        Ok(r) => r.linux,
        Err(e) => return (parse(configured), DriverSource::Config { reason: format!("the runtime does not report its cgroup driver ({e})") }),
    };
    let Some(linux) = linux else {
        return (parse(configured), DriverSource::Config { reason: "the runtime's RuntimeConfig has no Linux settings".into() });
    };
    let runtime = if linux.cgroup_driver == api::CgroupDriver::Systemd as i32 { CgroupDriver::Systemd } else { CgroupDriver::Cgroupfs };
    let overrides = (parse(configured) != runtime).then(|| configured.to_owned());
    (runtime, DriverSource::Runtime { overrides })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(driver: api::CgroupDriver) -> kubelet_cri::Result<api::RuntimeConfigResponse> {
        Ok(api::RuntimeConfigResponse { linux: Some(api::LinuxRuntimeConfiguration { cgroup_driver: driver as i32 }) })
    }

    #[test]
    fn the_runtime_s_driver_wins_and_the_config_is_the_fallback() {
        assert_eq!(effective("cgroupfs", reported(api::CgroupDriver::Cgroupfs)), (CgroupDriver::Cgroupfs, DriverSource::Runtime { overrides: None }));
        assert_eq!(effective("systemd", reported(api::CgroupDriver::Cgroupfs)), (CgroupDriver::Cgroupfs, DriverSource::Runtime { overrides: Some("systemd".into()) }));
        assert_eq!(effective("cgroupfs", reported(api::CgroupDriver::Systemd)).0, CgroupDriver::Systemd);
        let (driver, source) = effective("systemd", Err(kubelet_cri::unimplemented("RuntimeConfig")));
        assert_eq!(driver, CgroupDriver::Systemd);
        assert!(matches!(source, DriverSource::Config { reason } if reason.contains("does not report")));
        assert_eq!(effective("cgroupfs", Ok(api::RuntimeConfigResponse { linux: None })).0, CgroupDriver::Cgroupfs);
    }
}
