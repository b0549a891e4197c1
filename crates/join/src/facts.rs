//! Gathering [`Facts`] from this machine, its container runtime and the API server, for the
//! checks in [`crate::preflight`]. Every probe is bounded in time; a probe that cannot run
//! leaves its fact unset or records why.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubelet_cri::RuntimeService;
use serde::Deserialize;

use crate::layout::{CLIENT_CERT, KUBELET_CONFIG, Layout};
use crate::preflight::{CertFact, Facts, PortFact, RuntimeFacts};

/// The parts of the kubelet configuration the checks need, with the kubelet's defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletSettings {
    /// `failSwapOn`: the kubelet refuses to start with swap on (default true).
    pub fail_swap_on: bool,
    /// `cgroupDriver` (`cgroupfs` or `systemd`); `None` when the file does not set it.
    pub cgroup_driver: Option<String>,
    /// `rotateCertificates`: the kubelet renews its client certificate (default false).
    pub rotate_certificates: bool,
    /// `address`: where the kubelet's API listens (default `0.0.0.0`).
    pub address: String,
    /// `port`: the kubelet's API port (default 10250).
    pub port: u16,
    /// `healthzBindAddress`: where `/healthz` listens (default `127.0.0.1`).
    pub healthz_bind_address: String,
    /// `healthzPort`: the `/healthz` port (default 10248).
    pub healthz_port: u16,
}

impl Default for KubeletSettings {
    fn default() -> Self {
        Self {
            fail_swap_on: true,
            cgroup_driver: None,
            rotate_certificates: false,
            address: "0.0.0.0".into(),
            port: 10250,
            healthz_bind_address: "127.0.0.1".into(),
            healthz_port: 10248,
        }
    }
}

impl KubeletSettings {
    /// From a KubeletConfiguration's text; unparsable text gives the defaults (the kubelet
    /// itself reports what is wrong with it).
    pub fn from_config(text: Option<&str>) -> Self {
        text.and_then(|t| serde_saphyr::from_str::<Self>(t).ok()).unwrap_or_default()
    }

    /// The node's `config.yaml` under `layout`, if written.
    pub fn of_node(layout: &Layout) -> Self {
        Self::from_config(std::fs::read_to_string(layout.path(KUBELET_CONFIG)).ok().as_deref())
    }
}

/// What to look at.
pub struct Probe<'a> {
    /// Where the node's files are (for leftovers and the client certificate).
    pub layout: &'a Layout,
    /// The kubelet settings: swap policy, cgroup driver, ports to check.
    pub settings: &'a KubeletSettings,
    /// The container runtime's CRI endpoint (`unix:///run/containerd/containerd.sock`).
    pub cri_socket: &'a str,
    /// The directory that should hold a CNI network configuration (`/etc/cni/net.d`).
    pub cni_conf_dir: &'a Path,
    /// The kubelet binary to check is executable, if one is to be used.
    pub kubelet_binary: Option<&'a Path>,
    /// The API server, when known, for its clock and the Node object.
    pub api: Option<&'a kube::Client>,
    /// This node's name, as the Node object is (to be) named.
    pub node_name: &'a str,
    /// Look for the Node object (join: a name clash).
    pub check_node: bool,
    /// Look at the client certificate (doctor, on a joined node).
    pub check_client_cert: bool,
    /// Look for the files of an earlier join (join).
    pub check_leftovers: bool,
}

