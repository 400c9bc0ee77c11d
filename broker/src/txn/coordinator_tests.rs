//! The coordinator's side of ending a transaction: it decides and persists, returns what
//! must be carried out, and keeps the id busy until the broker reports back.

use super::coordinator::{Init, TxnCoordinator, TxnState};
use super::store::TxnStore;
use crate::clock::Clock;
use crate::group::store::CommittedOffset;
use crate::meta::MetaStore;
use kafka_protocol::error::ResponseError;
use std::sync::Arc;

fn coordinator(meta: &Arc<MetaStore>) -> TxnCoordinator {
    TxnCoordinator::open(TxnStore::new(meta.clone()), Clock::default(), 900_000).unwrap()
}

fn offset(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 0,
    }
}

/// A transaction with two partitions and an offset for group `g`, ready to end.
fn ongoing(c: &TxnCoordinator) -> (i64, i16) {
    let Init::Ready(pid, epoch) = c.init_producer_id("t", 60_000, None).unwrap() else {
        panic!("a new id is ready at once");
    };
    let parts = [("a".to_string(), 0), ("b".to_string(), 1)];
    c.add_partitions("t", pid, epoch, &parts, false, |_, _| true)
        .unwrap();
    c.add_offsets("t", pid, epoch, "g").unwrap();
    c.commit_offsets("t", pid, epoch, "g", vec![("a".into(), 0, offset(5))])
        .unwrap();
    (pid, epoch)
}

fn state(c: &TxnCoordinator) -> TxnState {
    c.describe("t").unwrap().state
}

#[test]
fn ending_returns_the_work_and_the_id_is_busy_until_it_is_done() {
    let c = coordinator(&Arc::new(MetaStore::memory()));
    let (pid, epoch) = ongoing(&c);
    let work = c.end_txn("t", pid, epoch, true).unwrap().unwrap();
    assert_eq!(
        (work.commit, work.partitions.clone()),
        (true, vec![("a".into(), 0), ("b".into(), 1)])
    );
    assert_eq!(
        work.offsets,
        vec![("g".to_string(), vec![("a".to_string(), 0, offset(5))])]
    );
    assert_eq!(state(&c), TxnState::PrepareCommit);
    let busy = Err(ResponseError::ConcurrentTransactions);
    assert_eq!(c.end_txn("t", pid, epoch, true).map(|_| ()), busy);
    assert_eq!(c.add_offsets("t", pid, epoch, "g"), busy);
    assert!(matches!(
        c.init_producer_id("t", 60_000, None),
        Err(ResponseError::ConcurrentTransactions)
    ));
    assert!(
        c.tick().is_empty(),
        "the tick does not carry out the same work twice"
    );
    assert_eq!(c.completed(&work), Ok((pid, epoch)));
    assert_eq!(state(&c), TxnState::CompleteCommit);
    // A retried EndTxn after completion succeeds and asks for nothing.
    assert_eq!(c.end_txn("t", pid, epoch, true), Ok(None));
}

#[test]
fn work_that_could_not_be_done_comes_back_at_the_next_tick() {
    let c = coordinator(&Arc::new(MetaStore::memory()));
    let (pid, epoch) = ongoing(&c);
    let work = c.end_txn("t", pid, epoch, false).unwrap().unwrap();
    assert!(work.offsets.is_empty(), "an abort commits no offsets");
    c.not_completed(&work);
    assert_eq!(c.tick(), vec![work.clone()]);
    assert_eq!(c.completed(&work), Ok((pid, epoch)));
    assert_eq!(state(&c), TxnState::CompleteAbort);
}

#[test]
fn a_prepared_transaction_survives_a_restart_and_is_finished_by_the_first_tick() {
    let meta = Arc::new(MetaStore::memory());
    let work = {
        let c = coordinator(&meta);
        let (pid, epoch) = ongoing(&c);
        c.end_txn("t", pid, epoch, true).unwrap().unwrap()
    };
    let c = coordinator(&meta);
    assert_eq!(c.tick(), vec![work]);
}

#[test]
fn a_new_incarnation_aborts_the_open_transaction_first() {
    let c = coordinator(&Arc::new(MetaStore::memory()));
    let (pid, epoch) = ongoing(&c);
    let Init::AbortFirst(work) = c.init_producer_id("t", 30_000, None).unwrap() else {
        panic!("the open transaction must be aborted first");
    };
    assert_eq!(
        (
            work.commit,
            work.epoch,
            work.partitions.len(),
            work.offsets.len()
        ),
        (false, epoch + 1, 2, 0),
        "aborted under the bumped epoch"
    );
    assert_eq!(c.completed(&work), Ok((pid, epoch + 1)));
    let t = c.describe("t").unwrap();
    assert_eq!((t.state, t.timeout_ms), (TxnState::Empty, 30_000));
    // The old incarnation is fenced.
    assert_eq!(
        c.add_offsets("t", pid, epoch, "g"),
        Err(ResponseError::ProducerFenced)
    );
}
