//! Reading a topic (or one partition of it) once, from the beginning to its current
//! end: how a window store's partition is restored from its changelog.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaSettings;

/// Calls `apply(key, value)` for every committed record of `topic` (of its partition
/// `only`, if given) up to the end it
/// had when the replay started (a tombstone has no value), and `progress(done,
/// total)` now and then (`total` counts offsets, so it includes transaction
/// markers). Blocking. Returns how many records were applied.
///
/// With transactional writers, call this after the writer's `init_transactions`:
/// that aborts a dead predecessor's open transaction, which would otherwise hold
/// `read_committed` readers below the end until it times out.
pub fn replay(
    settings: &KafkaSettings,
    topic: &str,
    only: Option<i32>,
    mut apply: impl FnMut(&[u8], Option<&[u8]>),
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, KafkaError> {
    let timeout = Duration::from_secs(10);
    // No group: a plain assignment, so nothing is committed and no one rebalances.
    let consumer: BaseConsumer = settings
        .consumer("restore")
        .set("enable.auto.commit", "false")
        // Only committed state: an aborted transaction's changes never happened.
        .set("isolation.level", "read_committed")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .filter(|p| only.is_none_or(|only| only == *p))
        .collect();
    if let Some(p) = only.filter(|_| partitions.is_empty()) {
        return Err(KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::UnknownPartition,
        ))
        .inspect_err(|_| tracing::warn!(%topic, partition = p, "no such changelog partition"));
    }

    let mut ends = Vec::new();
    let mut total = 0u64;
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        if high > low {
            total += (high - low) as u64;
            ends.push((p, high));
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment)?;

    let (mut done, mut last_report) = (0u64, Instant::now());
    progress(0, total);
    while !ends.is_empty() {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let m = message?;
            apply(m.key().unwrap_or_default(), m.payload());
            done += 1;
            if done % 1_000 != 0 {
                continue;
            }
        }
        // The end is judged by position, not by the last record seen: transaction
        // markers and aborted records take offsets but are never delivered.
        let position = consumer.position()?;
        ends.retain(
            |(p, high)| match position.find_partition(topic, *p).map(|e| e.offset()) {
                Some(Offset::Offset(at)) => at < *high,
                _ => true,
            },
        );
        drop(position); // before the consumer: a live list can hang its drop
        if last_report.elapsed() > Duration::from_millis(500) {
            progress(done, total);
            last_report = Instant::now();
        }
    }
    progress(done, total);
    Ok(done)
}
