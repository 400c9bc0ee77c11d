//! Property test: random interleavings of transactional produce, commit and abort across
//! producers and partitions; what a read_committed consumer (rdkafka) reads must equal a
//! model of the committed view — committed records in offset order, nothing from aborted
//! transactions, nothing at or past the first record of a still-open transaction.

mod common;

use agentbus_testkit::Broker;
use common::raw::{txn_batch, Raw};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

const PRODUCERS: usize = 3;
const PARTITIONS: i32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Produce {
        producer: usize,
        partition: i32,
        count: usize,
    },
    Commit(usize),
    Abort(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PRODUCERS, 0..PARTITIONS, 1..4usize).prop_map(|(producer, partition, count)| Op::Produce { producer, partition, count }),
        1 => (0..PRODUCERS).prop_map(Op::Commit),
        1 => (0..PRODUCERS).prop_map(Op::Abort),
    ]
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

struct TxnProducer {
    id: String,
    pid: i64,
    epoch: i16,
    seq: HashMap<i32, i32>,
    added: BTreeSet<i32>,
}

/// The model: per partition, the records written in offset order with their transaction.
#[derive(Default)]
struct Model {
    log: HashMap<i32, Vec<(usize, u32, String)>>,
    /// Per producer: its current transaction number and whether it is open.
    txn: Vec<(u32, bool)>,
    committed: BTreeSet<(usize, u32)>,
}

impl Model {
    fn view(&self, partition: i32) -> Vec<String> {
        let entries = self.log.get(&partition).cloned().unwrap_or_default();
        let open = |p: usize, t: u32| self.txn[p] == (t, true);
        let lso = entries
            .iter()
            .position(|(p, t, _)| open(*p, *t))
            .unwrap_or(entries.len());
        entries[..lso]
            .iter()
            .filter(|(p, t, _)| self.committed.contains(&(*p, *t)))
            .map(|(_, _, v)| v.clone())
            .collect()
    }
}

async fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    let mut raw = Raw::connect(&b).await;
    broker.inspect().create_topic("m", PARTITIONS).unwrap();
    let mut producers = Vec::new();
    for i in 0..PRODUCERS {
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = Some(TransactionalId(s(&format!("model-{i}"))));
        req.transaction_timeout_ms = 60_000;
        let r = raw.send(3, &req).await;
        prop_assert_eq!(r.error_code, 0);
        producers.push(TxnProducer {
            id: format!("model-{i}"),
            pid: r.producer_id.0,
            epoch: r.producer_epoch,
            seq: HashMap::new(),
            added: BTreeSet::new(),
        });
    }
    let mut model = Model {
        txn: vec![(0, false); PRODUCERS],
        ..Model::default()
    };
    let mut n = 0;
    for op in ops {
        match op {
            Op::Produce {
                producer,
                partition,
                count,
            } => {
                let p = &mut producers[producer];
                if !p.added.contains(&partition) {
                    let mut t = AddPartitionsToTxnTopic::default();
                    t.name = TopicName(s("m"));
                    t.partitions = vec![partition];
                    let mut req = AddPartitionsToTxnRequest::default();
                    req.v3_and_below_transactional_id = TransactionalId(s(&p.id));
                    req.v3_and_below_producer_id = ProducerId(p.pid);
                    req.v3_and_below_producer_epoch = p.epoch;
                    req.v3_and_below_topics = vec![t];
                    let r = raw.send(3, &req).await;
                    prop_assert_eq!(
                        r.results_by_topic_v3_and_below[0].results_by_partition[0]
                            .partition_error_code,
                        0
                    );
                    p.added.insert(partition);
                    model.txn[producer].1 = true;
                }
                let values: Vec<String> = (0..count).map(|i| format!("v{}", n + i)).collect();
                n += count;
                let seq = p.seq.entry(partition).or_insert(0);
                let mut pd = PartitionProduceData::default();
                pd.index = partition;
                pd.records = Some(txn_batch(p.pid, p.epoch, *seq, &values));
                *seq += count as i32;
                let mut td = TopicProduceData::default();
                td.name = TopicName(s("m"));
                td.partition_data = vec![pd];
                let mut req = ProduceRequest::default();
                req.transactional_id = Some(TransactionalId(s(&p.id)));
                req.acks = -1;
                req.topic_data = vec![td];
                let r = raw.send(9, &req).await;
                prop_assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
                let txn = model.txn[producer].0;
                for v in values {
                    model
                        .log
                        .entry(partition)
                        .or_default()
                        .push((producer, txn, v));
                }
            }
            Op::Commit(producer) | Op::Abort(producer) => {
                let commit = matches!(op, Op::Commit(_));
                let p = &mut producers[producer];
                let mut req = EndTxnRequest::default();
                req.transactional_id = TransactionalId(s(&p.id));
                req.producer_id = ProducerId(p.pid);
                req.producer_epoch = p.epoch;
                req.committed = commit;
                let r = raw.send(3, &req).await;
                let (txn, open) = model.txn[producer];
                if open {
                    prop_assert_eq!(r.error_code, 0);
                    if commit {
                        model.committed.insert((producer, txn));
                    }
                    model.txn[producer] = (txn + 1, false);
                    p.added.clear();
                }
            }
        }
    }
    // What a real read_committed consumer reads, to the last stable offset.
    let consumer: BaseConsumer = common::consumer(&b, &[("isolation.level", "read_committed")]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("m", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let expected: Vec<Vec<String>> = (0..PARTITIONS).map(|p| model.view(p)).collect();
    let total: usize = expected.iter().map(Vec::len).sum();
    let mut got: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    let deadline = Instant::now() + Duration::from_secs(20);
    let read = |got: &Vec<Vec<String>>| got.iter().map(Vec::len).sum::<usize>();
    while read(&got) < total && Instant::now() < deadline {
        if let Some(Ok(m)) =
            tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(50)))
        {
            got[m.partition() as usize]
                .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    // Nothing more may arrive.
    if let Some(Ok(m)) = tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(300))) {
        got[m.partition() as usize]
            .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
    }
    prop_assert_eq!(got, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]
    #[test]
    fn read_committed_matches_the_model(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run_case(ops))?;
    }
}
