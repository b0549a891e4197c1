//! Fakes of the kubelet's and kube-proxy's boundaries, for unit and integration tests.
//!
//! Production crates never depend on this one except as a dev-dependency: fakes live here, not
//! behind `cfg(test)` in library code.

mod fake_runtime;
pub mod proxy;

pub use fake_runtime::FakeRuntime;
