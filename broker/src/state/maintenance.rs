//! Work on every partition that the background task (and tests, through the inspector)
//! start: compaction, retention, flushing.

use super::State;

impl State {
    /// Compacts every partition of the topics with `cleanup.policy=compact`.
    pub(crate) fn compact_all(&self) {
        for topic in self
            .topics()
            .into_iter()
            .filter(|t| t.configs().compacted(&self.config()))
        {
            for p in topic.partitions() {
                match p.compact(self.config().max_decompressed_bytes) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %topic.name, partition = p.index, removed = n, "compacted")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "compaction failed")
                    }
                }
            }
        }
    }

    /// Applies retention to every partition.
    pub(crate) fn apply_retention(&self) {
        let now = self.clock.now_ms();
        for topic in self.topics() {
            for p in topic.partitions() {
                match p.apply_retention(now) {
                    Ok(0) => {}
                    Ok(bytes) => {
                        tracing::info!(topic = %topic.name, partition = p.index, bytes, "retention removed old data")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed")
                    }
                }
            }
        }
    }

    /// Flushes every log and writes producer-state snapshots (on shutdown and periodically).
    pub(crate) fn flush_all(&self) {
        for topic in self.topics() {
            for p in topic.partitions() {
                if let Err(e) = p.flush() {
                    tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "flush failed");
                }
            }
        }
    }
}
