//! The IPVS backend of the [`Proxier`](super::proxier::Proxier) (upstream
//! `pkg/proxy/ipvs` `syncProxyRules`): each sync computes the desired state,
//! reads the kernel's, plans the difference and applies it through the
//! [`IpvsHandle`], the [`IpvsHost`] and the iptables [`RulesApplier`].
//! Also builds the real proxier of the configured mode ([`build_proxier`]),
//! falling back to iptables when IPVS cannot run here.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use proxy_config::ProxyMode;

use super::proxier::{Backend, Proxier};
use super::settings::{BackendConfig, IpvsSettings};
use crate::applier::ipvs::{
    HostTools, IpvsError, IpvsHandle, IpvsHost, IpvsIptablesApplier, apply_plan,
    check_ipvs_support, current_state, ipvs_sysctls, write_sysctls,
};
use crate::applier::{IptablesApplier, NftApplier, RulesApplier};
use crate::conntrack::ConntrackCli;
use crate::iptables::IptablesConfig;
use crate::ipvs::{DUMMY_DEVICE, IpvsConfig, desired_state, plan};
use crate::net::IpFamily;
use crate::tracker::{EndpointsMap, ServicePortMap};

/// The IPVS config and the kernel boundaries it programs.
pub struct IpvsBackend {
    pub cfg: IpvsConfig,
    handle: Box<dyn IpvsHandle + Send>,
    host: Box<dyn IpvsHost + Send>,
}

impl fmt::Debug for IpvsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpvsBackend")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl IpvsBackend {
    pub fn new(
        cfg: IpvsConfig,
        handle: Box<dyn IpvsHandle + Send>,
        host: Box<dyn IpvsHost + Send>,
    ) -> Self {
        IpvsBackend { cfg, handle, host }
    }

    /// One sync; returns the number of IPVS/address operations done.
    pub fn sync(
        &mut self,
        services: &ServicePortMap,
        endpoints: &EndpointsMap,
        iptables: &mut dyn RulesApplier,
    ) -> Result<usize, IpvsError> {
        let desired = desired_state(services, endpoints, &self.cfg);
        // Listing kube-ipvs0's addresses needs the device.
        self.host.ensure_dummy_device()?;
        let current = current_state(self.handle.as_mut(), self.host.as_mut(), self.cfg.family)?;
        let p = plan(&desired, &current, &self.cfg);
        for op in &p.operations {
            tracing::debug!("ipvs: {op:?}");
        }
        apply_plan(&p, self.handle.as_mut(), self.host.as_mut(), iptables)
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
        settings.cfg.node_port_ips = local_ips
            .iter()
            .filter(|(iface, ip)| iface != DUMMY_DEVICE && settings.cfg.family.matches(ip))
            .map(|(_, ip)| *ip)
            .collect();
    }
    Ok(IpvsBackend::new(
        settings.cfg,
        Box::new(handle),
        Box::new(tools),
    ))
}

/// This host's interface addresses with their interface names.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    if_addrs::get_if_addrs()
        .map(|l| l.into_iter().map(|i| (i.name.clone(), i.ip())).collect())
        .unwrap_or_default()
}

/// `iptables`, `ipvs`, `nftables` (the unset mode is iptables).
pub fn mode_name(mode: ProxyMode) -> &'static str {
    match mode {
        ProxyMode::Unset => "iptables",
        other => other.as_str(),
    }
}

/// The proxier for the configured backend, with real appliers (`netns`:
/// inside that named namespace), and the mode actually running: when IPVS
/// is configured but unavailable, the iptables mode, as upstream 1.20 does.
pub fn build_proxier(
    backend: BackendConfig,
    family: IpFamily,
    netns: Option<&str>,
) -> (Proxier, ProxyMode) {
    let conntrack = Box::new(ConntrackCli::new(netns));
    match backend {
        BackendConfig::Nftables(c) => (
            Proxier::new(
                family,
                Backend::nftables(c),
                Box::new(NftApplier::new(netns)),
                conntrack,
            ),
            ProxyMode::NFTables,
        ),
        BackendConfig::Iptables(c) => (iptables_proxier(c, family, netns), ProxyMode::IPTables),
        BackendConfig::Ipvs(settings) => {
            let fallback = settings.iptables_fallback();
            match real_backend(
                settings,
                &interface_addresses(),
                netns,
                Path::new("/proc/sys"),
            ) {
                Ok(b) => (
                    Proxier::new(
                        family,
                        Backend::Ipvs(Box::new(b)),
                        Box::new(IpvsIptablesApplier::new(family, netns)),
                        conntrack,
                    ),
                    ProxyMode::IPVS,
                ),
                Err(e) => {
                    tracing::warn!("Can't use ipvs proxier, trying iptables proxier: {e}");
                    (
                        iptables_proxier(fallback, family, netns),
                        ProxyMode::IPTables,
                    )
                }
            }
        }
    }
}

fn iptables_proxier(cfg: IptablesConfig, family: IpFamily, netns: Option<&str>) -> Proxier {
    Proxier::new(
        family,
        Backend::Iptables { cfg },
        Box::new(IptablesApplier::new(family, netns)),
        Box::new(ConntrackCli::new(netns)),
    )
}
