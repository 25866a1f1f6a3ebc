//! A Kafka source: one consumer-group member reading one topic, and which of the
//! topic's partitions it owns right now.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use tokio::sync::watch;

use super::KafkaSettings;
use crate::record::Record;

/// The partitions a source owns, each under a *lease*: a number that is new every
/// time the group assigns the partition to this member. Several kfn instances with
/// one application id share a topic this way; when a partition moves away and maybe
/// back, records read under the old lease are stale: they are neither processed nor
/// acknowledged, because the partition's next owner reads them again from the
/// committed offset.
pub struct Ownership {
    topic: String,
    inner: Mutex<Owned>,
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Owned {
    last_lease: u64,
    leases: BTreeMap<i32, u64>,
}

impl Ownership {
    fn new(topic: &str) -> Arc<Self> {
        Arc::new(Self {
            topic: topic.to_string(),
            inner: Mutex::default(),
            changed: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Owned> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current lease of `partition`, if this member owns it.
    pub fn lease(&self, partition: i32) -> Option<u64> {
        self.lock().leases.get(&partition).copied()
    }

    /// Whether `record` was read under its partition's current lease.
    pub fn is_current(&self, record: &Record) -> bool {
        self.lease(record.partition) == Some(record.lease)
    }

    /// Keeps the records read under their partition's current lease (one lock for
    /// them all: the record loop checks what it holds before every batch).
    pub fn retain_current(&self, records: &mut std::collections::VecDeque<Record>) {
        if records.is_empty() {
            return;
        }
        let owned = self.lock();
        records.retain(|r| owned.leases.get(&r.partition) == Some(&r.lease));
    }

    /// Every owned partition with its lease.
    pub fn owned(&self) -> Vec<(i32, u64)> {
        self.lock().leases.iter().map(|(p, l)| (*p, *l)).collect()
    }

    /// Fires on every assignment change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(&self, rebalance: &Rebalance<'_>) {
        let (list, assign) = match rebalance {
            Rebalance::Assign(list) => (list, true),
            Rebalance::Revoke(list) => (list, false),
            Rebalance::Error(e) => {
                return tracing::warn!(topic = %self.topic, error = %e, "rebalance failed");
            }
        };
        let partitions: Vec<i32> = list
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        {
            let mut owned = self.lock();
            for p in &partitions {
                if assign {
                    owned.last_lease += 1;
                    let lease = owned.last_lease;
                    owned.leases.insert(*p, lease);
                } else {
                    owned.leases.remove(p);
                }
            }
        }
        tracing::info!(topic = %self.topic, ?partitions, "{}", if assign { "partitions assigned" } else { "partitions revoked" });
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Keeps [`Ownership`] in step with the group's rebalances. The callbacks run inside
/// `recv`, on the task that reads records, so a record is always tagged with the
/// lease its partition had when it was delivered.
pub struct SourceContext {
    ownership: Arc<Ownership>,
    /// An exactly-once source's settings and binding: on an assignment it fences the
    /// departed previous owners of the new partitions (see [`super::txn::fence_departed`]).
    fence: Option<(KafkaSettings, String)>,
}

impl SourceContext {
    /// Fences in the background: reads of the new partitions wait for the departed
    /// owner's transaction anyway, and the fence is what ends that wait early.
    fn fence(&self, rebalance: &Rebalance<'_>) {
        let (Some((settings, binding)), Rebalance::Assign(list)) = (&self.fence, rebalance) else {
            return;
        };
        let topic = self.ownership.topic.clone();
        let partitions: Vec<i32> = list
            .elements_for_topic(&topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        if partitions.is_empty() {
            return;
        }
        let (settings, binding) = (settings.clone(), binding.clone());
        std::thread::spawn(move || {
            if let Err(e) = super::txn::fence_departed(&settings, &binding, &topic, &partitions) {
                // Without the fence, the broker times the transaction out by itself.
                tracing::warn!(%binding, error = %e, "cannot fence the previous owners of new partitions");
            }
        });
    }
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Revoke(_)) {
            self.ownership.update(rebalance);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Revoke(_)) {
            self.ownership.update(rebalance);
            self.fence(rebalance);
        }
    }
}

/// Reads records; [`Source::ack`] marks one done so its offset can be committed.
pub struct Source {
    /// Always `Some` until dropped.
    consumer: Option<StreamConsumer<SourceContext>>,
    topic: String,
    ownership: Arc<Ownership>,
}

impl Source {
    pub fn new(settings: &KafkaSettings, binding: &str, topic: &str) -> Result<Self, KafkaError> {
        Self::with_config(settings.consumer(binding), topic, None)
    }

    /// A source for an exactly-once binding (see [`KafkaSettings::transactional_consumer`]).
    pub fn transactional(
        settings: &KafkaSettings,
        binding: &str,
        topic: &str,
    ) -> Result<Self, KafkaError> {
        let fence = (!settings.embedded).then(|| (settings.clone(), binding.to_string()));
        Self::with_config(settings.transactional_consumer(binding), topic, fence)
    }

    fn with_config(
        config: rdkafka::ClientConfig,
        topic: &str,
        fence: Option<(KafkaSettings, String)>,
    ) -> Result<Self, KafkaError> {
        let ownership = Ownership::new(topic);
        let consumer: StreamConsumer<SourceContext> =
            config.create_with_context(SourceContext {
                ownership: ownership.clone(),
                fence,
            })?;
        consumer.subscribe(&[topic])?;
        Ok(Self {
            consumer: Some(consumer),
            topic: topic.to_string(),
            ownership,
        })
    }

    fn consumer(&self) -> &StreamConsumer<SourceContext> {
        self.consumer.as_ref().expect("present until drop")
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether `record` was read under its partition's current lease.
    pub fn is_current(&self, record: &Record) -> bool {
        self.ownership.is_current(record)
    }

    /// Drops from `records` those read under a lease that has ended.
    pub fn retain_current(&self, records: &mut std::collections::VecDeque<Record>) {
        self.ownership.retain_current(records);
    }

    /// Which partitions this source owns, shared with whoever keeps per-partition
    /// state (a window store).
    pub fn ownership(&self) -> Arc<Ownership> {
        self.ownership.clone()
    }

    /// The next record. Errors are per-poll (e.g. the broker is unreachable); the
    /// caller reports them and polls again.
    pub async fn next(&self) -> Result<Record, KafkaError> {
        let m = self.consumer().recv().await?;
        Ok(self.record(&m))
    }

    /// Appends to `into` the records already fetched, until it holds `max`, without
    /// waiting (one stream for the lot: a `recv` per record registers and drops a
    /// waker slot each time).
    pub fn take_ready(&self, into: &mut std::collections::VecDeque<Record>, max: usize) {
        use futures::{FutureExt, StreamExt};
        let mut stream = self.consumer().stream();
        while into.len() < max {
            match stream.next().now_or_never() {
                Some(Some(Ok(m))) => into.push_back(self.record(&m)),
                _ => break,
            }
        }
    }

    fn record(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Record {
        Record {
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
            topic: self.topic.clone(),
            partition: m.partition(),
            offset: m.offset(),
            lease: self.ownership.lease(m.partition()).unwrap_or(0),
        }
    }

    /// Marks records processed: everything they caused is durable. `acks` are
    /// (partition, offset, lease) in offset order per partition; only the last of each
    /// partition is stored (one call for the whole batch). A stale lease is ignored:
    /// the partition moved since, and storing the offset could skip records its new
    /// lease has not processed yet.
    pub fn ack(&self, acks: &[(i32, i64, u64)]) {
        let mut last: BTreeMap<i32, (i64, u64)> = BTreeMap::new();
        for &(partition, offset, lease) in acks {
            last.insert(partition, (offset, lease));
        }
        let mut offsets = rdkafka::TopicPartitionList::with_capacity(last.len());
        {
            let owned = self.ownership.lock();
            for (partition, (offset, lease)) in last {
                if owned.leases.get(&partition) != Some(&lease) {
                    tracing::debug!(topic = %self.topic, partition, offset, "stale ack ignored");
                    continue;
                }
                // The stored offset is the next one to read.
                let _ = offsets.add_partition_offset(
                    &self.topic,
                    partition,
                    rdkafka::Offset::Offset(offset + 1),
                );
            }
        }
        if offsets.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer().store_offsets(&offsets) {
            // After a rebalance the partition may be someone else's: the record will be
            // processed again there (at-least-once), nothing is lost.
            tracing::debug!(topic = %self.topic, error = %e, "offsets not stored");
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

    /// The owned partitions with records still to read: the last fetch said the
    /// partition ends beyond what was handed out. Such a partition is not idle, however
    /// long ago its last record arrived. A partition nothing was read from since it
    /// was assigned is not known to lag.
    /// (`lag` is what [`Source::lag`] gave.)
    pub fn lagging(lag: &[(i32, i64)]) -> Vec<i32> {
        lag.iter()
            .filter_map(|&(p, lag)| (lag > 0).then_some(p))
            .collect()
    }

    /// Per owned partition, how many records the last fetch said lie beyond the read
    /// position (`kfn_consumer_lag_records`); a partition whose position is not known
    /// yet counts as lagging by one, one whose end is not known is left out.
    pub fn lag(&self) -> Vec<(i32, i64)> {
        let owned = self.ownership.owned();
        if owned.is_empty() {
            return Vec::new();
        }
        let Ok(topic) = std::ffi::CString::new(self.topic.as_str()) else {
            return Vec::new();
        };
        let positions = match self.consumer().position() {
            Ok(p) => p,
            Err(_) => return owned.iter().map(|(p, _)| (*p, 1)).collect(),
        };
        let client = self.consumer().client().native_ptr();
        let mut lagging = Vec::new();
        for (partition, _) in owned {
            let (mut low, mut high) = (-1i64, -1i64);
            // SAFETY: `client` is this consumer's live handle (borrowed from `self` for
            // the whole call), `topic` is a NUL-terminated string that outlives the
            // call, and `low`/`high` are valid for writes. The call only reads the
            // offsets librdkafka cached from its last fetch response.
            let err = unsafe {
                rdkafka::bindings::rd_kafka_get_watermark_offsets(
                    client,
                    topic.as_ptr(),
                    partition,
                    &mut low,
                    &mut high,
                )
            };
            if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                continue;
            }
            let at = positions
                .find_partition(&self.topic, partition)
                .map(|e| e.offset());
            if let Some(rdkafka::Offset::Offset(at)) = at {
                lagging.push((partition, (high - at).max(0)));
            }
        }
        drop(positions); // before the consumer: a live list can hang its drop
        lagging
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
