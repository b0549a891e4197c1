use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::mpsc;

use super::*;

type EventSender = mpsc::UnboundedSender<Result<WatchEvent<ConfigMap>, ApiError>>;

/// One namespace's ConfigMaps with versions; every watch gets the later changes of its object.
#[derive(Default)]
struct FakeSource {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    version: u64,
    objects: BTreeMap<String, ConfigMap>,
    watchers: Vec<(String, EventSender)>,
    lists: usize,
    watches: usize,
    /// The lane of each list.
    lanes: Vec<usize>,
    /// Lists never answer (a dead connection).
    hang_lists: bool,
    fail_lists: bool,
}

impl FakeSource {
    fn put(&self, name: &str, value: &str) {
        let mut st = self.state.lock().unwrap();
        st.version += 1;
        let mut cm = ConfigMap { data: Some(BTreeMap::from([("k".to_string(), value.to_string())])), ..Default::default() };
        cm.metadata.name = Some(name.into());
        cm.metadata.resource_version = Some(st.version.to_string());
        let event = if st.objects.insert(name.into(), cm.clone()).is_some() { WatchEvent::Modified(cm) } else { WatchEvent::Added(cm) };
        st.watchers.retain(|(n, tx)| n != name || tx.send(Ok(event.clone())).is_ok());
    }

    fn delete(&self, name: &str) {
        let mut st = self.state.lock().unwrap();
        st.version += 1;
        if let Some(mut cm) = st.objects.remove(name) {
            cm.metadata.resource_version = Some(st.version.to_string());
            st.watchers.retain(|(n, tx)| n != name || tx.send(Ok(WatchEvent::Deleted(cm.clone()))).is_ok());
        }
    }

    /// Ends every watch, as the server's timeout does.
    fn end_watches(&self) {
        self.state.lock().unwrap().watchers.clear();
    }
}

#[async_trait]
impl WatchSource<ConfigMap> for FakeSource {
    async fn list_one(&self, lane: usize, _: &str, name: &str) -> Result<(Option<ConfigMap>, String), ApiError> {
        let hang = {
            let mut st = self.state.lock().unwrap();
            st.lists += 1;
            st.lanes.push(lane);
            st.hang_lists
        };
        if hang {
            futures::future::pending::<()>().await;
        }
        let st = self.state.lock().unwrap();
        if st.fail_lists {
            return Err(ApiError::Status {
                what: format!("configmaps/{name}"),
                code: 500,
                reason: "InternalError".into(),
                message: "down".into(),
            });
        }
        Ok((st.objects.get(name).cloned(), st.version.to_string()))
    }

    async fn watch_one(
        &self,
        _: usize,
        _: &str,
        name: &str,
        _: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<ConfigMap>, ApiError>>, ApiError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.state.lock().unwrap();
        st.watches += 1;
        st.watchers.push((name.into(), tx));
        Ok(tokio_stream_from(rx))
    }
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::UnboundedReceiver<T>) -> BoxStream<'static, T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

fn value(c: &Cached<ConfigMap>) -> Option<Option<String>> {
    c.as_ref().map(|o| o.as_ref().map(|cm| cm.data.as_ref().unwrap()["k"].clone()))
}

/// Lets the watch tasks run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn reads_come_from_the_watch_once_it_answered() {
    let source = Arc::new(FakeSource::default());
    source.put("app", "v1");
    let watches = ObjectWatches::new(source.clone() as Arc<dyn WatchSource<ConfigMap>>);

    assert_eq!(value(&watches.cached("ns", "app")), None, "the first read is the caller's");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v1".into())));
    source.put("app", "v2");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v2".into())));
    source.delete("app");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(None), "deleted: known not to exist");
    source.put("app", "v3");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v3".into())));

    // An object that does not exist yet is known as such, then appears.
    watches.cached("ns", "later");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "later")), Some(None));
    source.put("later", "here");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "later")), Some(Some("here".into())));
    assert_eq!(source.state.lock().unwrap().lists, 2, "one list per object, reads cost nothing");

    // A watch the server ends goes on from its version (after a pause: it ended at once).
    let before = source.state.lock().unwrap().watches;
    source.end_watches();
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    assert_eq!(source.state.lock().unwrap().watches, before + 2, "both watched again");
    source.put("app", "v4");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v4".into())));
    assert_eq!(watches.running(), 2);

    drop(watches);
    settle().await;
    assert!(source.state.lock().unwrap().watchers.iter().all(|(_, tx)| tx.is_closed()), "dropping ends every watch");
}

