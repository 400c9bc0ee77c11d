//! What a failed metadata write leaves: memory and disk as they were.

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
