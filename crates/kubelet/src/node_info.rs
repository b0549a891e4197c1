//! Facts about the node read from the host: name, primary IP, memory capacity.
//!
//! Paths (`/proc`) are parameters so tests can point them at fixtures.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// The node name: `--hostname-override`, else the kernel hostname, lower-cased (upstream).
pub fn node_name(hostname_override: &str, proc_root: &Path) -> String {
    let name = if hostname_override.trim().is_empty() {
        std::fs::read_to_string(proc_root.join("sys/kernel/hostname")).unwrap_or_else(|_| "localhost".into())
    } else {
        hostname_override.to_string()
    };
    name.trim().to_lowercase()
}

/// The interface of the IPv4 default route, from `net/route`.
pub fn default_route_interface(proc_root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join("net/route")).ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_string())
    })
}

/// The node's primary IP: `--node-ip` when given, else the first IPv4 address of the default
/// route's interface, else of any non-loopback interface, else 127.0.0.1.
pub fn node_ip(node_ip_flag: &str, interfaces: &[(String, IpAddr)], default_iface: Option<&str>) -> IpAddr {
    if let Some(ip) = node_ip_flag.split(',').next().and_then(|s| s.trim().parse().ok()) {
        return ip;
    }
    let v4 = |(_, ip): &&(String, IpAddr)| ip.is_ipv4() && !ip.is_loopback();
    interfaces
        .iter()
        .filter(v4)
        .find(|(name, _)| Some(name.as_str()) == default_iface)
        .or_else(|| interfaces.iter().find(v4))
        .map(|(_, ip)| *ip)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sys/kernel")).unwrap();
        std::fs::create_dir_all(d.path().join("net")).unwrap();
        std::fs::write(d.path().join("sys/kernel/hostname"), "Node-1\n").unwrap();
        std::fs::write(d.path().join("meminfo"), "MemTotal:       1024 kB\nMemFree: 1 kB\n").unwrap();
        std::fs::write(d.path().join("net/route"), "Iface\tDestination\tGateway\neth1\t0012A8C0\t0\neth0\t00000000\t0101A8C0\n").unwrap();
        assert_eq!(node_name("", d.path()), "node-1");
        assert_eq!(node_name("Custom", d.path()), "custom");
        assert_eq!(kubelet_types::machine::memory_capacity(d.path()), 1024 * 1024);
        assert_eq!(default_route_interface(d.path()).as_deref(), Some("eth0"));
    }

    #[test]
    fn picks_node_ip() {
        let ifs = vec![
            ("lo".to_string(), "127.0.0.1".parse().unwrap()),
            ("eth1".to_string(), "198.18.5.1".parse().unwrap()),
            ("eth0".to_string(), "198.18.9.9".parse().unwrap()),
        ];
        assert_eq!(node_ip("", &ifs, Some("eth0")).to_string(), "198.18.9.9");
        assert_eq!(node_ip("", &ifs, None).to_string(), "198.18.5.1");
        assert_eq!(node_ip("198.19.0.1", &ifs, None).to_string(), "198.19.0.1");
        assert_eq!(node_ip("", &[], None).to_string(), "127.0.0.1");
    }
}
