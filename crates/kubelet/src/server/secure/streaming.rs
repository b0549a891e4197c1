//! `/exec`, `/attach` and `/portForward` (upstream `Server.getExec/getAttach/getPortForward`
//! with `--redirect-container-streaming=false`): asks the runtime for a streaming URL (CRI `Exec`,
//! `Attach`, `PortForward`) and proxies the client's upgraded connection (SPDY or WebSocket) to it,
//! byte for byte, like upstream's `UpgradeAwareHandler`.
//!
//! The client's `Authorization` header is not forwarded to the runtime.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use kubelet_cri::api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::SecureContext;
use super::runtime_lookup::{PodRef, ready_sandbox, running_container};
use crate::server::text;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 16 * 1024;

/// `stdin`, `stdout`, `stderr`, `tty` and `command` of an exec or attach request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamOptions {
    /// `stdin` (or `input`): attach the client's input to the container's stdin.
    pub stdin: bool,
    /// `stdout` (or `output`): stream the container's stdout to the client.
    pub stdout: bool,
    /// `stderr` (or `error`): stream the container's stderr; always off with a TTY.
    pub stderr: bool,
    /// `tty`: allocate a terminal, which merges stderr into stdout.
    pub tty: bool,
    /// The repeated `command` parameters: the argv to exec (empty for attach).
    pub command: Vec<String>,
}

impl StreamOptions {
    /// As upstream's `remotecommand.NewOptions`: flags are `1`/`true`; a TTY merges stderr into
    /// stdout; at least one stream is required.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self, String> {
        let flag = |name: &str| pairs.iter().any(|(k, v)| k == name && (v == "1" || v.eq_ignore_ascii_case("true")));
        let mut o = StreamOptions {
            stdin: flag("stdin") || flag("input"),
            stdout: flag("stdout") || flag("output"),
            stderr: flag("stderr") || flag("error"),
            tty: flag("tty"),
            command: pairs.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect(),
        };
        if o.tty && o.stderr {
            o.stderr = false;
        }
        if !o.stdin && !o.stdout && !o.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(o)
    }
}

/// `{ns}/{pod}/{container}` or `{ns}/{pod}/{uid}/{container}`.
fn split_target(parts: &[String]) -> Option<(&str, &str, &str, &str)> {
    match parts {
        [ns, pod, c] => Some((ns, pod, "", c)),
        [ns, pod, uid, c] => Some((ns, pod, uid, c)),
        _ => None,
    }
}

pub(super) async fn exec(
    state: State<Arc<SecureContext>>,
    path: Path<Vec<(String, String)>>,
    query: Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    container_stream(state, path, query, req, true).await
}

pub(super) async fn attach(
    state: State<Arc<SecureContext>>,
    path: Path<Vec<(String, String)>>,
    query: Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    container_stream(state, path, query, req, false).await
}

