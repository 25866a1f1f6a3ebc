//! `kfn bench --contender passthrough`: the yardstick of the real-broker benchmark, a
//! raw consume → produce with at-least-once offsets and nothing else in the way.
//!
//! One `BaseConsumer` polled in a loop hands each record to a `ThreadedProducer`
//! (no future per record); the producer's delivery callback records, per input
//! partition, the highest input offset whose copy Kafka acknowledged, and the loop
//! stores those offsets every 100 ms for librdkafka's auto commit (every 1 s). Records
//! go to the output partition with their input partition's number, so one input
//! partition's copies are acknowledged in order (idempotent producer): the highest
//! acknowledged offset is also the highest one below which everything is durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Input partitions the passthrough can track.
const MAX_PARTITIONS: usize = 1024;

/// Per input partition, the highest input offset whose copy is acknowledged (-1: none).
struct Acked {
    offsets: Vec<AtomicI64>,
    failed: AtomicI64,
}

struct Acks(Arc<Acked>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    /// `partition << 48 | offset` of the input record.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        match result {
            Ok(_) => {
                let (partition, offset) = (opaque >> 48, (opaque & ((1 << 48) - 1)) as i64);
                self.0.offsets[partition].fetch_max(offset, Ordering::Relaxed);
            }
            Err(_) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Copies `input` to `output` in consumer group `group` until killed.
pub fn run(brokers: &str, input: &str, output: &str, group: &str) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // What kfn's consumers set too: librdkafka's default (1 s) leaves a consumer that
        // drains its queue quickly idle for most of every second.
        .set("fetch.queue.backoff.ms", "20")
        .create()
        .context("passthrough: creating the consumer")?;
    consumer.subscribe(&[input])?;
    let acked = Arc::new(Acked {
        offsets: (0..MAX_PARTITIONS).map(|_| AtomicI64::new(-1)).collect(),
        failed: AtomicI64::new(0),
    });
    // The producer settings kfn uses on a real cluster (kafka::KafkaSettings::producer).
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Acks(acked.clone()))
        .context("passthrough: creating the producer")?;
    let mut stored = vec![-1i64; MAX_PARTITIONS];
    let mut last_store = Instant::now();
    loop {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            let partition = m.partition();
            anyhow::ensure!(
                (partition as usize) < MAX_PARTITIONS,
                "passthrough: input partition {partition} (at most {MAX_PARTITIONS})"
            );
            let opaque = ((partition as usize) << 48) | m.offset() as usize;
            let mut record = BaseRecord::with_opaque_to(output, opaque)
                .partition(partition)
                .payload(m.payload().unwrap_or_default());
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            if let Some(ts) = m.timestamp().to_millis() {
                record = record.timestamp(ts);
            }
            super::send_waiting(&producer, record).context("passthrough: producing")?;
        }
        if last_store.elapsed() >= Duration::from_millis(100) {
            last_store = Instant::now();
            anyhow::ensure!(
                acked.failed.load(Ordering::Relaxed) == 0,
                "passthrough: records were not delivered"
            );
            let mut tpl = TopicPartitionList::new();
            for (p, at) in stored.iter_mut().enumerate() {
                let now = acked.offsets[p].load(Ordering::Relaxed);
                if now > *at {
                    *at = now;
                    tpl.add_partition_offset(input, p as i32, Offset::Offset(now + 1))?;
                }
            }
            if tpl.count() > 0 {
                // A partition revoked meanwhile refuses its offset: its next owner
                // reads those records again (at-least-once).
                let _ = consumer.store_offsets(&tpl);
            }
        }
    }
}
