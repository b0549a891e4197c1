//! What the node status hears from the kubelet: eviction pressure, the kubelet's own health
//! (a stuck PLEG) and the device plugins' resources. The kubelet implements the traits; the
//! cluster-mode node status loop reads them.

use crate::resources::Amounts;

/// Pressure signals (from the eviction manager, once there is one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// A `memory.available` eviction threshold is met: the node reports `MemoryPressure=True`.
    pub memory: bool,
    /// A filesystem space or inodes threshold (`nodefs`, `imagefs`, ...) is met: `DiskPressure=True`.
    pub disk: bool,
    /// A `pid.available` threshold is met: `PIDPressure=True`.
    pub pid: bool,
}

/// The kubelet's own health as the node status reports it: pressure from the eviction
/// manager, and reasons the node is not ready beyond the runtime's (a stuck PLEG).
pub trait KubeletHealthSource: Send + Sync + 'static {
    /// The eviction manager's current pressure signals.
    fn pressure(&self) -> Pressure;
    /// Extra `Ready=False` reasons, e.g. `PLEG is not healthy: ...`.
    fn not_ready_reasons(&self) -> Vec<String>;
}

/// The device plugin manager's resources, as the node status reports them.
pub trait DeviceResources: Send + Sync + 'static {
    /// Each device plugin resource's device counts, for the node's capacity and allocatable.
    fn device_capacity(&self) -> DeviceCapacity;
}

/// Device plugin resources (upstream `GetDevicePluginResourceCapacity`): every device of each
/// resource, and its healthy devices. A resource whose plugin went away is reported at 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceCapacity {
    /// Every registered device, by resource name (`vendor.com/gpu` → count).
    pub capacity: Amounts,
    /// The healthy devices, by resource name.
    pub allocatable: Amounts,
}
