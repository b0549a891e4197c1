//! From a probe or lifecycle handler in the pod spec to the check to run (upstream's
//! `prober.runProbe` and `lifecycle.handlerRunner` resolution): the host defaults to the pod IP,
//! named ports are looked up in the container's ports, paths get their leading `/`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubelet_cri::RuntimeService;

use crate::probe::http::HttpTarget;
use crate::probe::{self, ProbeOutcome};

/// One resolved check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run this command (`exec.command`) in the container through CRI `ExecSync`.
    Exec(Vec<String>),
    /// GET this URL (`httpGet`).
    Http(HttpTarget),
    /// Open a TCP connection (`tcpSocket`).
    Tcp {
        /// Host name or IP to connect to (`tcpSocket.host`, else the pod's IP).
        host: String,
        /// TCP port, a named container port already resolved.
        port: u16,
    },
    /// Call the gRPC health checking service's `Check` (`grpc`).
    Grpc {
        /// The pod's IP.
        host: String,
        /// TCP port of the gRPC server (`grpc.port`).
        port: u16,
        /// Service name sent in the health check request (`grpc.service`, empty by default).
        service: String,
    },
    /// Wait this long and pass (a `sleep` lifecycle hook).
    Sleep(Duration),
}

/// Why a handler could not be resolved; reported as the check's failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The probe or hook sets no handler this kubelet knows; holds the container's name.
    #[error("missing probe handler for {0}")]
    NoHandler(String),
    /// A named port that is neither one of the container's ports nor a number.
    #[error("couldn't find port: {port} in container {container}")]
    UnknownPort {
        /// The port name as the handler gives it.
        port: String,
        /// The container's name in the pod spec.
        container: String,
    },
    /// A port number outside 1 to 65535.
    #[error("invalid port {port} in container {container}")]
    InvalidPort {
        /// The port number, as given or as the named port resolved.
        port: i64,
        /// The container's name in the pod spec.
        container: String,
    },
}

/// Resolves `port` (a number or the name of one of the container's ports).
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, ActionError> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                None => {
                    name.parse::<i64>().map_err(|_| ActionError::UnknownPort { port: name.clone(), container: container.name.clone() })?
                }
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ActionError::InvalidPort { port: number, container: container.name.clone() })
}

fn http_target(get: &HTTPGetAction, container: &Container, pod_ip: &str) -> Result<HttpTarget, ActionError> {
    let host = get.host.as_deref().filter(|h| !h.is_empty()).unwrap_or(pod_ip).to_owned();
    let path = get.path.as_deref().unwrap_or_default();
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    Ok(HttpTarget {
        scheme: get.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase(),
        host,
        port: resolve_port(&get.port, container)?,
        path,
        headers: get.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect(),
    })
}

/// The check a probe runs.
pub fn probe_action(probe: &Probe, container: &Container, pod_ip: &str) -> Result<Action, ActionError> {
    if let Some(exec) = &probe.exec {
        return Ok(Action::Exec(exec.command.clone().unwrap_or_default()));
    }
    if let Some(get) = &probe.http_get {
        return http_target(get, container, pod_ip).map(Action::Http);
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = tcp.host.as_deref().filter(|h| !h.is_empty()).unwrap_or(pod_ip).to_owned();
        return Ok(Action::Tcp { host, port: resolve_port(&tcp.port, container)? });
    }
    if let Some(grpc) = &probe.grpc {
        let port = u16::try_from(grpc.port).ok().filter(|p| *p > 0);
        let port = port.ok_or_else(|| ActionError::InvalidPort { port: i64::from(grpc.port), container: container.name.clone() })?;
        return Ok(Action::Grpc { host: pod_ip.to_owned(), port, service: grpc.service.clone().unwrap_or_default() });
    }
    Err(ActionError::NoHandler(container.name.clone()))
}

/// The action a lifecycle hook runs.
pub fn hook_action(handler: &LifecycleHandler, container: &Container, pod_ip: &str) -> Result<Action, ActionError> {
    if let Some(exec) = &handler.exec {
        return Ok(Action::Exec(exec.command.clone().unwrap_or_default()));
    }
    if let Some(get) = &handler.http_get {
        return http_target(get, container, pod_ip).map(Action::Http);
    }
    if let Some(sleep) = &handler.sleep {
        return Ok(Action::Sleep(Duration::from_secs(u64::try_from(sleep.seconds).unwrap_or(0))));
    }
    if let Some(tcp) = &handler.tcp_socket {
        // Deprecated: upstream fails such a hook at run time ("invalid handler"), as we do.
        let host = tcp.host.as_deref().filter(|h| !h.is_empty()).unwrap_or(pod_ip).to_owned();
        return Ok(Action::Tcp { host, port: resolve_port(&tcp.port, container)? });
    }
    Err(ActionError::NoHandler(container.name.clone()))
}

/// Runs `action` against container `container_id`; `timeout` bounds it (`None`: unbounded, as
/// exec hooks are).
pub async fn run(action: &Action, runtime: &dyn RuntimeService, container_id: &str, timeout: Option<Duration>) -> ProbeOutcome {
    let bounded = timeout.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
    match action {
        Action::Exec(cmd) => probe::exec::check(runtime, container_id, cmd, timeout).await,
        Action::Http(target) => probe::http::check(target, bounded).await,
        Action::Tcp { host, port } => probe::tcp::check(host, *port, bounded).await,
        Action::Grpc { host, port, service } => probe::grpc::check(host, *port, service, bounded).await,
        Action::Sleep(d) => {
            tokio::time::sleep(*d).await;
            ProbeOutcome::success("")
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, GRPCAction, HTTPHeader, TCPSocketAction};

    use super::*;

    fn container() -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort { name: Some("web".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        }
    }

    #[test]
    fn named_and_numeric_ports() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::String("web".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(resolve_port(&IntOrString::Int(9000), &c), Ok(9000));
        assert_eq!(
            resolve_port(&IntOrString::String("admin".into()), &c).unwrap_err().to_string(),
            "couldn't find port: admin in container app"
        );
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn http_probe_defaults_to_pod_ip_and_adds_leading_slash() {
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("healthz?x=1".into()),
                port: IntOrString::String("web".into()),
                scheme: Some("HTTPS".into()),
                http_headers: Some(vec![HTTPHeader { name: "X-A".into(), value: "b".into() }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Action::Http(t) = probe_action(&probe, &container(), "198.18.0.7").unwrap() else { panic!() };
        assert_eq!(t.url(), "https://198.18.0.7:8080/healthz?x=1");
        assert_eq!(t.headers, [("X-A".to_string(), "b".to_string())]);
    }

    #[test]
    fn every_probe_kind_resolves() {
        let c = container();
        let exec = Probe { exec: Some(ExecAction { command: Some(vec!["true".into()]) }), ..Default::default() };
        assert_eq!(probe_action(&exec, &c, "ip"), Ok(Action::Exec(vec!["true".into()])));
        let tcp =
            Probe { tcp_socket: Some(TCPSocketAction { host: Some("10.0.0.1".into()), port: IntOrString::Int(22) }), ..Default::default() };
        assert_eq!(probe_action(&tcp, &c, "ip"), Ok(Action::Tcp { host: "10.0.0.1".into(), port: 22 }));
        let grpc = Probe { grpc: Some(GRPCAction { port: 9090, ..Default::default() }), ..Default::default() };
        assert_eq!(probe_action(&grpc, &c, "ip"), Ok(Action::Grpc { host: "ip".into(), port: 9090, service: String::new() }));
        assert_eq!(probe_action(&Probe::default(), &c, "ip"), Err(ActionError::NoHandler("app".into())));
    }
}
