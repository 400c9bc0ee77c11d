//! How requests are dispatched, with the broker's state in this process: a request whose
//! metadata write waits on the disk does not hold up the others.

use super::{handle, str_bytes, topic_name};
use crate::config::{BrokerConfig, StorageConfig};
use crate::meta::WriteHook;
use crate::protocol::Request;
use crate::state::State;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, GroupId, JoinGroupRequest, MetadataRequest, RequestHeader,
    RequestKind, ResponseKind, SyncGroupRequest,
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
        listener: 0,
        principal: "User:ANONYMOUS".into(),
    }
}

fn disk_state(dir: &std::path::Path) -> Arc<State> {
    let mut config = BrokerConfig {
        storage: StorageConfig::Disk(dir.to_path_buf()),
        ..BrokerConfig::default()
    };
    config.group.initial_rebalance_delay = Duration::ZERO;
    Arc::new(State::open(config, ("127.0.0.1".into(), 9092)).unwrap())
}

/// Holds the next metadata write until released: says when a write has entered, and
/// whether it gave up waiting (after 10 s: a test fails, it does not hang).
struct Gate {
    entered: tokio::sync::oneshot::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
    gave_up: Arc<AtomicBool>,
}

impl Gate {
    fn install(state: &State) -> Gate {
        let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
        let entered_tx = Mutex::new(Some(entered_tx));
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let gave_up = Arc::new(AtomicBool::new(false));
        let flag = gave_up.clone();
        state.meta().before_write(Some(WriteHook(Box::new(move || {
            let Some(tx) = entered_tx.lock().unwrap().take() else {
                return; // only the first write is held
            };
            let _ = tx.send(());
            let waited = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            flag.store(waited.is_err(), Ordering::SeqCst);
        }))));
        Gate {
            entered,
            release,
            gave_up,
        }
    }
}

/// A metadata request, answered while the held write waits.
async fn served_meanwhile(state: &Arc<State>) {
    let state = state.clone();
    let metadata = tokio::spawn(async move {
        handle(
            &state,
            request(ApiKey::Metadata, 12, MetadataRequest::default().into()),
        )
        .await
    });
    assert!(metadata.await.unwrap().is_some());
}

/// CreateTopics commits metadata on the blocking pool: while its write waits, the
/// runtime's only thread serves another request.
#[test]
fn a_waiting_metadata_write_leaves_the_async_worker_free() {
    let dir = tempfile::tempdir().unwrap();
    let state = disk_state(dir.path());
    let gate = Gate::install(&state);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut topic = CreatableTopic::default();
        topic.name = topic_name("t");
        topic.num_partitions = 1;
        topic.replication_factor = 1;
        let mut create = CreateTopicsRequest::default();
        create.topics.push(topic);
        create.timeout_ms = 30_000;
        let creating = tokio::spawn({
            let state = state.clone();
            async move { handle(&state, request(ApiKey::CreateTopics, 7, create.into())).await }
        });
        gate.entered.await.unwrap();
        served_meanwhile(&state).await;
        gate.release.send(()).unwrap();
        assert!(creating.await.unwrap().is_some());
    });
    assert!(
        !gate.gave_up.load(Ordering::SeqCst),
        "the write held the only worker"
    );
    assert!(state.topic("t").is_some());
}

/// SyncGroup settles the group and writes its snapshot from the async path: on a
/// one-worker runtime, another request is still served while that write waits.
#[test]
fn a_group_snapshot_write_leaves_the_async_worker_free() {
    let dir = tempfile::tempdir().unwrap();
    let state = disk_state(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let gate = Gate::install(&state);
    rt.block_on(async {
        let settling = tokio::spawn({
            let state = state.clone();
            async move {
                let mut join = JoinGroupRequest::default();
                join.group_id = GroupId(str_bytes("g"));
                join.session_timeout_ms = 10_000;
                join.rebalance_timeout_ms = 10_000;
                join.protocol_type = str_bytes("consumer");
                let mut protocol = JoinGroupRequestProtocol::default();
                protocol.name = str_bytes("range");
                join.protocols.push(protocol);
                let joined = handle(&state, request(ApiKey::JoinGroup, 3, join.into())).await;
                let Some(ResponseKind::JoinGroup(joined)) = joined else {
                    panic!("no JoinGroup answer: {joined:?}");
                };
                let mut assignment = SyncGroupRequestAssignment::default();
                assignment.member_id = joined.member_id.clone();
                assignment.assignment = Bytes::from_static(b"a");
                let mut sync = SyncGroupRequest::default();
                sync.group_id = GroupId(str_bytes("g"));
                sync.generation_id = joined.generation_id;
                sync.member_id = joined.member_id;
                sync.assignments.push(assignment);
                handle(&state, request(ApiKey::SyncGroup, 3, sync.into())).await
            }
        });
        gate.entered.await.unwrap();
        served_meanwhile(&state).await;
        gate.release.send(()).unwrap();
        let Some(ResponseKind::SyncGroup(synced)) = settling.await.unwrap() else {
            panic!("no SyncGroup answer");
        };
        assert_eq!(
            (synced.error_code, synced.assignment),
            (0, Bytes::from_static(b"a"))
        );
    });
    assert!(
        !gate.gave_up.load(Ordering::SeqCst),
        "the snapshot write held the only worker"
    );
    state.meta().before_write(None);
}
