//! kube-proxy. The pure core: the Service/EndpointSlice model for one IP
//! family, incremental change tracking, topology-aware endpoint selection,
//! rule builders for nftables (recommended) and iptables, the IPVS desired
//! state and its diff against the kernel ([`ipvs`]), and stale-conntrack
//! planning — functions of their inputs, no API, kernel or clock. At the
//! edge: [`applier`] (the `RulesApplier` trait, `nft`/`iptables-restore`
//! appliers, `--cleanup`), [`conntrack::ConntrackCli`], and [`app`] (API
//! watches, the sync loop, healthz/metrics and health-check servers).

pub mod app;
pub mod applier;
pub mod conntrack;
pub mod endpoints;
pub mod iptables;
pub mod ipvs;
pub mod names;
pub mod net;
pub mod nftables;
pub mod service;
pub mod sysctl;
pub mod topology;
pub mod tracker;

pub use endpoints::EndpointInfo;
pub use net::{Cidr, IpFamily};
pub use service::{NamespacedName, Protocol, ServicePortInfo, ServicePortName};
pub use topology::{Categorized, NodeTopology, categorize_endpoints};
pub use tracker::{EndpointsChangeTracker, EndpointsMap, ServiceChangeTracker, ServicePortMap};
