//! Which proxy mode runs, decided in one place. When `mode` is empty: nftables, the mode we
//! recommend, when the kernel and `nft` support it; else iptables, with a log line saying
//! why ([`effective_mode`], pure except for [`nft_usable`], the probe). [`build_proxier`]
//! then builds the [`Proxier`] with that mode's [`Backend`](super::backend::Backend) and real
//! appliers, falling back to iptables when IPVS cannot run here.

use std::net::IpAddr;
use std::path::Path;

use proxy_config::ProxyMode;

use super::backend::{IptablesBackend, NftablesBackend, ipvs::real_backend};
use super::proxier::Proxier;
use super::settings::BackendConfig;
use crate::applier::ipvs::IpvsIptablesApplier;
use crate::applier::{IptablesApplier, NftApplier, Tool};
use crate::conntrack::ConntrackCli;
use crate::iptables::IptablesConfig;
use crate::net::IpFamily;

/// The mode to run: the configured one, or for an empty `mode` nftables when
/// `nft_usable`, else iptables.
/// `nft_usable` runs only for an empty mode.
pub fn effective_mode(configured: ProxyMode, nft_usable: impl FnOnce() -> Result<(), String>) -> ProxyMode {
    if configured != ProxyMode::Unset {
        return configured;
    }
    match nft_usable() {
        Ok(()) => {
            tracing::info!("no proxy mode configured: using nftables");
            ProxyMode::NFTables
        }
        Err(why) => {
            tracing::warn!("no proxy mode configured and nftables is unusable ({why}): using iptables");
            ProxyMode::IPTables
        }
    }
}

/// Whether `nft` runs and the kernel accepts a kube-proxy table (checked
/// with `nft --check`, which changes nothing), as upstream probes.
pub fn nft_usable(netns: Option<&str>) -> Result<(), String> {
    let nft = Tool::new("nft").in_netns(netns);
    match nft.output(&["--check", "-f", "-"], Some("add table ip kube-proxy\n")) {
        Ok(o) if o.success => Ok(()),
        Ok(o) => Err(o.stderr.trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// This host's interface addresses with their interface names.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    if_addrs::get_if_addrs().map(|l| l.into_iter().map(|i| (i.name.clone(), i.ip())).collect()).unwrap_or_default()
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
pub fn build_proxier(backend: BackendConfig, family: IpFamily, netns: Option<&str>) -> (Proxier, ProxyMode) {
    let conntrack = Box::new(ConntrackCli::new(netns));
    match backend {
        BackendConfig::Nftables(c) => {
            (Proxier::new(family, Box::new(NftablesBackend::new(c)), Box::new(NftApplier::new(netns)), conntrack), ProxyMode::NFTables)
        }
        BackendConfig::Iptables(c) => (iptables_proxier(c, family, netns), ProxyMode::IPTables),
        BackendConfig::Ipvs(settings) => {
            let fallback = settings.iptables_fallback();
            match real_backend(settings, &interface_addresses(), netns, Path::new("/proc/sys")) {
                Ok(b) => (Proxier::new(family, Box::new(b), Box::new(IpvsIptablesApplier::new(family, netns)), conntrack), ProxyMode::IPVS),
                Err(e) => {
                    tracing::warn!("Can't use ipvs proxier, trying iptables proxier: {e}");
                    (iptables_proxier(fallback, family, netns), ProxyMode::IPTables)
                }
            }
        }
    }
}

fn iptables_proxier(cfg: IptablesConfig, family: IpFamily, netns: Option<&str>) -> Proxier {
    Proxier::new(
        family,
        Box::new(IptablesBackend::new(cfg)),
        Box::new(IptablesApplier::new(family, netns)),
        Box::new(ConntrackCli::new(netns)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_mode_prefers_nftables() {
        assert_eq!(effective_mode(ProxyMode::Unset, || Ok(())), ProxyMode::NFTables);
        assert_eq!(effective_mode(ProxyMode::Unset, || Err("no nf_tables".into())), ProxyMode::IPTables);
        assert_eq!(effective_mode(ProxyMode::IPTables, || panic!("not probed")), ProxyMode::IPTables, "an explicit mode is kept");
    }

    #[test]
    fn a_missing_nft_is_unusable() {
        // The probe runs `nft` through `ip netns exec`; a namespace that does
        // not exist makes it fail with the tool's message.
        let err = nft_usable(Some("knode-no-such-netns")).unwrap_err();
        assert!(!err.is_empty());
    }
}
