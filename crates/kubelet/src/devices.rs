//! Device plugin resources as the pod workers and the runtime manager use them (upstream: the
//! container manager's resource allocation admit handler and `GetResources`): allocation when a
//! pod is admitted, refused with upstream's `UnexpectedAdmissionError`, and a container's
//! device settings merged into its CRI config.
//!
//! The allocation itself is the device manager's ([`kubelet_deviceplugin`]), behind
//! [`DeviceAllocator`]. Pure but for the one call to it.

use k8s_openapi::api::core::v1::Pod;
use kubelet_cri::api;
pub use kubelet_deviceplugin::{DeviceAllocator, RunContainerOptions};

use crate::admission::PodRejection;

/// Upstream's reason for a pod whose devices could not be allocated.
pub const UNEXPECTED_ADMISSION_ERROR: &str = "UnexpectedAdmissionError";

/// Allocates the devices `pod` asks for, or says why it cannot run here.
pub async fn admit(devices: &dyn DeviceAllocator, pod: &Pod) -> Result<(), PodRejection> {
    devices.allocate_pod(pod).await.map_err(|e| PodRejection {
        reason: UNEXPECTED_ADMISSION_ERROR,
        message: format!("Allocate failed due to {e}, which is unexpected"),
    })
}

/// Adds a container's device settings to its CRI config: the plugins' environment variables
/// before the container's own (which win), their mounts unless the container mounts the same
/// path, device nodes, annotations the kubelet does not set itself, and CDI devices.
pub fn apply(config: &mut api::ContainerConfig, opts: RunContainerOptions) {
    let mut envs: Vec<api::KeyValue> = opts.envs.into_iter().map(|(key, value)| api::KeyValue { key, value }).collect();
    envs.append(&mut config.envs);
    config.envs = envs;
    let mut mounts: Vec<api::Mount> = opts
        .mounts
        .into_iter()
        .filter(|m| !config.mounts.iter().any(|own| own.container_path == m.container_path))
        .map(|m| api::Mount { container_path: m.container_path, host_path: m.host_path, readonly: m.read_only, ..Default::default() })
        .collect();
    mounts.append(&mut config.mounts);
    config.mounts = mounts;
    config.devices.extend(opts.devices.into_iter().map(|d| api::Device {
        container_path: d.container_path,
        host_path: d.host_path,
        permissions: d.permissions,
    }));
    for (key, value) in opts.annotations {
        config.annotations.entry(key).or_insert(value);
    }
    config.cdi_devices.extend(opts.cdi_devices.into_iter().map(|name| api::CdiDevice { name }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelet_deviceplugin::v1beta1::{DeviceSpec, Mount};

    #[test]
    fn device_settings_join_the_container_config() {
        let mut config = api::ContainerConfig {
            envs: vec![api::KeyValue { key: "GPU".into(), value: "mine".into() }],
            mounts: vec![api::Mount { container_path: "/data".into(), host_path: "/vol".into(), ..Default::default() }],
            annotations: [("io.kubernetes.container.hash".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        let opts = RunContainerOptions {
            envs: vec![("GPU".into(), "0".into()), ("NIC".into(), "1".into())],
            mounts: vec![
                Mount { container_path: "/data".into(), host_path: "/elsewhere".into(), read_only: false },
                Mount { container_path: "/lib/gpu".into(), host_path: "/opt/gpu".into(), read_only: true },
            ],
            devices: vec![DeviceSpec { container_path: "/dev/gpu0".into(), host_path: "/dev/nvidia0".into(), permissions: "rw".into() }],
            annotations: vec![("io.kubernetes.container.hash".into(), "x".into()), ("vendor/gpu".into(), "0".into())],
            cdi_devices: vec!["vendor.com/gpu=0".into()],
        };
        apply(&mut config, opts);
        let envs: Vec<(&str, &str)> = config.envs.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(envs, [("GPU", "0"), ("NIC", "1"), ("GPU", "mine")], "the container's own variable comes last and wins");
        let mounts: Vec<(&str, &str, bool)> =
            config.mounts.iter().map(|m| (m.container_path.as_str(), m.host_path.as_str(), m.readonly)).collect();
        assert_eq!(mounts, [("/lib/gpu", "/opt/gpu", true), ("/data", "/vol", false)]);
        assert_eq!(
            config.devices,
            vec![api::Device { container_path: "/dev/gpu0".into(), host_path: "/dev/nvidia0".into(), permissions: "rw".into() }]
        );
        assert_eq!(config.annotations["io.kubernetes.container.hash"], "1");
        assert_eq!(config.annotations["vendor/gpu"], "0");
        assert_eq!(config.cdi_devices, vec![api::CdiDevice { name: "vendor.com/gpu=0".into() }]);
    }
}
