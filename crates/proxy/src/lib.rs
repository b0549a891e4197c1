//! kube-proxy's pure core: the Service/EndpointSlice model for one IP family,
//! incremental change tracking, topology-aware endpoint selection, and rule
//! builders for nftables (recommended), iptables and IPVS. Everything here is
//! a function of its inputs: no API watch, no kernel access, no clock. The
//! [`applier::RulesApplier`] trait is the boundary where text meets the kernel.

pub mod applier;
pub mod endpoints;
pub mod iptables;
pub mod names;
pub mod net;
pub mod nftables;
pub mod service;
pub mod topology;
pub mod tracker;

pub use endpoints::EndpointInfo;
pub use net::{Cidr, IpFamily};
pub use service::{NamespacedName, Protocol, ServicePortInfo, ServicePortName};
pub use topology::{Categorized, NodeTopology, categorize_endpoints};
pub use tracker::{EndpointsChangeTracker, EndpointsMap, ServiceChangeTracker, ServicePortMap};
