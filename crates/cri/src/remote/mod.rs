//! [`RemoteRuntime`]: the CRI v1 gRPC client over a unix socket (containerd, CRI-O).
//!
//! One lazily connected HTTP/2 channel is shared by the runtime and image clients, so the kubelet
//! can start before the runtime is up; callers that need the runtime check it with
//! [`RuntimeService::version`](crate::RuntimeService::version). Every call carries a deadline, as
//! upstream's `remote_runtime.go` does: the request timeout, twice that for `RunPodSandbox`, the stop
//! timeout plus the request timeout for `StopContainer`, and none for `PullImage`.
//!
//! This module owns transport and error mapping only; it must not interpret what the runtime says.

mod endpoint;
mod image;
mod runtime;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::{CriError, Result};

/// Largest message accepted from the runtime; upstream's kubelet uses the same 16 MiB, since
/// `ListContainers` on a busy node outgrows gRPC's 4 MiB default.
const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// A CRI v1 runtime and image service reached over a unix socket.
///
/// Cheap to clone: clones share one HTTP/2 connection.
#[derive(Clone, Debug)]
pub struct RemoteRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    /// The same connection, for requests written by hand ([`crate::newer`]).
    channel: Channel,
    request_timeout: Duration,
}

impl RemoteRuntime {
    /// Prepares a client for `endpoint` (`unix:///run/containerd/containerd.sock` or a bare
    /// absolute path). The connection is made on first use and remade after a failure, so this
    /// succeeds whether or not the runtime is up yet.
    ///
    /// `request_timeout` is upstream's `--runtime-request-timeout` (default 2 minutes).
    ///
    /// Must be called within a Tokio runtime (the channel spawns its worker task); otherwise
    /// returns [`CriError::Connect`].
    pub fn connect(endpoint: &str, request_timeout: Duration) -> Result<Self> {
        let path: Arc<Path> = endpoint::socket_path(endpoint)?.into();
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CriError::Connect {
                endpoint: endpoint.to_owned(),
                reason: "RemoteRuntime::connect must be called within a Tokio runtime".to_owned(),
            });
        }
        // The URI is required by tonic but unused: the connector always dials the socket.
        let channel = Endpoint::from_static("http://[::]:50051").connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let path = Arc::clone(&path);
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(&*path).await?)) }
        }));
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            images: ImageServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            channel,
            request_timeout,
        })
    }

    /// The deadline applied to ordinary calls.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// Wraps `message` in a gRPC request that tells the runtime our deadline, if any.
fn request<T>(message: T, deadline: Option<Duration>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    request
}

/// Awaits one unary call under `deadline` and maps its failure to a [`CriError`] naming `op` and
/// `object`.
async fn unary<T>(
    op: &'static str,
    object: &str,
    deadline: Option<Duration>,
    call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    let outcome = match deadline {
        Some(timeout) => match tokio::time::timeout(timeout, call).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => {
                return Err(CriError::Timeout { op, object: object.to_owned(), timeout });
            }
        },
        None => call.await,
    };
    outcome.map(tonic::Response::into_inner).map_err(|status| status_error(op, object, deadline, &status))
}

/// Maps a gRPC status to a [`CriError`]. A deadline reported by the runtime, or by tonic's own
/// `grpc-timeout` enforcement (which reports `Cancelled`), becomes [`CriError::Timeout`].
fn status_error(op: &'static str, object: &str, deadline: Option<Duration>, status: &tonic::Status) -> CriError {
    let timed_out = status.code() == tonic::Code::DeadlineExceeded
        || (status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired");
    match deadline {
        Some(timeout) if timed_out => CriError::Timeout { op, object: object.to_owned(), timeout },
        _ => CriError::Status { op, object: object.to_owned(), code: status.code(), message: status.message().to_owned() },
    }
}

/// The error for a response that lacks a field CRI requires (upstream validates the same ones).
fn missing(op: &'static str, object: &str, field: &'static str) -> CriError {
    CriError::InvalidResponse { op, object: object.to_owned(), reason: format!("{field} is not set") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_statuses_become_timeouts() {
        let deadline = Some(Duration::from_secs(2));
        let err = status_error("Version", "", deadline, &tonic::Status::deadline_exceeded("late"));
        assert!(matches!(err, CriError::Timeout { op: "Version", .. }), "{err}");
        let err = status_error("Version", "", deadline, &tonic::Status::cancelled("Timeout expired"));
        assert!(matches!(err, CriError::Timeout { .. }), "{err}");
    }

    #[test]
    fn other_statuses_keep_code_and_object() {
        let err = status_error("StartContainer", "abc", None, &tonic::Status::not_found("no such container"));
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "CRI StartContainer abc: NotFound: no such container");
    }

    #[tokio::test]
    async fn connect_is_lazy_and_reports_unavailable_runtime() {
        let runtime =
            RemoteRuntime::connect("unix:///nonexistent/knode-test.sock", Duration::from_secs(5)).expect("lazy connect does not dial");
        let err = crate::RuntimeService::version(&runtime).await.expect_err("no runtime there");
        assert!(matches!(err, CriError::Status { op: "Version", code: tonic::Code::Unavailable, .. }), "{err}");
    }

    #[test]
    fn connect_outside_tokio_is_an_error_not_a_panic() {
        let err = RemoteRuntime::connect("/run/x.sock", Duration::from_secs(1)).expect_err("no runtime");
        assert!(matches!(err, CriError::Connect { .. }), "{err}");
    }
}
