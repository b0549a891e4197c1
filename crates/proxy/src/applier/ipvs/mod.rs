//! The IPVS proxier's kernel edge: the [`IpvsHandle`] trait (virtual and
//! real servers; real implementation [`NetlinkIpvs`] over generic netlink),
//! the [`IpvsHost`] trait (`kube-ipvs0` addresses and `ipset`; real
//! implementation [`HostTools`] over `ip`/`ipset`), reading the current
//! state, and executing a [`Plan`] in order. Fakes live in `test-support`.
//! Nothing here decides *what* to program: that is `crate::ipvs`.

mod host;
mod netlink;
mod wire;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

pub use host::{HostTools, IpvsIptablesApplier, ipvs_sysctls, write_sysctls};
pub use netlink::NetlinkIpvs;
pub use wire::{decode_destination, decode_service, encode_destination, encode_service};

use super::{ApplyError, RulesApplier};
use crate::ipvs::{CurrentState, Operation, Plan, RealServer, VirtualServer, VirtualServerKey};
use crate::net::IpFamily;

/// Why programming IPVS, its host state or its sysctls failed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The generic netlink family "IPVS" does not exist: no `ip_vs` module.
    #[error("IPVS is not available in this kernel (generic netlink family \"IPVS\" not found; is the ip_vs module loaded?)")]
    Unavailable,
    /// The generic netlink socket could not be opened, written or read.
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The kernel refused one request.
    #[error("IPVS: cannot {op} {object}: {source}")]
    Kernel {
        /// The request: `add`, `update`, `delete`, `list`, `resolve`, ...
        op: &'static str,
        /// What it was about: a virtual server, a real server of one (`ADDR of VS`),
        /// `services` for the dump, or the generic netlink family.
        object: String,
        /// The kernel's errno.
        #[source]
        source: std::io::Error,
    },
    /// A netlink reply could not be parsed; what was wrong with it.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
    /// `ip`, `ipset` or `iptables-restore` failed.
    #[error(transparent)]
    Tool(#[from] ApplyError),
    /// The named network namespace could not be entered.
    #[error("network namespace {path}: {source}")]
    Netns {
        /// The namespace's path, `/run/netns/NAME`.
        path: String,
        /// Why opening or entering it (`setns`) failed.
        #[source]
        source: std::io::Error,
    },
    /// A sysctl the IPVS mode needs could not be written.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        /// The sysctl's file (under `/proc/sys` unless another root was given).
        path: String,
        /// Why reading or writing it failed.
        #[source]
        source: std::io::Error,
    },
}

/// `ipvs.tcpTimeout`, `tcpFinTimeout`, `udpTimeout` in seconds (0 keeps the kernel's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpvsTimeouts {
    /// `ipvs.tcpTimeout`: idle timeout of established TCP connections, in seconds.
    pub tcp: u32,
    /// `ipvs.tcpFinTimeout`: timeout of TCP connections after a FIN, in seconds.
    pub tcp_fin: u32,
    /// `ipvs.udpTimeout`: timeout of UDP flows, in seconds.
    pub udp: u32,
}

impl IpvsTimeouts {
    /// Whether any timeout is non-zero, i.e. `set_timeouts` has something to write.
    pub fn is_set(&self) -> bool {
        self.tcp != 0 || self.tcp_fin != 0 || self.udp != 0
    }
}

/// IPVS virtual and real servers (upstream `utilipvs.Interface`).
pub trait IpvsHandle {
    /// Every virtual server with its real servers.
    fn virtual_servers(&mut self) -> Result<Vec<(VirtualServer, Vec<RealServer>)>, IpvsError>;
    /// Creates a virtual server (NAT forwarding) with its scheduler and persistence.
    fn add_virtual_server(&mut self, vs: &VirtualServer) -> Result<(), IpvsError>;
    /// Changes an existing virtual server's scheduler or persistence (session affinity).
    fn update_virtual_server(&mut self, vs: &VirtualServer) -> Result<(), IpvsError>;
    /// Deletes a virtual server and its real servers.
    fn delete_virtual_server(&mut self, key: &VirtualServerKey) -> Result<(), IpvsError>;
    /// Adds real server `addr` with `weight` to the virtual server `vs`.
    fn add_real_server(&mut self, vs: &VirtualServerKey, addr: SocketAddr, weight: u32) -> Result<(), IpvsError>;
    /// Changes real server `addr`'s weight (0 drains it while its connections finish).
    fn update_real_server(&mut self, vs: &VirtualServerKey, addr: SocketAddr, weight: u32) -> Result<(), IpvsError>;
    /// Removes real server `addr` from the virtual server `vs`.
    fn delete_real_server(&mut self, vs: &VirtualServerKey, addr: SocketAddr) -> Result<(), IpvsError>;
    /// `ipvsadm --set TCP TCPFIN UDP`.
    fn set_timeouts(&mut self, timeouts: IpvsTimeouts) -> Result<(), IpvsError>;
}

