//! Network interface counters from `/proc/<pid>/net/dev` (a pod's are read through one of its
//! processes, which sees the pod's network namespace), as cAdvisor gathers them.

use super::api::InterfaceStats;

/// The interface the summary reports inline (upstream's `DefaultInterfaceName`).
pub const DEFAULT_INTERFACE: &str = "eth0";

/// One interface's counters, all that `/proc/net/dev` has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// The interface's name (`eth0`).
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Packets dropped while receiving.
    pub rx_dropped: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Packets dropped while transmitting.
    pub tx_dropped: u64,
}

impl InterfaceCounters {
    /// The counters the Summary API reports: bytes and errors each way.
    pub fn summary(&self) -> InterfaceStats {
        InterfaceStats {
            name: self.name.clone(),
            rx_bytes: Some(self.rx_bytes),
            rx_errors: Some(self.rx_errors),
            tx_bytes: Some(self.tx_bytes),
            tx_errors: Some(self.tx_errors),
        }
    }
}

/// Interfaces cAdvisor leaves out: loopback and the host side of container links.
fn ignored(name: &str) -> bool {
    name == "lo" || ["veth", "docker", "cni", "flannel", "cali", "knode"].iter().any(|p| name.starts_with(p))
}

/// Parses `/proc/net/dev` (two header lines, then `name: rx… tx…`), without ignored interfaces.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceCounters> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        if ignored(name) {
            continue;
        }
        let v: Vec<u64> = rest.split_whitespace().map(|w| w.parse().unwrap_or(0)).collect();
        if v.len() < 16 {
            continue;
        }
        out.push(InterfaceCounters {
            name: name.to_string(),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
            tx_dropped: v[11],
        });
    }
    out
}

/// The interfaces process `pid` sees; empty when it is gone.
pub fn read_pid(proc_root: &std::path::Path, pid: u32) -> Vec<InterfaceCounters> {
    super::read::text_at(&proc_root.join(pid.to_string()).join("net/dev")).map(|t| parse_net_dev(&t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
vethab12:    9       9    9    9    0     0          0         0        9       9    9    9    0     0       0          0
";

    #[test]
    fn reads_counters_and_skips_loopback_and_veths() {
        let got = parse_net_dev(NET_DEV);
        assert_eq!(got.len(), 1);
        let e = &got[0];
        assert_eq!((e.name.as_str(), e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped), ("eth0", 5000, 40, 1, 2));
        assert_eq!((e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped), (3000, 30, 3, 4));
        assert_eq!(e.summary().rx_bytes, Some(5000));
        assert!(parse_net_dev("garbage\n\nx: 1 2\n").is_empty());
    }
}
