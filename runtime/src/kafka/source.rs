//! A Kafka source: one consumer-group member reading one topic.

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};

use super::KafkaSettings;
use crate::record::Record;

/// Reads records; [`Source::ack`] marks one done so its offset can be committed.
pub struct Source {
    /// Always `Some` until dropped.
    consumer: Option<StreamConsumer>,
    topic: String,
}

impl Source {
    pub fn new(settings: &KafkaSettings, binding: &str, topic: &str) -> Result<Self, KafkaError> {
        Self::with_config(settings.consumer(binding), topic)
    }

    /// A source for an exactly-once binding (see [`KafkaSettings::transactional_consumer`]).
    pub fn transactional(
        settings: &KafkaSettings,
        binding: &str,
        topic: &str,
    ) -> Result<Self, KafkaError> {
        Self::with_config(settings.transactional_consumer(binding), topic)
    }

    fn with_config(config: rdkafka::ClientConfig, topic: &str) -> Result<Self, KafkaError> {
        let consumer: StreamConsumer = config.create()?;
        consumer.subscribe(&[topic])?;
        Ok(Self {
            consumer: Some(consumer),
            topic: topic.to_string(),
        })
    }

    fn consumer(&self) -> &StreamConsumer {
        self.consumer.as_ref().expect("present until drop")
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next record. Errors are per-poll (e.g. the broker is unreachable); the
    /// caller reports them and polls again.
    pub async fn next(&self) -> Result<Record, KafkaError> {
        let m = self.consumer().recv().await?;
        Ok(Record {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            timestamp_ms: m
                .timestamp()
                .to_millis()
                .unwrap_or_else(crate::record::now_ms),
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        })
    }

    /// Marks `partition`/`offset` processed: everything the record caused is durable.
    /// Call in offset order per partition.
    pub fn ack(&self, partition: i32, offset: i64) {
        if let Err(e) = self.consumer().store_offset(&self.topic, partition, offset) {
            // After a rebalance the partition may be someone else's: the record will be
            // processed again there (at-least-once), nothing is lost.
            tracing::debug!(topic = %self.topic, partition, offset, error = %e, "offset not stored");
        }
    }

    /// Moves the read position of `partition` back to `offset`, so that records are
    /// read again (after an aborted transaction). A partition no longer assigned is
    /// skipped: its next owner starts from the committed offset anyway.
    pub fn rewind(&self, partition: i32, offset: i64) {
        let to = rdkafka::Offset::Offset(offset);
        if let Err(e) = self.consumer().seek(
            &self.topic,
            partition,
            to,
            std::time::Duration::from_secs(10),
        ) {
            tracing::debug!(topic = %self.topic, partition, offset, error = %e, "rewind skipped");
        }
    }

    /// The group's identity, for committing offsets inside a transaction.
    pub fn group_metadata(&self) -> Option<rdkafka::consumer::ConsumerGroupMetadata> {
        self.consumer().group_metadata()
    }

    /// Commits the stored offsets now (on shutdown).
    pub fn commit(&self) {
        match self.consumer().commit_consumer_state(CommitMode::Sync) {
            Ok(())
            | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(topic = %self.topic, error = %e, "final offset commit failed"),
        }
    }

    /// Stops consuming without committing anything (exactly-once: offsets are
    /// committed inside transactions).
    pub fn close_uncommitted(self) {
        self.consumer().unsubscribe();
    }

    /// Stops consuming; pending stored offsets are committed first.
    pub fn close(self) {
        self.commit();
        self.consumer().unsubscribe();
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        // Closing a consumer leaves its group, which waits on the broker; with the
        // broker gone that can block for good. Close on a thread of its own so that
        // shutdown (and a crashed test) never hangs on it.
        if let Some(consumer) = self.consumer.take() {
            let _ = std::thread::Builder::new()
                .name("kfn-consumer-close".into())
                .spawn(move || drop(consumer));
        }
    }
}
