//! Integration tests of `StaticPodSource` against a temporary manifest directory.

use std::path::Path;
use std::time::Duration;

use kubelet_podconfig::{PodConfig, PodSource, PodUpdate, StaticPodSource};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

fn manifest(name: &str, image: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: main\n    image: {image}\n")
}

struct Running {
    rx: mpsc::Receiver<PodUpdate>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(path: &Path, check_frequency: Duration) -> Running {
    let (tx, rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let source = StaticPodSource::new(path.to_path_buf(), "Node1".into(), check_frequency);
    let task = tokio::spawn(source.run(tx, shutdown.clone()));
    Running { rx, shutdown, task }
}

impl Running {
    /// The first update that satisfies `want`, within five seconds.
    async fn wait_for(&mut self, what: &str, want: impl Fn(&PodUpdate) -> bool) -> PodUpdate {
        let wait = async {
            loop {
                let update = self.rx.recv().await.expect("source stopped");
                if want(&update) {
                    return update;
                }
            }
        };
        timeout(Duration::from_secs(5), wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        timeout(Duration::from_secs(5), self.task).await.expect("run did not stop").unwrap();
    }
}

fn names(update: &PodUpdate) -> Vec<String> {
    update.pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
}

fn uid_of(update: &PodUpdate, name: &str) -> String {
    let pod = update.pods.iter().find(|p| p.metadata.name.as_deref() == Some(name)).unwrap();
    pod.metadata.uid.clone().unwrap()
}

/// A long resync period, so that these changes can only be noticed through inotify.
const NO_POLL: Duration = Duration::from_secs(600);

#[tokio::test]
async fn directory_add_edit_remove_through_inotify() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), manifest("a", "nginx:1")).unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join(".hidden.yaml"), manifest("hidden", "x")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/c.yaml"), manifest("c", "x")).unwrap();
    let mut source = start(dir.path(), NO_POLL);

    let first = source.wait_for("initial set", |_| true).await;
    assert_eq!(first.source, PodSource::File);
    assert_eq!(names(&first), ["a-node1", "b-node1"]);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let spec = first.pods[0].spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("Node1"));
    let uid_a = uid_of(&first, "a-node1");

    std::fs::write(dir.path().join("a.yaml"), manifest("a", "nginx:2")).unwrap();
    let edited = source.wait_for("edited a", |u| u.pods.len() == 2 && uid_of(u, "a-node1") != uid_a).await;
    assert_eq!(uid_of(&edited, "b-node1"), uid_of(&first, "b-node1"));

    std::fs::remove_file(dir.path().join("b.json")).unwrap();
    let removed = source.wait_for("b removed", |u| u.pods.len() == 1).await;
    assert_eq!(names(&removed), ["a-node1"]);

    std::fs::write(dir.path().join("d.yaml"), manifest("d", "x")).unwrap();
    source.wait_for("d added", |u| names(u) == ["a-node1", "d-node1"]).await;
    source.stop().await;
}

#[tokio::test]
async fn broken_file_next_to_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), manifest("good", "x")).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "apiVersion: v1\nkind: Pod\nspec: [").unwrap();
    std::fs::write(dir.path().join("list.yaml"), "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    // A PodList is accepted in a file too (upstream's file source only takes a Pod).
    std::fs::write(
        dir.path().join("pods.yaml"),
        "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: listed}\n  spec: {containers: [{name: c, image: x}]}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("invalid.yaml"), manifest("Bad_Name", "x")).unwrap();
    let mut source = start(dir.path(), NO_POLL);

    let update = source.wait_for("initial set", |_| true).await;
    let mut got = names(&update);
    got.sort();
    assert_eq!(got, ["good-node1", "listed-node1"]);
    let paths: Vec<String> = update.errors.iter().map(|e| e.path.clone()).collect();
    let expect = |f: &str| dir.path().join(f).display().to_string();
    assert_eq!(paths, [expect("broken.yaml"), expect("invalid.yaml"), expect("list.yaml")]);
    assert!(update.errors[0].message.contains("not valid YAML or JSON"), "{}", update.errors[0]);
    assert!(update.errors[1].message.contains("metadata.name: Invalid value: \"Bad_Name-node1\""), "{}", update.errors[1]);
    assert!(update.errors[2].message.contains("unsupported kind \"List\""), "{}", update.errors[2]);
    assert!(update.errors[0].to_string().starts_with(&expect("broken.yaml")));

    // Fixing the file brings its pod in and clears its error; breaking a good file drops
    // its pod, as upstream does.
    std::fs::remove_file(dir.path().join("list.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("pods.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("invalid.yaml")).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), manifest("fixed", "x")).unwrap();
    source.wait_for("fixed", |u| u.errors.is_empty() && u.pods.len() == 2).await;
    std::fs::write(dir.path().join("good.yaml"), "kind: Pod\n").unwrap();
    let update = source.wait_for("good broken", |u| u.errors.len() == 1).await;
    assert_eq!(names(&update), ["fixed-node1"]);
    assert!(update.errors[0].message.contains("Object 'apiVersion' is missing"));
    source.stop().await;
}

