//! Integration tests of `UrlPodSource` against a tiny HTTP server on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubelet_podconfig::{PodSource, PodUpdate, UrlPodSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// What the server answers, and the raw requests it saw.
#[derive(Default)]
struct Served {
    status: u16,
    body: String,
    requests: Vec<String>,
}

async fn serve(state: Arc<Mutex<Served>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = {
                    let mut state = state.lock().unwrap();
                    state.requests.push(String::from_utf8_lossy(&request).into_owned());
                    (state.status, state.body.clone())
                };
                let response = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/pods")
}

fn pod_json(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
    )
}

async fn next(rx: &mut mpsc::Receiver<PodUpdate>) -> PodUpdate {
    timeout(Duration::from_secs(5), rx.recv()).await.expect("no update").expect("source stopped")
}

fn names(update: &PodUpdate) -> Vec<String> {
    update.pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
}

#[tokio::test]
async fn polls_url_with_headers_and_keeps_last_good_set() {
    let state = Arc::new(Mutex::new(Served { status: 200, body: pod_json("web"), ..Served::default() }));
    let url = serve(Arc::clone(&state)).await;
    let headers = BTreeMap::from([("X-Token".to_owned(), vec!["a".to_owned(), "b".to_owned()])]);
    let source = UrlPodSource::new(url.clone(), headers, "Node1".into(), Duration::from_millis(50));
    let (tx, mut rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, shutdown.clone()));

    let first = next(&mut rx).await;
    assert_eq!(first.source, PodSource::Http);
    assert_eq!(names(&first), ["web-node1"]);
    let annotations = first.pods[0].metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations["kubernetes.io/config.source"], "http");
    assert!(first.pods[0].spec.as_ref().unwrap().tolerations.is_none());
    {
        let state = state.lock().unwrap();
        let request = state.requests[0].to_ascii_lowercase();
        assert!(request.starts_with("get /pods http/1.1"), "{request}");
        assert!(request.contains("x-token: a\r\n") && request.contains("x-token: b\r\n"), "{request}");
    }

    // The same body again and again: no update.
    assert!(timeout(Duration::from_millis(300), rx.recv()).await.is_err());
    assert!(state.lock().unwrap().requests.len() >= 3, "the URL is polled");

    // A YAML PodList replaces the set.
    state.lock().unwrap().body = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n  spec: {containers: [{name: c, image: x}]}\n- metadata: {name: b}\n  spec: {containers: [{name: c, image: x}]}\n".into();
    let list = next(&mut rx).await;
    assert_eq!(names(&list), ["a-node1", "b-node1"]);

    // Errors keep the last good set and are reported next to it.
    state.lock().unwrap().status = 500;
    let failed = next(&mut rx).await;
    assert_eq!(failed.pods, list.pods);
    assert_eq!(failed.errors[0].path, url);
    assert!(failed.errors[0].message.contains("500"), "{}", failed.errors[0]);

    {
        let mut state = state.lock().unwrap();
        state.status = 200;
        state.body = "apiVersion: v1\nkind: List\nitems: []\n".into();
    }
    let wrong_kind = next(&mut rx).await;
    assert_eq!(wrong_kind.pods, list.pods);
    assert!(wrong_kind.errors[0].message.contains("unsupported kind \"List\""), "{}", wrong_kind.errors[0]);

    // An empty body is an empty set.
    state.lock().unwrap().body.clear();
    let empty = next(&mut rx).await;
    assert!(empty.pods.is_empty());
    assert!(empty.errors[0].message.contains("zero-length data"));

    shutdown.cancel();
    timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn no_update_before_the_first_good_answer() {
    let state = Arc::new(Mutex::new(Served { status: 404, ..Served::default() }));
    let url = serve(Arc::clone(&state)).await;
    let source = UrlPodSource::new(url, BTreeMap::new(), "n".into(), Duration::from_millis(50));
    let (tx, mut rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, shutdown.clone()));
    assert!(timeout(Duration::from_millis(300), rx.recv()).await.is_err(), "a failing URL is not yet seen");
    {
        let mut state = state.lock().unwrap();
        state.status = 200;
        state.body = pod_json("late");
    }
    assert_eq!(names(&next(&mut rx).await), ["late-n"]);
    shutdown.cancel();
    timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn https_to_a_plain_server_fails_without_panicking() {
    let state = Arc::new(Mutex::new(Served { status: 200, body: pod_json("x"), ..Served::default() }));
    let url = serve(state).await.replace("http://", "https://");
    let source = UrlPodSource::new(url, BTreeMap::new(), "n".into(), Duration::from_millis(50));
    let (tx, mut rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, shutdown.clone()));
    assert!(timeout(Duration::from_millis(300), rx.recv()).await.is_err());
    shutdown.cancel();
    timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}
