//! gRPC checks: the standard health-checking protocol (`grpc.health.v1.Health/Check`) over
//! plaintext HTTP/2 (upstream `pkg/probe/grpc`). `SERVING` passes; any other status, a refused
//! connection, an error answer or a timeout fails.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::ProbeOutcome;
use super::tcp::join_host_port;

/// Asks the health service at `host:port` about `service` (empty: the server as a whole).
pub async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeOutcome {
    let addr = join_host_port(host, port);
    let work = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("invalid address {addr}: {e}"))?
            .user_agent(format!("kube-probe/{}", super::http::probe_version()))
            .map_err(|e| e.to_string())?;
        let channel =
            endpoint.connect().await.map_err(|e| format!("failed to connect service {addr:?} within {}s: {e}", timeout.as_secs()))?;
        let mut client = HealthClient::new(channel);
        let response = client
            .check(HealthCheckRequest { service: service.to_owned() })
            .await
            .map_err(|s| format!("error: health rpc probe failed: {}: {}", s.code(), s.message()))?;
        Ok::<_, String>(response.into_inner().status())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(ServingStatus::Serving)) => ProbeOutcome::success("service is serving"),
        Ok(Ok(status)) => ProbeOutcome::failure(format!("service unhealthy (responded with {:?})", status.as_str_name())),
        Ok(Err(e)) => ProbeOutcome::failure(e),
        Err(_) => ProbeOutcome::failure(format!("timeout: health rpc did not complete within {}s", timeout.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::server::health_reporter;

    use super::*;
    use crate::probe::ProbeOutcomeKind;

    #[tokio::test]
    async fn serving_passes_and_everything_else_fails() {
        let (reporter, service) = health_reporter();
        reporter.set_service_status("up", tonic_health::ServingStatus::Serving).await;
        reporter.set_service_status("down", tonic_health::ServingStatus::NotServing).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
        let t = Duration::from_secs(2);
        assert_eq!(check("127.0.0.1", port, "", t).await.kind, ProbeOutcomeKind::Success);
        assert_eq!(check("127.0.0.1", port, "up", t).await.kind, ProbeOutcomeKind::Success);
        let down = check("127.0.0.1", port, "down", t).await;
        assert_eq!(down.kind, ProbeOutcomeKind::Failure);
        assert!(down.output.contains("NOT_SERVING"), "{down:?}");
        let unknown = check("127.0.0.1", port, "nope", t).await;
        assert_eq!(unknown.kind, ProbeOutcomeKind::Failure);
        assert!(unknown.output.contains("health rpc probe failed"), "{unknown:?}");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(check("127.0.0.1", closed_port, "", t).await.kind, ProbeOutcomeKind::Failure);
    }
}
