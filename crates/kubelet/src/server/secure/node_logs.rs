//! `GET /logs/` (upstream: a file server on `/var/log`): a directory answers an HTML listing as
//! Go's `http.FileServer` writes it, a file its contents. Nothing outside the log directory is
//! served, symlinks included. With `enableSystemLogQuery`, a request with query parameters is a
//! node log query ([`super::node_log_query`]).

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::SecureContext;
use super::node_log_query::{NodeLogQuery, aggregate};
use crate::server::text;

pub(super) async fn root(State(ctx): State<Arc<SecureContext>>, RawQuery(query): RawQuery) -> Response {
    logs(&ctx, "", query.as_deref()).await
}

pub(super) async fn file(State(ctx): State<Arc<SecureContext>>, Path(rel): Path<String>, RawQuery(query): RawQuery) -> Response {
    logs(&ctx, &rel, query.as_deref()).await
}

/// A file (or listing), or with `enableSystemLogQuery` and query parameters, a log query.
async fn logs(ctx: &SecureContext, rel: &str, query: Option<&str>) -> Response {
    let base = &ctx.node_log_dir;
    let Some(raw) = query.filter(|_| ctx.log_query) else { return serve(base, rel).await };
    let q = match NodeLogQuery::parse(raw) {
        Err(errs) => return text(StatusCode::BAD_REQUEST, format!("{}\n", aggregate(&errs))),
        Ok(None) => return serve(base, rel).await,
        Ok(Some(q)) => q,
    };
    if !rel.is_empty() && rel != "/" {
        return text(StatusCode::NOT_ACCEPTABLE, "path not allowed in query mode\n".into());
    }
    if let Err(errs) = q.validate(base) {
        return text(StatusCode::NOT_ACCEPTABLE, format!("{}\n", aggregate(&errs)));
    }
    if q.services.is_empty() {
        return serve(base, &q.files[0]).await;
    }
    let body = super::node_log_query_serve::collect(&q, base).await;
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], body).into_response()
}

/// Opens `rel` with `flags`, the kernel keeping the lookup inside `base` (no `..`, no
/// absolute path, no symlink out of it).
fn openat_beneath(base: &FsPath, rel: &str, flags: rustix::fs::OFlags) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    let dir = std::fs::File::open(base)?;
    let fd = openat2(&dir, rel, flags | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS)?;
    Ok(std::fs::File::from(fd))
}

/// Opens the regular file `rel` under `base` for reading (never blocking on a FIFO).
pub fn open_beneath(base: &FsPath, rel: &str) -> std::io::Result<std::fs::File> {
    let f = openat_beneath(base, rel, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK)?;
    if f.metadata()?.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{rel} is a directory")));
    }
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{rel} is not a regular file")));
    }
    Ok(f)
}

/// Whether `rel` exists under `base` (looked up without opening it, as upstream's `Stat`).
pub fn stat_beneath(base: &FsPath, rel: &str) -> std::io::Result<()> {
    openat_beneath(base, rel, rustix::fs::OFlags::PATH).map(|_| ())
}

/// `rel` under `base`, or `None` when it would leave it (`..`, absolute parts).
pub fn resolve(base: &FsPath, rel: &str) -> Option<PathBuf> {
    let mut out = base.to_path_buf();
    for c in FsPath::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

async fn serve(base: &FsPath, rel: &str) -> Response {
    let not_found = || text(StatusCode::NOT_FOUND, "404 page not found\n".into());
    let Some(path) = resolve(base, rel) else { return not_found() };
    // Symlinks may not lead out of the log directory.
    let (Ok(real), Ok(real_base)) = (tokio::fs::canonicalize(&path).await, tokio::fs::canonicalize(base).await) else { return not_found() };
    if !real.starts_with(&real_base) {
        return not_found();
    }
    let Ok(meta) = tokio::fs::metadata(&real).await else { return not_found() };
    if meta.is_dir() {
        return listing(&real).await;
    }
    // Streamed, never read whole: node logs can be large. A file still growing is served up to
    // the length it had, which the Content-Length promises.
    match tokio::fs::File::open(&real).await {
        Ok(file) => {
            let capped = tokio::io::AsyncReadExt::take(file, meta.len());
            let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(capped, 64 * 1024));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()), (header::CONTENT_LENGTH, meta.len().to_string())],
                body,
            )
                .into_response()
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading {}: {e}\n", path.display())),
    }
}

async fn listing(dir: &FsPath) -> Response {
    let mut names = Vec::new();
    match tokio::fs::read_dir(dir).await {
        Ok(mut entries) => {
            while let Ok(Some(e)) = entries.next_entry().await {
                let mut name = e.file_name().to_string_lossy().into_owned();
                if e.file_type().await.is_ok_and(|t| t.is_dir()) {
                    name.push('/');
                }
                names.push(name);
            }
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("listing {}: {e}\n", dir.display())),
    }
    names.sort();
    let mut body = String::from("<pre>\n");
    for n in names {
        let esc = html_escape(&n);
        body.push_str(&format!("<a href=\"{esc}\">{esc}</a>\n"));
    }
    body.push_str("</pre>\n");
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_base() {
        let base = FsPath::new("/var/log");
        assert_eq!(resolve(base, "syslog"), Some(PathBuf::from("/var/log/syslog")));
        assert_eq!(resolve(base, "pods/./a"), Some(PathBuf::from("/var/log/pods/a")));
        assert_eq!(resolve(base, ""), Some(PathBuf::from("/var/log")));
        assert_eq!(resolve(base, "../etc/shadow"), None);
        assert_eq!(resolve(base, "a/../../x"), None);
        assert_eq!(resolve(base, "/etc/passwd"), None);
        assert_eq!(html_escape("<a&\">"), "&lt;a&amp;&#34;&gt;");
    }
}