async fn container_stream(
    State(ctx): State<Arc<SecureContext>>,
    Path(params): Path<Vec<(String, String)>>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
    exec: bool,
) -> Response {
    let parts: Vec<String> = params.into_iter().map(|(_, v)| v).collect();
    let Some((namespace, pod_name, uid, container)) = split_target(&parts) else {
        return text(StatusCode::BAD_REQUEST, "expected /{namespace}/{pod}/{container}\n".into());
    };
    if !req.headers().contains_key(header::UPGRADE) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required\n".into());
    }
    let opts = match StreamOptions::from_query(&query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if exec && opts.command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "missing command: give at least one command= parameter\n".into());
    }
    let Some(pod) = ctx.find_pod(namespace, pod_name) else {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} does not exist\n"));
    };
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    if !uid.is_empty() && uid != pod_uid {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} with UID {uid} does not exist\n"));
    }
    let pod_ref = PodRef { namespace, name: pod_name, uid: &pod_uid };
    let c = match running_container(ctx.runtime.as_ref(), &pod_ref, container).await {
        Ok(Some(c)) => c,
        Ok(None) => return text(StatusCode::BAD_REQUEST, format!("container {container:?} in pod {pod_name:?} is not running\n")),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    let url = if exec {
        let r = api::ExecRequest {
            container_id: c.id,
            cmd: opts.command,
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        ctx.runtime.exec(r).await
    } else {
        let r = api::AttachRequest { container_id: c.id, stdin: opts.stdin, tty: opts.tty, stdout: opts.stdout, stderr: opts.stderr };
        ctx.runtime.attach(r).await
    };
    match url {
        Ok(url) => proxy_upgrade(&url, req).await,
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

pub(super) async fn port_forward(
    State(ctx): State<Arc<SecureContext>>,
    Path(params): Path<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let parts: Vec<&str> = params.iter().map(|(_, v)| v.as_str()).collect();
    let (namespace, pod_name, uid) = match parts[..] {
        [ns, pod] => (ns, pod, ""),
        [ns, pod, uid] => (ns, pod, uid),
        _ => return text(StatusCode::BAD_REQUEST, "expected /portForward/{namespace}/{pod}\n".into()),
    };
    if !req.headers().contains_key(header::UPGRADE) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required\n".into());
    }
    let Some(pod) = ctx.find_pod(namespace, pod_name) else {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} does not exist\n"));
    };
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    if !uid.is_empty() && uid != pod_uid {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} with UID {uid} does not exist\n"));
    }
    let sandbox = match ready_sandbox(ctx.runtime.as_ref(), &PodRef { namespace, name: pod_name, uid: &pod_uid }).await {
        Ok(Some(s)) => s,
        Ok(None) => return text(StatusCode::BAD_REQUEST, format!("pod {pod_name:?} has no running sandbox\n")),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    match ctx.runtime.port_forward(api::PortForwardRequest { pod_sandbox_id: sandbox.id, port: Vec::new() }).await {
        Ok(url) => proxy_upgrade(&url, req).await,
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
pub fn split_http_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!authority.is_empty()).then_some((authority, path))
}

/// Sends the client's upgrade request to the runtime's streaming server and, on `101`, splices
/// the two connections together. Any other answer is relayed as is.
async fn proxy_upgrade(url: &str, mut req: Request) -> Response {
    let Some((authority, path)) = split_http_url(url) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("unsupported streaming URL {url:?}\n"));
    };
    if !req.headers().contains_key(header::UPGRADE) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required\n".into());
    }
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let mut backend = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return text(StatusCode::BAD_GATEWAY, format!("connecting to the runtime's streaming server {authority}: {e}\n")),
        Err(_) => return text(StatusCode::BAD_GATEWAY, format!("connecting to the runtime's streaming server {authority}: timed out\n")),
    };
    let mut head = format!("{} {path} HTTP/1.1\r\nHost: {authority}\r\n", req.method());
    for (name, value) in req.headers() {
        if name == header::HOST || name == header::AUTHORIZATION || name == header::CONTENT_LENGTH {
            continue;
        }
        if let Ok(v) = value.to_str() {
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    if let Err(e) = backend.write_all(head.as_bytes()).await {
        return text(StatusCode::BAD_GATEWAY, format!("writing to the runtime's streaming server: {e}\n"));
    }
    let (status, headers, leftover) = match read_response_head(&mut backend).await {
        Ok(h) => h,
        Err(e) => return text(StatusCode::BAD_GATEWAY, format!("reading from the runtime's streaming server: {e}\n")),
    };
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            response = response.header(n, v);
        }
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        // An error from the streaming server: relay what it said (bounded).
        let mut body = leftover;
        let _ = tokio::time::timeout(Duration::from_secs(2), (&mut backend).take(64 * 1024).read_to_end(&mut body)).await;
        return response.body(Body::from(body)).unwrap_or_else(|_| text(StatusCode::BAD_GATEWAY, "bad response from the runtime\n".into()));
    }
    let Some(on_upgrade) = on_upgrade else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "connection cannot be upgraded\n".into());
    };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("client upgrade failed: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        if !leftover.is_empty() && client.write_all(&leftover).await.is_err() {
            return;
        }
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            tracing::debug!("stream proxy ended: {e}");
        }
    });
    response.body(Body::empty()).unwrap_or_else(|_| text(StatusCode::BAD_GATEWAY, "bad response from the runtime\n".into()))
}

/// Reads an HTTP/1.1 response head: (status, headers, bytes read past the head).
async fn read_response_head(stream: &mut TcpStream) -> std::io::Result<(StatusCode, Vec<(String, String)>, Vec<u8>)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("response head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(CONNECT_TIMEOUT, stream.read(&mut chunk)).await.map_err(|_| bad("timed out"))??;
        if n == 0 {
            return Err(bad("connection closed before a response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let code: u16 = status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let status = StatusCode::from_u16(code).map_err(|_| bad("bad status code"))?;
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Ok((status, headers, buf[end + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn stream_options_follow_upstream() {
        let o = StreamOptions::from_query(&q(&[("command", "echo"), ("command", "hi"), ("stdout", "1"), ("stderr", "true")])).unwrap();
        assert_eq!(o, StreamOptions { stdout: true, stderr: true, command: vec!["echo".into(), "hi".into()], ..Default::default() });
        let o = StreamOptions::from_query(&q(&[("stdin", "1"), ("stdout", "1"), ("stderr", "1"), ("tty", "1")])).unwrap();
        assert!(o.tty && o.stdin && !o.stderr, "a TTY has no separate stderr");
        assert!(StreamOptions::from_query(&q(&[("command", "ls"), ("stdout", "0")])).unwrap_err().contains("at least 1 of stdin"));
    }

    #[test]
    fn streaming_urls() {
        assert_eq!(split_http_url("http://127.0.0.1:35000/exec/abc"), Some(("127.0.0.1:35000", "/exec/abc")));
        assert_eq!(split_http_url("http://[::1]:1"), Some(("[::1]:1", "/")));
        assert_eq!(split_http_url("https://x/y"), None);
        assert_eq!(split_http_url("http:///y"), None);
        assert_eq!(split_target(&["a".into(), "b".into()]), None);
    }
}
