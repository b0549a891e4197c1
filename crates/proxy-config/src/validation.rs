//! Upstream validation of a defaulted `KubeProxyConfiguration`
//! (`pkg/proxy/apis/config/validation/validation.go`), Linux rules.
//!
//! Returns the first problem as a one-line error naming the field, in the
//! order upstream checks. Pure: no I/O, nothing is changed.

use std::net::IpAddr;
use std::time::Duration;

use crate::error::{ConfigError, Origin};
use crate::types::*;

/// IPVS schedulers upstream accepts (`""` means the default, `rr`).
pub const IPVS_SCHEDULERS: &[&str] = &["", "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh"];

/// Checks `c` as upstream's `Validate` does on Linux.
pub fn validate(c: &KubeProxyConfiguration, origin: &Origin) -> Result<(), ConfigError> {
    let bad = |field: &str, msg: String| Err(ConfigError::invalid(origin, field, msg));
    let positive = |field: &str, d: Duration| {
        if d.is_zero() { bad(field, "must be greater than 0".into()) } else { Ok(()) }
    };
    match c.mode {
        ProxyMode::KernelSpace => {
            return bad("mode", "\"kernelspace\" is only supported on Windows (expected iptables, ipvs or nftables)".into());
        }
        ProxyMode::IPVS => {
            positive("ipvs.syncPeriod", c.ipvs.sync_period)?;
            if !IPVS_SCHEDULERS.contains(&c.ipvs.scheduler.as_str()) {
                return bad("ipvs.scheduler", format!("invalid value {:?}: unknown IPVS scheduler", c.ipvs.scheduler));
            }
            for (i, cidr) in c.ipvs.exclude_cidrs.iter().enumerate() {
                check_cidr(cidr).or_else(|m| bad(&format!("ipvs.excludeCIDRs[{i}]"), m))?;
            }
        }
        ProxyMode::NFTables => {
            check_bit("nftables.masqueradeBit", c.nftables.masquerade_bit, origin)?;
            positive("nftables.syncPeriod", c.nftables.sync_period)?;
        }
        ProxyMode::IPTables | ProxyMode::Unset => {}
    }
    check_bit("iptables.masqueradeBit", c.iptables.masquerade_bit, origin)?;
    positive("iptables.syncPeriod", c.iptables.sync_period)?;
    if c.conntrack.max_per_core < 0 {
        return bad("conntrack.maxPerCore", "must be greater than or equal to 0".into());
    }
    if c.conntrack.min < 0 {
        return bad("conntrack.min", "must be greater than or equal to 0".into());
    }
    positive("configSyncPeriod", c.config_sync_period)?;
    if c.bind_address.parse::<IpAddr>().is_err() {
        return bad("bindAddress", format!("{:?}: must be a valid IP address", c.bind_address));
    }
    if !c.healthz_bind_address.is_empty() {
        check_host_port(&c.healthz_bind_address).or_else(|m| bad("healthzBindAddress", m))?;
    }
    if !c.metrics_bind_address.is_empty() {
        check_host_port(&c.metrics_bind_address).or_else(|m| bad("metricsBindAddress", m))?;
    }
    if !c.cluster_cidr.is_empty() {
        check_cluster_cidr(&c.cluster_cidr).or_else(|m| bad("clusterCIDR", m))?;
    }
    if !(-1000..=1000).contains(&c.oom_score_adj) {
        return bad("oomScoreAdj", "must be within the range [-1000, 1000]".into());
    }
    match c.detect_local_mode {
        LocalMode::BridgeInterface if c.detect_local.bridge_interface.is_empty() => {
            return bad("detectLocal.bridgeInterface", "must be set when detectLocalMode is BridgeInterface".into());
        }
        LocalMode::InterfaceNamePrefix if c.detect_local.interface_name_prefix.is_empty() => {
            return bad("detectLocal.interfaceNamePrefix", "must be set when detectLocalMode is InterfaceNamePrefix".into());
        }
        _ => {}
    }
    for (i, a) in c.node_port_addresses.iter().enumerate() {
        if a != "primary" {
            check_cidr(a).or_else(|m| bad(&format!("nodePortAddresses[{i}]"), format!("{m} (or the keyword \"primary\")")))?;
        }
    }
    if c.client_connection.burst < 0 {
        return bad("clientConnection.burst", "must be non-negative".into());
    }
    if !matches!(c.logging.format.as_str(), "text" | "json") {
        return bad("logging.format", format!("unsupported log format {:?}", c.logging.format));
    }
    Ok(())
}

fn check_bit(field: &str, bit: i32, origin: &Origin) -> Result<(), ConfigError> {
    if (0..=31).contains(&bit) { Ok(()) } else { Err(ConfigError::invalid(origin, field, "must be within the range [0, 31]")) }
}

/// `a.b.c.d/n` or `v6/n`.
pub fn check_cidr(s: &str) -> Result<(), String> {
    parse_cidr(s).map(|_| ())
}

/// Parses a CIDR into (address, prefix length).
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let err = || format!("{s:?} is not a valid CIDR");
    let (ip, len) = s.trim().split_once('/').ok_or_else(err)?;
    let ip: IpAddr = ip.parse().map_err(|_| err())?;
    let len: u8 = len.parse().map_err(|_| err())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(err());
    }
    Ok((ip, len))
}

/// One CIDR, or a comma-separated dual-stack pair (one IPv4, one IPv6).
fn check_cluster_cidr(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let parsed = parts.iter().map(|p| parse_cidr(p)).collect::<Result<Vec<_>, _>>()?;
    match parsed.as_slice() {
        [_] => Ok(()),
        [a, b] if a.0.is_ipv4() != b.0.is_ipv4() => Ok(()),
        [_, _] => Err(format!("{s:?}: a dual-stack pair must hold one IPv4 and one IPv6 CIDR")),
        _ => Err(format!("{s:?}: at most two CIDRs (a dual-stack pair)")),
    }
}

/// `ip:port` / `[ipv6]:port` with a port in 0..=65535.
fn check_host_port(s: &str) -> Result<(), String> {
    s.parse::<std::net::SocketAddr>().map(|_| ()).map_err(|_| format!("{s:?} must be IP:port"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::defaulted;

    fn check(c: &KubeProxyConfiguration) -> Result<(), String> {
        validate(c, &Origin::File("kp.yaml".into())).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        check(&defaulted()).unwrap();
    }

    #[test]
    fn refuses_bad_values_naming_the_field() {
        let mut c = defaulted();
        c.iptables.masquerade_bit = 32;
        assert_eq!(check(&c).unwrap_err(), "kp.yaml: invalid configuration: iptables.masqueradeBit: must be within the range [0, 31]");
        let mut c = defaulted();
        c.cluster_cidr = "10.0.0.0/8,10.1.0.0/16".into();
        assert!(check(&c).unwrap_err().contains("clusterCIDR"));
        let mut c = defaulted();
        c.cluster_cidr = "10.0.0.0/8,fd00::/48".into();
        check(&c).unwrap();
        let mut c = defaulted();
        c.mode = ProxyMode::IPVS;
        c.ipvs.scheduler = "fastest".into();
        assert!(check(&c).unwrap_err().contains("ipvs.scheduler"));
        let mut c = defaulted();
        c.node_port_addresses = vec!["primary".into(), "10.0.0.0/33".into()];
        assert!(check(&c).unwrap_err().contains("nodePortAddresses[1]"));
        let mut c = defaulted();
        c.oom_score_adj = -1001;
        assert!(check(&c).unwrap_err().contains("oomScoreAdj"));
    }
}
