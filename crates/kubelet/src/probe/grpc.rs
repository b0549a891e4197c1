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
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("failed to connect service {addr:?} within {}s: {e}", timeout.as_secs()))?;
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
