//! The API client's request metrics (component-base's `restclient` metrics, which upstream's
//! kubelet serves on `/metrics`): every request the client sends is reported with its HTTP
//! method, the API server's `host:port`, its status code (`<error>` when no answer came) and
//! how long the answer took (for a watch, until its headers).
//!
//! [`RestMetricsLayer`] is a tower layer on the `kube` client's service stack; it reports to the
//! one [`RequestObserver`] the process installs ([`set_observer`]), as upstream's clients report
//! to the global registry. Without an observer nothing is recorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use kubelet_types::client_metrics::RequestObserver;

static OBSERVER: OnceLock<Arc<dyn RequestObserver>> = OnceLock::new();

/// Installs the process's observer (the first one stays).
pub fn set_observer(observer: Arc<dyn RequestObserver>) {
    let _ = OBSERVER.set(observer);
}

/// The status code label of an answer: its code, or `<error>` for none.
pub fn code_label<B, E>(result: &Result<http::Response<B>, E>) -> String {
    match result {
        Ok(r) => r.status().as_u16().to_string(),
        Err(_) => "<error>".into(),
    }
}

/// Reports the requests of the service it wraps; `host` is the API server's `host:port`.
#[derive(Clone, Debug)]
pub struct RestMetricsLayer {
    host: Arc<str>,
}

impl RestMetricsLayer {
    /// A layer reporting requests to the API server at `host` (`host:port`, the `host` label).
    pub fn new(host: impl Into<Arc<str>>) -> Self {
        Self { host: host.into() }
    }
}

impl<S> tower::Layer<S> for RestMetricsLayer {
    type Service = RestMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RestMetricsService { inner, host: self.host.clone() }
    }
}

/// See [`RestMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RestMetricsService<S> {
    inner: S,
    host: Arc<str>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RestMetricsService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = request.method().as_str().to_string();
        let host = self.host.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            if let Some(observer) = OBSERVER.get() {
                observer.observe(&method, &host, &code_label(&result), started.elapsed());
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tower::{Layer, Service, ServiceExt};

    use super::*;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, String, String)>>);

    impl RequestObserver for Recorded {
        fn observe(&self, method: &str, host: &str, code: &str, _: Duration) {
            self.0.lock().unwrap().push((method.into(), host.into(), code.into()));
        }
    }

    #[tokio::test]
    async fn requests_are_reported_with_method_host_and_code() {
        let recorded = Arc::new(Recorded::default());
        set_observer(recorded.clone());
        let answer = tower::service_fn(|req: http::Request<()>| async move {
            match req.uri().path() {
                "/gone" => Err("connection refused"),
                "/missing" => Ok(http::Response::builder().status(404).body(()).unwrap()),
                _ => Ok(http::Response::new(())),
            }
        });
        let mut svc = RestMetricsLayer::new("198.18.0.1:6443").layer(answer);
        for (method, path) in [("GET", "/api"), ("POST", "/missing"), ("GET", "/gone")] {
            let req = http::Request::builder().method(method).uri(path).body(()).unwrap();
            let _ = svc.ready().await.unwrap().call(req).await;
        }
        let got = recorded.0.lock().unwrap().clone();
        let want = [("GET", "200"), ("POST", "404"), ("GET", "<error>")]
            .map(|(m, c)| (m.to_string(), "198.18.0.1:6443".to_string(), c.to_string()));
        assert_eq!(got, want.to_vec());
    }
}
