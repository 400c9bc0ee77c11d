//! How requests are dispatched, with the broker's state in this process.

use super::handle;
use crate::config::{BrokerConfig, StorageConfig};
use crate::meta::WriteHook;
use crate::protocol::Request;
use crate::state::State;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, MetadataRequest, RequestHeader, RequestKind,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn request(api: ApiKey, version: i16, body: RequestKind) -> Request {
    Request {
        api,
        version,
        header: RequestHeader::default(),
        body,
        client_host: "/127.0.0.1".into(),
        node_id: 1,
    }
}

/// On disk, a request that commits metadata runs on the blocking pool: while its write
/// waits, the runtime's only thread serves another request. (Run inline, the write would
/// hold that thread, the second request could not be served, and the write would give up
/// waiting after 10 s: the test fails, it does not hang.)
#[test]
fn a_waiting_metadata_write_leaves_the_async_worker_free() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        storage: StorageConfig::Disk(dir.path().to_path_buf()),
        ..BrokerConfig::default()
    };
    let state = Arc::new(State::open(config, ("127.0.0.1".into(), 9092)).unwrap());
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Mutex::new(Some(entered_tx));
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let gave_up = Arc::new(AtomicBool::new(false));
    let gave_up_in_hook = gave_up.clone();
    state.meta().before_write(Some(WriteHook(Box::new(move || {
        if let Some(tx) = entered_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let released = release_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
        if released.is_err() {
            gave_up_in_hook.store(true, Ordering::SeqCst);
        }
    }))));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut topic = CreatableTopic::default();
        topic.name = super::topic_name("t");
        topic.num_partitions = 1;
        topic.replication_factor = 1;
        let mut create = CreateTopicsRequest::default();
        create.topics.push(topic);
        create.timeout_ms = 30_000;
        let creating = tokio::spawn({
            let state = state.clone();
            async move { handle(&state, request(ApiKey::CreateTopics, 7, create.into())).await }
        });
        entered_rx.await.unwrap();
        let metadata = handle(
            &state,
            request(ApiKey::Metadata, 12, MetadataRequest::default().into()),
        )
        .await;
        assert!(metadata.is_some(), "served while the write waits");
        release_tx.send(()).unwrap();
        assert!(creating.await.unwrap().is_some());
    });
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "the write held the only worker"
    );
    state.meta().before_write(None);
    assert!(state.topic("t").is_some());
}