#[tokio::test(start_paused = true)]
async fn unread_watches_end_and_failing_lists_leave_reads_to_the_caller() {
    let source = Arc::new(FakeSource::default());
    source.put("app", "v1");
    let watches = ObjectWatches::with_idle(source.clone() as Arc<dyn WatchSource<ConfigMap>>, Duration::from_secs(60));
    watches.cached("ns", "app");
    settle().await;
    assert_eq!(watches.running(), 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    source.end_watches();
    settle().await;
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(watches.running(), 0, "unread for its idle time, the watch ended");
    assert_eq!(value(&watches.cached("ns", "app")), None, "a read starts it again");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v1".into())));

    // Lists that fail: nothing cached, the caller asks; retried with backoff.
    source.state.lock().unwrap().fail_lists = true;
    assert_eq!(value(&watches.cached("ns", "other")), None);
    settle().await;
    assert_eq!(value(&watches.cached("ns", "other")), None);
    let lists = source.state.lock().unwrap().lists;
    tokio::time::advance(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(source.state.lock().unwrap().lists, lists + 1, "listed again after a second");
    source.state.lock().unwrap().fail_lists = false;
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(value(&watches.cached("ns", "other")), Some(None));
}

#[tokio::test(start_paused = true)]
async fn a_first_read_waits_for_the_list_and_a_silent_watch_is_renewed() {
    let source = Arc::new(FakeSource::default());
    source.put("app", "v1");
    let watches = ObjectWatches::new(source.clone() as Arc<dyn WatchSource<ConfigMap>>);
    assert_eq!(value(&watches.read("ns", "app").await), Some(Some("v1".into())), "answered by the watch's list, no GET");
    // A list that never answers: the read gives up after a second, for the caller to GET.
    source.state.lock().unwrap().fail_lists = true;
    let started = Instant::now();
    assert_eq!(value(&watches.read("ns", "slow").await), None);
    assert!(started.elapsed() >= FIRST_LIST_WAIT);
    source.state.lock().unwrap().fail_lists = false;

    // A watch that hears nothing (a dead connection) is dropped and made again at its deadline.
    let before = source.state.lock().unwrap().watches;
    tokio::time::advance(WATCH_DEADLINE + Duration::from_secs(1)).await;
    settle().await;
    watches.cached("ns", "app");
    assert!(source.state.lock().unwrap().watches > before, "watched again");
    source.put("app", "v2");
    settle().await;
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v2".into())));
}

#[tokio::test(start_paused = true)]
async fn watches_take_the_first_lane_with_room_and_beyond_the_lanes_reads_are_the_callers() {
    let source = Arc::new(FakeSource::default());
    for n in ["a", "b", "c", "d"] {
        source.put(n, n);
    }
    // Two kinds sharing two lanes of one watch each (both over the same fake here).
    let lanes = Arc::new(WatchLanes::new(2, 1));
    let first = ObjectWatches::sharing(source.clone() as Arc<dyn WatchSource<ConfigMap>>, lanes.clone());
    let second = ObjectWatches::sharing(source.clone() as Arc<dyn WatchSource<ConfigMap>>, lanes);
    first.cached("ns", "a");
    second.cached("ns", "b");
    settle().await;
    assert_eq!(source.state.lock().unwrap().lanes, vec![0, 1], "one watch in each lane");
    assert_eq!(value(&first.cached("ns", "a")), Some(Some("a".into())));
    assert_eq!(value(&second.cached("ns", "b")), Some(Some("b".into())));
    assert_eq!(value(&second.cached("ns", "c")), None);
    settle().await;
    assert_eq!(value(&second.cached("ns", "c")), None, "no room: every read is the caller's");
    assert_eq!((second.running(), source.state.lock().unwrap().lists), (1, 2), "and no watch was started");
    // The first kind's watch goes: its lane takes the next one.
    drop(first);
    settle().await;
    second.cached("ns", "d");
    settle().await;
    assert_eq!(value(&second.cached("ns", "d")), Some(Some("d".into())));
    assert_eq!(source.state.lock().unwrap().lanes, vec![0, 1, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_list_that_never_answers_is_given_up_and_made_again() {
    let source = Arc::new(FakeSource::default());
    source.put("app", "v1");
    source.state.lock().unwrap().hang_lists = true;
    let watches = ObjectWatches::new(source.clone() as Arc<dyn WatchSource<ConfigMap>>);
    watches.cached("ns", "app");
    settle().await;
    tokio::time::advance(REQUEST_TIMEOUT - Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(source.state.lock().unwrap().lists, 1, "still waiting on the first list");
    source.state.lock().unwrap().hang_lists = false;
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    assert_eq!(source.state.lock().unwrap().lists, 2, "given up at its timeout, listed again after a pause");
    assert_eq!(value(&watches.cached("ns", "app")), Some(Some("v1".into())));
}
