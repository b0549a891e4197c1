//! The `Registration` service on the kubelet's socket (upstream `plugin/v1beta1/server.go`):
//! answers each `Register` once the manager has validated the request, dialed the plugin and
//! read its options. Owns only the gRPC plumbing.

use std::future::Future;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::manager::DeviceManager;
use crate::v1beta1::registration_server::{Registration, RegistrationServer};
use crate::v1beta1::{Empty, RegisterRequest};

struct RegistrationService(DeviceManager);

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        match self.0.register(request.into_inner()).await {
            Ok(()) => Ok(Response::new(Empty {})),
            // Upstream answers with a plain Go error, which gRPC sends as `Unknown`.
            Err(e) => Err(Status::unknown(e.to_string())),
        }
    }
}

/// Serves registrations on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: UnixListener,
    manager: DeviceManager,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(RegistrationServer::new(RegistrationService(manager)))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
}
