//! Fakes of the kubelet's and kube-proxy's boundaries, for unit and integration tests.
//!
//! Production crates never depend on this one except as a dev-dependency: fakes live here, not
//! behind `cfg(test)` in library code.

pub mod auth;
pub mod certificates;
pub mod clock;
pub mod device_plugin;
pub mod devices;
pub mod events;
mod fake_runtime;
pub mod ipvs;
pub mod proxy;
pub mod volume_api;

pub use certificates::{CertificateReport, RecordingCertificates};
pub use clock::ManualClock;
pub use device_plugin::FakeDevicePlugin;
pub use devices::{FakeDeviceAllocator, FakeDeviceResources};
pub use events::{RecordedEvent, RecordingEvents};
pub use fake_runtime::{ExecAnswer, FakeRuntime};
pub use volume_api::FakeVolumeApi;
