//! The node checks, judged from [`Facts`]: what `knode join` verifies before it writes
//! anything and what `knode doctor` reports on a running or broken node. Each finding names
//! its check (kubeadm's names where kubeadm has the check, so `--ignore-preflight-errors`
//! reads the same) and says how to fix it.

use std::fmt;

/// What the checks look at; gathered by [`crate::facts`]. `None` means "not looked at".
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The effective user is root.
    pub is_root: bool,
    /// Total swap in KiB (`/proc/swaps`).
    pub swap_kib: Option<u64>,
    /// The kubelet configuration's `failSwapOn`.
    pub fail_swap_on: bool,
    /// `net.ipv4.ip_forward` as read from `/proc/sys`.
    pub ip_forward: Option<String>,
    /// `net.bridge.bridge-nf-call-iptables`; `None` when `br_netfilter` is not loaded.
    pub bridge_nf_call_iptables: Option<String>,
    /// The CRI endpoint that was probed.
    pub cri_socket: String,
    /// What the runtime answered over CRI, or why it did not answer.
    pub runtime: Option<Result<RuntimeFacts, String>>,
    /// The kubelet configuration's `cgroupDriver` (unset: the kubelet follows the runtime).
    pub kubelet_cgroup_driver: Option<String>,
    /// The kubelet's ports (API, then `/healthz`) and whether each is taken.
    pub ports: Vec<PortFact>,
    /// The kubelet's `/healthz` answers: the ports are its own.
    pub kubelet_healthy: bool,
    /// The API server's clock minus ours, in seconds.
    pub clock_skew_secs: Option<Result<i64, String>>,
    /// The kubelet's client certificate, or why it could not be read.
    pub client_cert: Option<Result<CertFact, String>>,
    /// The kubelet configuration's `rotateCertificates`.
    pub rotate_certificates: bool,
    /// `(directory, has a network configuration)`.
    pub cni_conf: Option<(String, bool)>,
    /// The node's name, for the Node-name check and its messages.
    pub node_name: String,
    /// A Node of this name exists: whether it is Ready.
    pub existing_node_ready: Option<bool>,
    /// The kubelet binary's path when it is an executable file, else what is wrong.
    pub kubelet_binary: Option<Result<String, String>>,
    /// Files of an earlier join that are still there (join only).
    pub leftover_files: Vec<String>,
    /// When the facts were gathered, in seconds since the Unix epoch.
    pub now_unix: i64,
}

/// What the container runtime reported over CRI.
#[derive(Clone, Debug)]
pub struct RuntimeFacts {
    /// CRI `Version`: runtime name and version (`containerd v2.1.4`).
    pub version: String,
    /// From CRI `RuntimeConfig`: `systemd` or `cgroupfs`; `None` when not reported.
    pub cgroup_driver: Option<String>,
}

/// A port the kubelet listens on, and whether something already holds it.
#[derive(Clone, Debug)]
pub struct PortFact {
    /// The TCP port (10250, 10248 by default).
    pub port: u16,
    /// The address the kubelet binds it on.
    pub address: String,
    /// Binding it failed with `EADDRINUSE`.
    pub in_use: bool,
}

/// The kubelet's client certificate.
#[derive(Clone, Debug)]
pub struct CertFact {
    /// The certificate file's path.
    pub path: String,
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after_unix: i64,
}

/// Whether the checks run before a join (nothing of ours runs yet) or on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `knode join`, before anything is written: an existing Node of this name is a clash.
    Join,
    /// `knode doctor` on a node: the kubelet holding its own ports is fine.
    Doctor,
}