#[tokio::test]
async fn single_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(&file, manifest("solo", "x:1")).unwrap();
    std::fs::write(dir.path().join("other.yaml"), manifest("other", "x")).unwrap();
    let mut source = start(&file, NO_POLL);
    let first = source.wait_for("initial", |_| true).await;
    assert_eq!(names(&first), ["solo-node1"]);

    // Replace by rename, as editors and config management do.
    let tmp = dir.path().join(".pod.yaml.tmp");
    std::fs::write(&tmp, manifest("solo", "x:2")).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let second = source.wait_for("replaced", |u| u.pods.len() == 1 && u.pods[0].metadata.uid != first.pods[0].metadata.uid).await;
    assert_eq!(names(&second), ["solo-node1"]);

    // A broken single file keeps the last good pod and reports the error.
    std::fs::write(&file, "{").unwrap();
    let broken = source.wait_for("broken", |u| !u.errors.is_empty()).await;
    assert_eq!(broken.pods, second.pods);
    assert_eq!(broken.errors[0].path, file.display().to_string());
    source.stop().await;
}

#[tokio::test]
async fn missing_path_is_empty_then_found_by_polling() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    let mut source = start(&manifests, Duration::from_millis(100));
    let first = source.wait_for("initial", |_| true).await;
    assert!(first.pods.is_empty() && first.errors.is_empty());
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("p.yaml"), manifest("p", "x")).unwrap();
    source.wait_for("p", |u| names(u) == ["p-node1"]).await;
    source.stop().await;
}

#[tokio::test]
async fn feeds_pod_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), manifest("a", "x")).unwrap();
    let (config, mut desired) = PodConfig::new(&[PodSource::File]);
    let (tx, rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let source = StaticPodSource::new(dir.path().to_path_buf(), "n".into(), NO_POLL);
    let source = tokio::spawn(source.run(tx, shutdown.clone()));
    let merger = tokio::spawn(config.run(rx));
    timeout(Duration::from_secs(5), desired.wait_for(|d| d.sources_ready)).await.unwrap().unwrap();
    let state = desired.borrow().clone();
    let pod = state.pods.values().next().unwrap();
    let annotations = pod.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    assert_eq!(annotations["kubernetes.io/config.hash"], pod.metadata.uid.clone().unwrap());
    assert!(annotations.contains_key("kubernetes.io/config.seen"));
    shutdown.cancel();
    source.await.unwrap();
    timeout(Duration::from_secs(5), merger).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_manifest_removed_and_written_back_at_once_is_sent_removed_then_added() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), manifest("a", "nginx:1")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), manifest("b", "nginx:1")).unwrap();
    let mut source = start(dir.path(), NO_POLL);
    let first = source.wait_for("initial set", |_| true).await;
    assert_eq!(names(&first), ["a-node1", "b-node1"]);

    // As upstream's mirror-pod conformance spec does: delete, then write the same file again.
    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), manifest("a", "nginx:1")).unwrap();
    let gone = source.wait_for("a's removal", |_| true).await;
    assert_eq!(names(&gone), ["b-node1"], "the removal is sent on its own");
    let back = source.wait_for("a back", |_| true).await;
    assert_eq!(names(&back), ["a-node1", "b-node1"]);
    assert_eq!(uid_of(&back, "a-node1"), uid_of(&first, "a-node1"), "the same pod again");
    source.stop().await;
}