/// Runs every probe `p` asks for and collects the [`Facts`] the preflight checks judge.
pub async fn gather(p: &Probe<'_>) -> Facts {
    let now = SystemTime::now();
    let mut facts = Facts {
        // SAFETY: geteuid has no preconditions and cannot fail.
        is_root: unsafe { libc::geteuid() } == 0,
        swap_kib: std::fs::read_to_string("/proc/swaps").ok().map(|s| swap_total(&s)),
        fail_swap_on: p.settings.fail_swap_on,
        ip_forward: read_trimmed("/proc/sys/net/ipv4/ip_forward"),
        bridge_nf_call_iptables: read_trimmed("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        cri_socket: p.cri_socket.to_owned(),
        kubelet_cgroup_driver: p.settings.cgroup_driver.clone(),
        rotate_certificates: p.settings.rotate_certificates,
        node_name: p.node_name.to_owned(),
        now_unix: unix(now),
        ..Facts::default()
    };
    facts.runtime = Some(runtime(p.cri_socket).await);
    facts.ports = vec![port(&p.settings.address, p.settings.port), port(&p.settings.healthz_bind_address, p.settings.healthz_port)];
    facts.kubelet_healthy = healthz(&p.settings.healthz_bind_address, p.settings.healthz_port).await;
    facts.cni_conf = Some((p.cni_conf_dir.display().to_string(), has_cni_config(p.cni_conf_dir)));
    facts.kubelet_binary = p.kubelet_binary.map(binary);
    if p.check_leftovers {
        use crate::layout::{BOOTSTRAP_KUBECONFIG, CA_CERT, KUBELET_KUBECONFIG};
        facts.leftover_files = [KUBELET_KUBECONFIG, BOOTSTRAP_KUBECONFIG, CA_CERT]
            .into_iter()
            .filter(|f| p.layout.path(f).exists())
            .map(str::to_owned)
            .collect();
    }
    if p.check_client_cert {
        facts.client_cert = Some(client_cert(&p.layout.path(CLIENT_CERT)));
    }
    if let Some(client) = p.api {
        facts.clock_skew_secs = Some(match tokio::time::timeout(Duration::from_secs(10), crate::api::server_time(client)).await {
            Ok(Ok(server)) => Ok(unix(server) - unix(SystemTime::now())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in 10 s".into()),
        });
        if p.check_node {
            facts.existing_node_ready = crate::api::node(client, p.node_name).await.ok().flatten().map(|n| crate::api::is_ready(&n));
        }
    }
    facts
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Total swap in KiB from `/proc/swaps` (header, then `name type size used priority`).
pub fn swap_total(text: &str) -> u64 {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()).sum()
}

async fn runtime(socket: &str) -> Result<RuntimeFacts, String> {
    let rt = kubelet_cri::RemoteRuntime::connect(socket, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let version = rt.version().await.map_err(|e| e.to_string())?;
    let cgroup_driver = rt.runtime_config().await.ok().and_then(|c| c.linux).map(|l| {
        if l.cgroup_driver == kubelet_cri::api::CgroupDriver::Cgroupfs as i32 { "cgroupfs".to_owned() } else { "systemd".to_owned() }
    });
    Ok(RuntimeFacts { version: format!("{} {}", version.runtime_name, version.runtime_version), cgroup_driver })
}

fn port(address: &str, port: u16) -> PortFact {
    let in_use = matches!(std::net::TcpListener::bind((address, port)), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse);
    PortFact { port, address: address.to_owned(), in_use }
}

/// Whether the kubelet's `/healthz` answers `ok`.
async fn healthz(address: &str, port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect((address, port)).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").await.ok()?;
        let mut body = Vec::new();
        s.take(4096).read_to_end(&mut body).await.ok()?;
        let text = String::from_utf8_lossy(&body);
        Some(text.starts_with("HTTP/1.") && text.contains(" 200 ") && text.ends_with("ok"))
    };
    tokio::time::timeout(Duration::from_secs(3), probe).await.ok().flatten().unwrap_or(false)
}

fn has_cni_config(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().any(|e| matches!(e.path().extension().and_then(|x| x.to_str()), Some("conf" | "conflist" | "json"))))
        .unwrap_or(false)
}

fn binary(path: &Path) -> Result<String, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path.display().to_string()),
        Ok(_) => Err(format!("{} is not an executable file", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn client_cert(path: &PathBuf) -> Result<CertFact, String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("the kubelet's client certificate {}: {e} (TLS bootstrap has not finished?)", path.display()))?;
    let bad = |e: String| format!("the kubelet's client certificate {}: {e}", path.display());
    let (_, pem) = x509_parser::pem::parse_x509_pem(&data).map_err(|e| bad(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    Ok(CertFact { path: path.display().to_string(), not_after_unix: cert.validity().not_after.timestamp() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_settings_and_binaries() {
        assert_eq!(swap_total("Filename Type Size Used Priority\n"), 0);
        assert_eq!(swap_total("Filename Type Size Used Priority\n/swap file 1024 0 -2\n/dev/sdb partition 2048 0 -3\n"), 3072);
        let s = KubeletSettings::from_config(Some(
            "kind: KubeletConfiguration\nfailSwapOn: false\nhealthzPort: 10999\ncgroupDriver: systemd\n",
        ));
        assert!(!s.fail_swap_on);
        assert_eq!((s.healthz_port, s.port, s.cgroup_driver.as_deref()), (10999, 10250, Some("systemd")));
        assert!(KubeletSettings::from_config(Some("[oops")).fail_swap_on);
        let dir = tempfile::tempdir().unwrap();
        assert!(binary(dir.path()).is_err());
        assert!(binary(&dir.path().join("none")).unwrap_err().contains("No such file"));
        assert!(!has_cni_config(dir.path()));
        std::fs::write(dir.path().join("10-bridge.conflist"), "{}").unwrap();
        assert!(has_cni_config(dir.path()));
    }

    #[test]
    fn a_port_in_use_is_seen() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = held.local_addr().unwrap().port();
        assert!(port("127.0.0.1", p).in_use);
        drop(held);
        assert!(!port("127.0.0.1", p).in_use);
    }
}