/// How bad a finding is; ordered from fine to fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Worth fixing; a join goes on.
    Warning,
    /// A join stops unless the check is ignored.
    Error,
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check's name (kubeadm's where it has one: `Swap`, `Port-10250`, ...), as
    /// `--ignore-preflight-errors` takes it.
    pub check: String,
    /// How bad it is.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// How to fix it; `None` when the check passed.
    pub fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        };
        write!(f, "[{tag} {}] {}", self.check, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

fn ok(check: &str, message: impl Into<String>) -> Finding {
    Finding { check: check.into(), severity: Severity::Ok, message: message.into(), fix: None }
}
fn bad(check: &str, severity: Severity, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { check: check.into(), severity, message: message.into(), fix: Some(fix.into()) }
}

/// Certificates closer than this to their end are reported.
const CERT_WARN_SECS: i64 = 7 * 24 * 3600;
/// Clock skew past which TLS and token validity go wrong.
const SKEW_ERROR_SECS: i64 = 30;
const SKEW_WARN_SECS: i64 = 5;

/// Judges `facts`; `ignore` (check names, or `all`) turns errors into warnings.
pub fn check(facts: &Facts, mode: Mode, ignore: &[String]) -> Vec<Finding> {
    use Severity::{Error, Warning};
    let mut out = Vec::new();
    out.push(if facts.is_root {
        ok("IsPrivilegedUser", "running as root")
    } else {
        bad("IsPrivilegedUser", Error, "not running as root", "run as root (sudo)")
    });

    match facts.swap_kib {
        Some(kib) if kib > 0 && facts.fail_swap_on => out.push(bad(
            "Swap",
            Error,
            format!("swap is on ({} MiB) and failSwapOn is true: the kubelet will not start", kib / 1024),
            "swapoff -a and remove the swap entries from /etc/fstab, or set failSwapOn: false (and memorySwap.swapBehavior) in the kubelet configuration",
        )),
        Some(kib) if kib > 0 => out.push(ok("Swap", format!("swap is on ({} MiB), allowed by failSwapOn: false", kib / 1024))),
        Some(_) => out.push(ok("Swap", "swap is off")),
        None => {}
    }
    match facts.ip_forward.as_deref() {
        Some("1") => out.push(ok("FileContent--proc-sys-net-ipv4-ip_forward", "net.ipv4.ip_forward = 1")),
        Some(v) => out.push(bad(
            "FileContent--proc-sys-net-ipv4-ip_forward",
            Error,
            format!("net.ipv4.ip_forward = {v}: pods cannot reach anything off this node"),
            "sysctl -w net.ipv4.ip_forward=1, and put net.ipv4.ip_forward = 1 in /etc/sysctl.d/k8s.conf",
        )),
        None => {}
    }
    match facts.bridge_nf_call_iptables.as_deref() {
        Some("1") => {
            out.push(ok("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables", "br_netfilter loaded, bridge-nf-call-iptables = 1"))
        }
        Some(v) => out.push(bad(
            "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
            Warning,
            format!("net.bridge.bridge-nf-call-iptables = {v}: Service traffic between pods on one bridge bypasses kube-proxy's rules"),
            "sysctl -w net.bridge.bridge-nf-call-iptables=1 and persist it in /etc/sysctl.d/k8s.conf",
        )),
        None => out.push(bad(
            "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
            Warning,
            "the br_netfilter module is not loaded: bridged pod traffic bypasses iptables",
            "modprobe br_netfilter, and add br_netfilter to /etc/modules-load.d/k8s.conf",
        )),
    }
    match &facts.runtime {
        Some(Ok(rt)) => {
            out.push(ok("CRI", format!("container runtime at {}: {}", facts.cri_socket, rt.version)));
            match (&rt.cgroup_driver, &facts.kubelet_cgroup_driver) {
                (Some(runtime), Some(kubelet)) if runtime != kubelet => out.push(bad(
                    "CgroupDriver",
                    Warning,
                    format!("the kubelet configuration says cgroupDriver {kubelet} but the runtime uses {runtime}: the kubelet uses the runtime's (CRI RuntimeConfig)"),
                    format!("set cgroupDriver: {runtime} in the kubelet configuration (or remove it) so the two agree"),
                )),
                (Some(runtime), _) => out.push(ok("CgroupDriver", format!("cgroup driver {runtime} (the runtime's)"))),
                (None, _) => {}
            }
        }
        Some(Err(e)) => out.push(bad(
            "CRI",
            Error,
            format!("the container runtime at {} does not answer: {e}", facts.cri_socket),
            "start the runtime (systemctl start containerd) or point --cri-socket at its socket",
        )),
        None => {}
    }
    for p in &facts.ports {
        let check = format!("Port-{}", p.port);
        if !p.in_use {
            out.push(ok(&check, format!("port {} is free", p.port)));
        } else if mode == Mode::Doctor && facts.kubelet_healthy {
            out.push(ok(&check, format!("port {} is the kubelet's", p.port)));
        } else {
            out.push(bad(
                &check,
                Error,
                format!("port {} on {} is in use by another process", p.port, p.address),
                format!("find it with `ss -ltnp 'sport = :{}'` and stop it (another kubelet?)", p.port),
            ));
        }
    }
    match &facts.clock_skew_secs {
        Some(Ok(skew)) if skew.abs() >= SKEW_ERROR_SECS => out.push(bad(
            "ClockSkew",
            Error,
            format!(
                "this clock is {} s {} the API server's: certificates and tokens will be judged invalid",
                skew.abs(),
                if *skew > 0 { "behind" } else { "ahead of" }
            ),
            "synchronise the clock (chrony or systemd-timesyncd) with the control plane's time source",
        )),
        Some(Ok(skew)) if skew.abs() >= SKEW_WARN_SECS => out.push(bad(
            "ClockSkew",
            Warning,
            format!("this clock is {} s off the API server's", skew.abs()),
            "synchronise the clock (chrony or systemd-timesyncd)",
        )),
        Some(Ok(_)) => out.push(ok("ClockSkew", "clock in step with the API server")),
        Some(Err(e)) => out.push(bad(
            "APIServer",
            Error,
            format!("cannot read the API server's clock: {e}"),
            "check the server address, the network path and the API server",
        )),
        None => {}
    }
    match &facts.client_cert {
        Some(Ok(c)) if c.not_after_unix <= facts.now_unix => out.push(bad(
            "ClientCertificate",
            Error,
            format!("the kubelet's client certificate {} expired {} h ago: the node cannot reach the API server", c.path, (facts.now_unix - c.not_after_unix) / 3600),
            "knode reset, then knode join again with a fresh token (or remove the certificate and the kubeconfig so the kubelet bootstraps a new one)",
        )),
        Some(Ok(c)) if c.not_after_unix - facts.now_unix < CERT_WARN_SECS && !facts.rotate_certificates => out.push(bad(
            "ClientCertificate",
            Warning,
            format!("the kubelet's client certificate {} expires in {} h and rotateCertificates is off", c.path, (c.not_after_unix - facts.now_unix) / 3600),
            "set rotateCertificates: true in the kubelet configuration",
        )),
        Some(Ok(c)) => out.push(ok("ClientCertificate", format!("client certificate valid for {} more days", (c.not_after_unix - facts.now_unix) / 86400))),
        Some(Err(e)) => out.push(bad("ClientCertificate", Error, e.clone(), "knode reset and join again")),
        None => {}
    }
    match &facts.cni_conf {
        Some((_, true)) => out.push(ok("CNIConfig", "a CNI network configuration is present")),
        Some((dir, false)) => out.push(bad(
            "CNIConfig",
            Warning,
            format!("no CNI network configuration in {dir}: the node stays NotReady (NetworkPluginNotReady) and pods get no network"),
            "install the cluster's network add-on, or a CNI configuration (.conflist) there",
        )),
        None => {}
    }
    match facts.existing_node_ready {
        Some(true) if mode == Mode::Join => out.push(bad(
            "NodeName",
            Error,
            format!("a Ready node named {} already exists: joining would take over its identity", facts.node_name),
            format!("choose another name (--node-name), or kubectl delete node {} if that machine is gone", facts.node_name),
        )),
        Some(false) if mode == Mode::Join => out.push(bad(
            "NodeName",
            Warning,
            format!("a NotReady node named {} exists: this machine will take it over", facts.node_name),
            "fine when it is this machine rejoining",
        )),
        _ => {}
    }
    for file in &facts.leftover_files {
        out.push(bad(
            &format!("FileAvailable-{}", file.replace('/', "-")),
            Error,
            format!("{file} already exists: this machine was joined before (its kubelet would keep the old identity)"),
            "knode reset first (or remove the file)",
        ));
    }
    match &facts.kubelet_binary {
        Some(Ok(path)) => out.push(ok("KubeletBinary", format!("kubelet at {path}"))),
        Some(Err(e)) => {
            out.push(bad("KubeletBinary", Error, e.clone(), "install the kubelet binary at /usr/bin/kubelet or pass --kubelet-binary"))
        }
        None => {}
    }
    let all = ignore.iter().any(|i| i.eq_ignore_ascii_case("all"));
    for f in &mut out {
        if f.severity == Error && (all || ignore.iter().any(|i| i.eq_ignore_ascii_case(&f.check))) {
            f.severity = Warning;
            f.message.push_str(" (ignored)");
        }
    }
    out
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
