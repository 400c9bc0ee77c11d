//! What a failed metadata write leaves (memory and disk as they were), and what moving
//! the log start forgets.

use super::*;

fn open(dir: &std::path::Path) -> State {
    let config = BrokerConfig {
        storage: StorageConfig::Disk(dir.to_path_buf()),
        ..BrokerConfig::default()
    };
    State::open(config, ("127.0.0.1".into(), 9092)).unwrap()
}

#[test]
fn a_failed_metadata_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let state = open(dir.path());
        state
            .create_topic("t", 2, -1, TopicConfigs::default())
            .unwrap();
        state.meta().fail_writes(true);

        assert!(state.create_partitions("t", 4, false).is_err());
        assert_eq!(state.topic("t").unwrap().partition_count(), 2);
        assert!(!dir.path().join("t-2").exists() && !dir.path().join("t-3").exists());

        assert!(state.delete_topic("t").is_err());
        assert!(state.topic("t").is_some());
        assert!(dir.path().join("t-0").exists());

        let retention = TopicConfigs::from_pairs([("retention.ms", Some("1000"))]).unwrap();
        assert!(state.alter_topic_configs("t", retention, false).is_err());
        assert_eq!(state.topic("t").unwrap().configs(), TopicConfigs::default());

        assert!(state
            .create_topic("u", 1, -1, TopicConfigs::default())
            .is_err());
        assert!(state.topic("u").is_none());
        assert!(!dir.path().join("u-0").exists());
    }
    let state = open(dir.path());
    assert_eq!(state.topic("t").unwrap().partition_count(), 2);
    assert!(state.topic("u").is_none());
}

/// A transactional batch of one record from `producer_id`.
fn transactional_batch(producer_id: i64) -> (crate::log::batch::BatchHeader, bytes::Bytes) {
    let mut r = crate::log::records::tests::record(0, "k".into(), "v".into());
    r.transactional = true;
    r.producer_id = producer_id;
    r.producer_epoch = 0;
    r.sequence = 0;
    crate::log::records::tests::encoded(&[r])
}

#[test]
fn aborted_transactions_below_the_log_start_are_forgotten() {
    let state = State::open(BrokerConfig::default(), ("127.0.0.1".into(), 9092)).unwrap();
    let topic = state
        .create_topic("t", 1, -1, TopicConfigs::default())
        .unwrap();
    let p = topic.partition(0).unwrap();
    p.append(&[transactional_batch(7)], None).unwrap();
    p.write_marker(7, 0, false, 0).unwrap();
    assert_eq!(p.aborted_count(), 1);
    // DeleteRecords below the transaction's last offset keeps it.
    assert_eq!(p.advance_start_offset(1).unwrap(), 1);
    assert_eq!(p.aborted_count(), 1);
    assert_eq!(p.advance_start_offset(2).unwrap(), 2);
    assert_eq!(p.aborted_count(), 0);
}