/// The rest of the host the IPVS proxier programs (upstream `NetLinkHandle` + `utilipset`).
pub trait IpvsHost {
    /// Creates the `kube-ipvs0` dummy interface if missing.
    fn ensure_dummy_device(&mut self) -> Result<(), IpvsError>;
    /// The addresses bound to `kube-ipvs0`.
    fn bound_addresses(&mut self) -> Result<BTreeSet<IpAddr>, IpvsError>;
    /// Binds `ip` (as a /32 or /128) to `kube-ipvs0`; already bound is not an error.
    fn bind_address(&mut self, ip: IpAddr) -> Result<(), IpvsError>;
    /// Removes `ip` from `kube-ipvs0`.
    fn unbind_address(&mut self, ip: IpAddr) -> Result<(), IpvsError>;
    /// `ipset save` output.
    fn ipset_save(&mut self) -> Result<String, IpvsError>;
    /// Feeds `ipset restore`.
    fn ipset_restore(&mut self, input: &str) -> Result<(), IpvsError>;
}

/// The kernel's current state, for [`crate::ipvs::plan`].
pub fn current_state(handle: &mut dyn IpvsHandle, host: &mut dyn IpvsHost, family: IpFamily) -> Result<CurrentState, IpvsError> {
    let mut cur = CurrentState::default();
    for (vs, real) in handle.virtual_servers()? {
        if family.matches(&vs.key.address) {
            cur.virtual_servers.insert(vs.key, (vs, real));
        }
    }
    cur.bound_addresses = host.bound_addresses()?.into_iter().filter(|ip| family.matches(ip)).collect();
    cur.ipsets = crate::ipvs::parse_ipset_save(&host.ipset_save()?);
    Ok(cur)
}

/// Runs one plan: ipsets, then IPVS and addresses, then iptables (whose
/// rules match the sets). Stops at the first error (the next sync retries
/// from the kernel's state). Returns the number of operations done.
pub fn apply_plan(
    plan: &Plan,
    handle: &mut dyn IpvsHandle,
    host: &mut dyn IpvsHost,
    iptables: &mut dyn RulesApplier,
) -> Result<usize, IpvsError> {
    host.ensure_dummy_device()?;
    if !plan.ipset_restore.is_empty() {
        host.ipset_restore(&plan.ipset_restore)?;
    }
    for op in &plan.operations {
        match op {
            Operation::BindAddress(ip) => host.bind_address(*ip)?,
            Operation::AddVirtualServer(vs) => handle.add_virtual_server(vs)?,
            Operation::UpdateVirtualServer(vs) => handle.update_virtual_server(vs)?,
            Operation::AddRealServer { server, address, weight } => handle.add_real_server(server, *address, *weight)?,
            Operation::UpdateRealServer { server, address, weight } => handle.update_real_server(server, *address, *weight)?,
            Operation::DeleteRealServer { server, address } => handle.delete_real_server(server, *address)?,
            Operation::DeleteVirtualServer(key) => handle.delete_virtual_server(key)?,
            Operation::UnbindAddress(ip) => host.unbind_address(*ip)?,
        }
    }
    iptables.apply(&plan.iptables_restore)?;
    Ok(plan.operations.len())
}

/// Runs `f` on a thread inside the named network namespace (`None`: here);
/// a netlink socket opened there keeps programming that namespace.
pub fn in_netns<T: Send + 'static>(netns: Option<&str>, f: impl FnOnce() -> Result<T, IpvsError> + Send + 'static) -> Result<T, IpvsError> {
    crate::applier::netlink::in_netns(netns, f).map_err(|e| IpvsError::Netns { path: e.path, source: e.source })?
}

/// Whether this host can run the IPVS proxier (upstream `CanUseIPVSProxier`):
/// the kernel has IPVS and `ipset` runs. The error says what is missing.
pub fn check_ipvs_support(ipset: &HostTools, netns: Option<&str>) -> Result<NetlinkIpvs, IpvsError> {
    let handle = in_netns(netns, NetlinkIpvs::new)?;
    ipset.ipset_version()?;
    Ok(handle)
}

/// `--cleanup` for IPVS: deletes every virtual server, as upstream's
/// `CleanupLeftovers` does. Returns how many were deleted.
pub fn cleanup_virtual_servers(handle: &mut dyn IpvsHandle) -> Result<usize, IpvsError> {
    let all = handle.virtual_servers()?;
    for (vs, _) in &all {
        handle.delete_virtual_server(&vs.key)?;
    }
    Ok(all.len())
}
