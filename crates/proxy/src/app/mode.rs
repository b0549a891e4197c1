//! Which proxy mode runs when `mode` is empty: nftables, the mode we
//! recommend, when the kernel and `nft` support it; else iptables, with a
//! log line saying why. Pure except for [`nft_usable`], the probe.

use proxy_config::ProxyMode;

use crate::applier::Tool;

/// The mode to run: the configured one, or for an empty `mode` nftables when
/// `nft_usable`, else iptables.
/// `nft_usable` runs only for an empty mode.
pub fn effective_mode(
    configured: ProxyMode,
    nft_usable: impl FnOnce() -> Result<(), String>,
) -> ProxyMode {
    if configured != ProxyMode::Unset {
        return configured;
    }
    match nft_usable() {
        Ok(()) => {
            tracing::info!("no proxy mode configured: using nftables");
            ProxyMode::NFTables
        }
        Err(why) => {
            tracing::warn!(
                "no proxy mode configured and nftables is unusable ({why}): using iptables"
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_mode_prefers_nftables() {
        assert_eq!(
            effective_mode(ProxyMode::Unset, || Ok(())),
            ProxyMode::NFTables
        );
        assert_eq!(
            effective_mode(ProxyMode::Unset, || Err("no nf_tables".into())),
            ProxyMode::IPTables
        );
        assert_eq!(
            effective_mode(ProxyMode::IPTables, || panic!("not probed")),
            ProxyMode::IPTables,
            "an explicit mode is kept"
        );
    }

    #[test]
    fn a_missing_nft_is_unusable() {
        // The probe runs `nft` through `ip netns exec`; a namespace that does
        // not exist makes it fail with the tool's message.
        let err = nft_usable(Some("knode-no-such-netns")).unwrap_err();
        assert!(!err.is_empty());
    }
}
