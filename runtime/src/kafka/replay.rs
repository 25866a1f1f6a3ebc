//! Reading a whole topic once, from the beginning to its current end: how a window
//! store is restored from its changelog before its stage starts.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaSettings;

/// Calls `apply(key, value)` for every record of `topic` up to the end it had when
/// the replay started (a tombstone has no value), and `progress(done, total)` now
/// and then. Blocking. Returns how many records were applied.
pub fn replay(
    settings: &KafkaSettings,
    topic: &str,
    mut apply: impl FnMut(&[u8], Option<&[u8]>),
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, KafkaError> {
    let timeout = Duration::from_secs(10);
    // No group: a plain assignment, so nothing is committed and no one rebalances.
    let consumer: BaseConsumer = settings
        .consumer("restore")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();

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
        let Some(message) = consumer.poll(timeout) else {
            continue;
        };
        let m = message?;
        apply(m.key().unwrap_or_default(), m.payload());
        done += 1;
        if let Some(i) = ends.iter().position(|(p, _)| *p == m.partition())
            && m.offset() + 1 >= ends[i].1
        {
            ends.swap_remove(i);
        }
        if last_report.elapsed() > Duration::from_millis(500) {
            progress(done, total);
            last_report = Instant::now();
        }
    }
    progress(done, total);
    Ok(done)
}
