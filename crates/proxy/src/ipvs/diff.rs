//! Desired state + the kernel's current state → the minimal changes
//! (upstream `syncService`, `syncEndpoint`, `cleanLegacyService` and the
//! graceful termination manager). A real server that is no longer wanted
//! first gets weight 0 while it still has connections (TCP, SCTP) and is
//! deleted by a later sync once it has none; UDP ones are deleted at once.
//! Virtual servers in `excludeCIDRs` or of the other family are never
//! touched. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use super::builder::DesiredState;
use super::ipset::restore_text;
use super::{DEFAULT_WEIGHT, IpvsConfig, RealServer, VirtualServer, VirtualServerKey};
use crate::service::Protocol;

/// What the kernel holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentState {
    /// This family's virtual servers with their real servers, as the kernel lists them.
    pub virtual_servers: BTreeMap<VirtualServerKey, (VirtualServer, Vec<RealServer>)>,
    /// Addresses on `kube-ipvs0`.
    pub bound_addresses: BTreeSet<IpAddr>,
    /// Entries per ipset name (from `ipset save`); absent sets are created.
    pub ipsets: BTreeMap<String, BTreeSet<String>>,
}

/// One change to IPVS or `kube-ipvs0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Bind a Service IP to `kube-ipvs0`.
    BindAddress(IpAddr),
    /// Create a virtual server.
    AddVirtualServer(VirtualServer),
    /// Change a virtual server's scheduler or persistence.
    UpdateVirtualServer(VirtualServer),
    /// Add an endpoint to a virtual server.
    AddRealServer {
        /// The virtual server it belongs to.
        server: VirtualServerKey,
        /// The endpoint's `ip:port`.
        address: SocketAddr,
        /// Its weight (`DEFAULT_WEIGHT`).
        weight: u32,
    },
    /// A weight change: to 0 starts graceful termination, back to 1 revives it.
    UpdateRealServer {
        /// The virtual server it belongs to.
        server: VirtualServerKey,
        /// The real server's `ip:port`.
        address: SocketAddr,
        /// The new weight: 0 to drain, `DEFAULT_WEIGHT` to serve.
        weight: u32,
    },
    /// Remove a real server that is no longer wanted and has no connections left (or is UDP).
    DeleteRealServer {
        /// The virtual server it belongs to.
        server: VirtualServerKey,
        /// The real server's `ip:port`.
        address: SocketAddr,
    },
    /// Delete a virtual server no Service port wants (never one in `excludeCIDRs` or of the other family).
    DeleteVirtualServer(VirtualServerKey),
    /// Remove a Service IP from `kube-ipvs0` (never one in `excludeCIDRs` or of the other family).
    UnbindAddress(IpAddr),
}

/// Everything one sync writes, in order: `ipset restore` input, then
/// [`Operation`]s, then `iptables-restore` input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `ipset restore` input moving the sets' entries to the desired ones.
    pub ipset_restore: String,
    /// The IPVS and `kube-ipvs0` changes, in the order to apply them.
    pub operations: Vec<Operation>,
    /// `iptables-restore --noflush` input for the mode's `filter` and `nat` rules.
    pub iptables_restore: String,
}

fn owned(address: &IpAddr, cfg: &IpvsConfig) -> bool {
    cfg.family.matches(address) && !cfg.exclude_cidrs.iter().any(|c| c.contains(address))
}

/// The changes that turn `current` into `desired`.
pub fn plan(desired: &DesiredState, current: &CurrentState, cfg: &IpvsConfig) -> Plan {
    let mut ops = Vec::new();
    for ip in desired.bind_addresses.difference(&current.bound_addresses) {
        ops.push(Operation::BindAddress(*ip));
    }
    for (key, want) in &desired.virtual_servers {
        let existing = current.virtual_servers.get(key);
        match existing {
            None => ops.push(Operation::AddVirtualServer(want.server.clone())),
            Some((have, _)) if *have != want.server => ops.push(Operation::UpdateVirtualServer(want.server.clone())),
            Some(_) => {}
        }
        let have: &[RealServer] = existing.map(|(_, d)| d.as_slice()).unwrap_or(&[]);
        for addr in &want.real_servers {
            match have.iter().find(|d| d.address == *addr) {
                None => ops.push(Operation::AddRealServer { server: *key, address: *addr, weight: DEFAULT_WEIGHT }),
                Some(d) if d.weight != DEFAULT_WEIGHT => {
                    ops.push(Operation::UpdateRealServer { server: *key, address: *addr, weight: DEFAULT_WEIGHT })
                }
                Some(_) => {}
            }
        }
        for d in have.iter().filter(|d| !want.real_servers.contains(&d.address)) {
            let graceful = key.protocol != Protocol::Udp;
            if graceful && d.active_conns + d.inactive_conns > 0 {
                if d.weight != 0 {
                    ops.push(Operation::UpdateRealServer { server: *key, address: d.address, weight: 0 });
                }
            } else {
                ops.push(Operation::DeleteRealServer { server: *key, address: d.address });
            }
        }
    }
    for key in current.virtual_servers.keys() {
        if !desired.virtual_servers.contains_key(key) && owned(&key.address, cfg) {
            ops.push(Operation::DeleteVirtualServer(*key));
        }
    }
    for ip in current.bound_addresses.difference(&desired.bind_addresses) {
        if owned(ip, cfg) {
            ops.push(Operation::UnbindAddress(*ip));
        }
    }
    Plan {
        ipset_restore: restore_text(cfg.family, &desired.ipsets, &current.ipsets),
        operations: ops,
        iptables_restore: desired.iptables.clone(),
    }
}
