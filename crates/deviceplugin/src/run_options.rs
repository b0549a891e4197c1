//! What a container needs to use its devices (upstream `DeviceRunContainerOptions`): the
//! `ContainerAllocateResponse`s of its resources merged. The first setting of an environment
//! variable, mount or device path, annotation or CDI device wins; a conflicting later one is
//! logged and dropped, as upstream does. Pure.

use std::collections::BTreeMap;

use crate::v1beta1::{ContainerAllocateResponse, DeviceSpec, Mount};

/// Runtime settings for one container's devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunContainerOptions {
    /// Environment variables, before the container's own.
    pub envs: Vec<(String, String)>,
    /// Host paths to mount.
    pub mounts: Vec<Mount>,
    /// Host device nodes.
    pub devices: Vec<DeviceSpec>,
    /// Container annotations for the runtime.
    pub annotations: Vec<(String, String)>,
    /// Fully qualified CDI device names.
    pub cdi_devices: Vec<String>,
}

impl RunContainerOptions {
    /// True when the devices need nothing set on the container.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
            && self.mounts.is_empty()
            && self.devices.is_empty()
            && self.annotations.is_empty()
            && self.cdi_devices.is_empty()
    }
}

/// Whether `key` is new (then it is recorded with `value`); a different value for a known key
/// is logged.
fn first(seen: &mut BTreeMap<String, String>, what: &str, key: &str, value: &str) -> bool {
    match seen.get(key) {
        Some(existing) => {
            if existing != value {
                tracing::warn!("device plugin {what} {key:?} has conflicting settings {existing:?} and {value:?}; keeping the first");
            }
            false
        }
        None => {
            seen.insert(key.to_string(), value.to_string());
            true
        }
    }
}

/// Merges the responses of a container's resources, in the order given.
pub fn merge<'a>(responses: impl IntoIterator<Item = &'a ContainerAllocateResponse>) -> RunContainerOptions {
    let mut out = RunContainerOptions::default();
    let (mut envs, mut annotations, mut mounts, mut devices) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for resp in responses {
        for (k, v) in &resp.envs {
            if first(&mut envs, "environment variable", k, v) {
                out.envs.push((k.clone(), v.clone()));
            }
        }
        for m in &resp.mounts {
            if first(&mut mounts, "mount", &m.container_path, &m.host_path) {
                out.mounts.push(m.clone());
            }
        }
        for d in &resp.devices {
            if first(&mut devices, "device", &d.container_path, &d.host_path) {
                out.devices.push(d.clone());
            }
        }
        for (k, v) in &resp.annotations {
            if first(&mut annotations, "annotation", k, v) {
                out.annotations.push((k.clone(), v.clone()));
            }
        }
        for cdi in &resp.cdi_devices {
            if !out.cdi_devices.contains(&cdi.name) {
                out.cdi_devices.push(cdi.name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1beta1::CdiDevice;

    fn mount(c: &str, h: &str) -> Mount {
        Mount { container_path: c.into(), host_path: h.into(), read_only: true }
    }

    #[test]
    fn first_setting_wins_across_resources() {
        let a = ContainerAllocateResponse {
            envs: [("GPU".to_string(), "0".to_string()), ("SHARED".into(), "a".into())].into(),
            mounts: vec![mount("/lib/gpu", "/opt/gpu")],
            devices: vec![DeviceSpec { container_path: "/dev/gpu0".into(), host_path: "/dev/nvidia0".into(), permissions: "rw".into() }],
            annotations: [("vendor/gpu".to_string(), "0".to_string())].into(),
            cdi_devices: vec![CdiDevice { name: "vendor.com/gpu=0".into() }],
        };
        let b = ContainerAllocateResponse {
            envs: [("SHARED".to_string(), "b".to_string()), ("NIC".into(), "1".into())].into(),
            mounts: vec![mount("/lib/gpu", "/elsewhere"), mount("/lib/nic", "/opt/nic")],
            devices: vec![DeviceSpec { container_path: "/dev/gpu0".into(), host_path: "/dev/other".into(), permissions: "r".into() }],
            annotations: [("vendor/gpu".to_string(), "1".to_string())].into(),
            cdi_devices: vec![CdiDevice { name: "vendor.com/gpu=0".into() }, CdiDevice { name: "vendor.com/nic=1".into() }],
        };
        let o = merge([&a, &b]);
        assert_eq!(o.envs, vec![("GPU".into(), "0".into()), ("SHARED".into(), "a".into()), ("NIC".into(), "1".into())]);
        assert_eq!(o.mounts, vec![mount("/lib/gpu", "/opt/gpu"), mount("/lib/nic", "/opt/nic")]);
        assert_eq!(o.devices.len(), 1);
        assert_eq!(o.devices[0].host_path, "/dev/nvidia0");
        assert_eq!(o.annotations, vec![("vendor/gpu".into(), "0".into())]);
        assert_eq!(o.cdi_devices, vec!["vendor.com/gpu=0".to_string(), "vendor.com/nic=1".to_string()]);
        assert!(merge([]).is_empty());
    }
}
