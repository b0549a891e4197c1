//! The IPVS mode (upstream `pkg/proxy/ipvs` `syncProxyRules`): each sync computes the desired
//! state, reads the kernel's, plans the difference and applies it through the [`IpvsHandle`],
//! the [`IpvsHost`] and the iptables [`RulesApplier`] (the mode's `iptables-restore` text).

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use proxy_config::ProxyMode;

use super::{Backend, BackendReport, SyncError, SyncInput};
use crate::app::settings::IpvsSettings;
use crate::applier::RulesApplier;
use crate::applier::ipvs::{
    HostTools, IpvsError, IpvsHandle, IpvsHost, apply_plan, check_ipvs_support, current_state, ipvs_sysctls, write_sysctls,
};
use crate::ipvs::{DUMMY_DEVICE, IpvsConfig, desired_state, plan};
use crate::topology::NodeTopology;

/// The IPVS config and the kernel boundaries it programs.
pub struct IpvsBackend {
    /// The mode's settings: scheduler, node, family, masquerading, NodePort addresses, excluded CIDRs.
    pub cfg: IpvsConfig,
    handle: Box<dyn IpvsHandle + Send>,
    host: Box<dyn IpvsHost + Send>,
}

impl fmt::Debug for IpvsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpvsBackend").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl IpvsBackend {
    /// A backend programming virtual servers through `handle` and ipsets, the `kube-ipvs0`
    /// device and addresses through `host`.
    pub fn new(cfg: IpvsConfig, handle: Box<dyn IpvsHandle + Send>, host: Box<dyn IpvsHost + Send>) -> Self {
        IpvsBackend { cfg, handle, host }
    }
}

impl Backend for IpvsBackend {
    fn mode(&self) -> ProxyMode {
        ProxyMode::IPVS
    }

    fn node(&self) -> &NodeTopology {
        &self.cfg.node
    }

    fn set_node(&mut self, node: NodeTopology) {
        self.cfg.node = node;
    }

    /// Returns the number of IPVS/address operations done as the report's commands.
    fn sync(&mut self, input: SyncInput<'_>, iptables: &mut dyn RulesApplier) -> Result<BackendReport, SyncError> {
        let desired = desired_state(input.services, input.endpoints, &self.cfg);
        // Listing kube-ipvs0's addresses needs the device.
        self.host.ensure_dummy_device()?;
        let current = current_state(self.handle.as_mut(), self.host.as_mut(), self.cfg.family)?;
        let p = plan(&desired, &current, &self.cfg);
        for op in &p.operations {
            tracing::debug!("ipvs: {op:?}");
        }
        let commands = apply_plan(&p, self.handle.as_mut(), self.host.as_mut(), iptables)?;
        Ok(BackendReport { full: true, commands, cleanup_error: None })
    }
}

/// The real IPVS backend for `settings`, with `local_ips` (interface, address)
/// used for NodePorts when `nodePortAddresses` selects every address.
/// Fails, before changing anything, when the kernel has no IPVS or `ipset`
/// is missing; then sets the sysctls and timeouts the mode needs.
pub fn real_backend(
    mut settings: IpvsSettings,
    local_ips: &[(String, IpAddr)],
    netns: Option<&str>,
    proc_sys: &Path,
) -> Result<IpvsBackend, IpvsError> {
    let tools = HostTools::new(netns);
    let mut handle = check_ipvs_support(&tools, netns)?;
    write_sysctls(proc_sys, &ipvs_sysctls(settings.strict_arp))?;
    if settings.timeouts.is_set()
        && let Err(e) = handle.set_timeouts(settings.timeouts)
    {
        tracing::warn!("failed to configure IPVS timeouts: {e}");
    }
    if settings.node_ports_on_all_ips {
        settings.cfg.node_port_ips =
            local_ips.iter().filter(|(iface, ip)| iface != DUMMY_DEVICE && settings.cfg.family.matches(ip)).map(|(_, ip)| *ip).collect();
    }
    Ok(IpvsBackend::new(settings.cfg, Box::new(handle), Box::new(tools)))
}
