//! HTTP checks: a GET whose answer is 2xx or 3xx passes (upstream `pkg/probe/http`).
//!
//! As upstream: the `User-Agent` is `kube-probe/<major>.<minor>` and `Accept` is `*/*` unless
//! the probe sets them, a `Host` header replaces the URL's host, connections are not reused,
//! HTTPS does not verify certificates, at most 10 redirects are followed and only to the same
//! host (a redirect elsewhere passes with a warning), and at most 10 KiB of body is read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{ACCEPT, CONNECTION, HOST, HeaderName, HeaderValue, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::tcp::join_host_port;
use super::{MAX_PROBE_OUTPUT, ProbeOutcome, bounded_text};

const MAX_REDIRECTS: usize = 10;

/// `<major>.<minor>` of the Kubernetes release this kubelet implements.
pub fn probe_version() -> &'static str {
    "1.37"
}

/// What to GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or IP to connect to (`httpGet.host`, else the pod's IP).
    pub host: String,
    /// TCP port to connect to, a named port already resolved.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Extra request headers (`httpGet.httpHeaders`), as name and value.
    pub headers: Vec<(String, String)>,
}

impl HttpTarget {
    /// The URL to GET, e.g. `http://10.0.0.5:8080/healthz` (an IPv6 host in brackets).
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, join_host_port(&self.host, self.port), self.path)
    }
}

/// GETs `target`, following same-host redirects, all within `timeout`.
pub async fn check(target: &HttpTarget, timeout: Duration) -> ProbeOutcome {
    let url = target.url();
    match tokio::time::timeout(timeout, follow(target.clone())).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => ProbeOutcome::failure(format!("Get {url:?}: {e}")),
        Err(_) => ProbeOutcome::failure(format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
    }
}

/// GETs `target` as a lifecycle hook does: any answer passes, whatever its status code; only
/// failing to get one (connection, TLS, timeout) fails.
pub async fn hook(target: &HttpTarget, timeout: Duration) -> ProbeOutcome {
    let url = target.url();
    match tokio::time::timeout(timeout, follow(target.clone())).await {
        Ok(Ok(outcome)) => ProbeOutcome::success(outcome.output),
        Ok(Err(e)) => ProbeOutcome::failure(format!("Get {url:?}: {e}")),
        Err(_) => ProbeOutcome::failure(format!("Get {url:?}: context deadline exceeded")),
    }
}

async fn follow(mut target: HttpTarget) -> Result<ProbeOutcome, String> {
    for _ in 0..=MAX_REDIRECTS {
        let (status, location, body) = get_once(&target).await?;
        let body = bounded_text(&body);
        if (300..400).contains(&status)
            && let Some(location) = location
        {
            match redirect_target(&target, &location) {
                Some(next) if next.host == target.host => {
                    target = next;
                    continue;
                }
                _ => return Ok(ProbeOutcome::warning(format!("Probe terminated redirects, Response body: {body}"))),
            }
        }
        return Ok(match status {
            200..=299 => ProbeOutcome::success(body),
            300..=399 => ProbeOutcome::warning(format!("Probe terminated redirects, Response body: {body}")),
            _ => ProbeOutcome::failure(format!("HTTP probe failed with statuscode: {status}")),
        });
    }
    Err(format!("stopped after {MAX_REDIRECTS} redirects"))
}

/// The target a `Location` header points at: an absolute `http(s)://` URL, or a path on the
/// same server. `None` for anything else.
pub fn redirect_target(from: &HttpTarget, location: &str) -> Option<HttpTarget> {
    if location.starts_with('/') {
        return Some(HttpTarget { path: location.to_owned(), ..from.clone() });
    }
    let uri: hyper::Uri = location.parse().ok()?;
    // Only HTTP(S) can be followed (Go's client refuses other schemes too).
    let scheme = uri.scheme_str().filter(|s| *s == "http" || *s == "https")?.to_owned();
    let default_port = if scheme == "https" { 443 } else { 80 };
    Some(HttpTarget {
        host: uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']')).filter(|h| !h.is_empty())?.to_owned(),
        port: explicit_port(uri.authority()?.as_str())?.unwrap_or(default_port),
        path: match uri.path_and_query().map(|p| p.as_str()) {
            Some(p) if p.starts_with('/') => p.to_owned(),
            Some(p) => format!("/{p}"),
            None => "/".to_owned(),
        },
        scheme,
        headers: from.headers.clone(),
    })
}

/// The port written in an authority (`host:port`, `[v6]:port`): `Some(None)` when there is
/// none, `None` when what follows the `:` is not a port number (the `http` crate then reports no
/// port at all, which must not mean the default one).
fn explicit_port(authority: &str) -> Option<Option<u16>> {
    let after_host = authority.rsplit_once(']').map_or(authority, |(_, rest)| rest);
    let after_userinfo = after_host.rsplit_once('@').map_or(after_host, |(_, rest)| rest);
    match after_userinfo.rsplit_once(':') {
        Some((_, port)) => port.parse().ok().map(Some),
        None => Some(None),
    }
}

async fn get_once(target: &HttpTarget) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let addr = join_host_port(&target.host, target.port);
    let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let request = build_request(target)?;
    if target.scheme == "https" {
        let connector = tokio_rustls::TlsConnector::from(super::tls::insecure_client_config());
        let name = rustls_pki_types::ServerName::try_from(target.host.clone()).map_err(|e| e.to_string())?;
        let tls = connector.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
        exchange(tls, request).await
    } else {
        exchange(tcp, request).await
    }
}

fn build_request(target: &HttpTarget) -> Result<Request<Empty<Bytes>>, String> {
    let mut request = Request::get(target.path.as_str()).body(Empty::new()).map_err(|e| format!("invalid path {:?}: {e}", target.path))?;
    let headers = request.headers_mut();
    let host = if target.port == 80 || target.port == 443 { target.host.clone() } else { join_host_port(&target.host, target.port) };
    headers.insert(HOST, HeaderValue::from_str(&host).map_err(|e| e.to_string())?);
    for (name, value) in &target.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("invalid header name {name:?}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("invalid value of header {name}: {e}"))?;
        if name == HOST {
            headers.insert(HOST, value);
        } else {
            headers.append(name, value);
        }
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_str(&format!("kube-probe/{}", probe_version())).expect("ascii"));
    }
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    }
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(request)
}

async fn exchange<S>(stream: S, request: Request<Empty<Bytes>>) -> Result<(u16, Option<String>, Vec<u8>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(|e| e.to_string());
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            conn.abort();
            return Err(e);
        }
    };
    let status = response.status().as_u16();
    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Read up to the limit; a longer body is cut, not an error.
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < MAX_PROBE_OUTPUT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    conn.abort();
    Ok((status, location, bytes))
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
