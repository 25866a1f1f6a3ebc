//! What the cluster knows: how many partitions a topic has, and who owns which
//! partition (the members of a consumer group and their assignments, as the group
//! coordinator describes them). Every kfn client id carries its
//! instance's HTTP address (see [`super::advertised_in`]), so this is how a store
//! query finds the instances holding the rest of the answer: no registry of its own,
//! only Kafka's group membership.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use super::{Sink, advertised_in};

/// How many partitions `topic` has, asked with a short-lived client of its own.
/// Blocking.
pub fn partition_count(settings: &super::KafkaSettings, topic: &str) -> Result<usize, KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = settings.consumer("metadata").create()?;
    let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    if n == 0 {
        return Err(KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
    }
    Ok(n)
}

/// Where a repartitioned stage's input stands, as one probe saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstream {
    /// The input partitions with records the step before has not committed yet:
    /// more than one offset between its committed offset and the end (one is not
    /// counted: a transactional writer's commit marker sits there after its last
    /// record).
    pub behind: std::collections::BTreeSet<i32>,
    /// Per partition of the repartition topic, where its committed records end (the
    /// last stable offset), read *after* `behind`: a reader past it has read every
    /// record of every input partition not in `behind`.
    pub ends: BTreeMap<i32, i64>,
    /// When the ends were asked for: a reader's lag sampled before then says nothing
    /// about them.
    pub at: Option<std::time::Instant>,
}

/// [`Upstream`] of a stage whose step `group_binding` reads `input` and writes
/// `repartition`. Blocking.
pub fn upstream(
    settings: &super::KafkaSettings,
    group_binding: &str,
    input: &str,
    repartition: &str,
) -> Result<Upstream, KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let timeout = Duration::from_secs(5);
    // A client in the group's name that never joins it: it only reads its offsets.
    // It reads committed records only, so the ends it asks the broker for are the
    // last stable offsets.
    let client: BaseConsumer = settings
        .consumer(group_binding)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let partitions_of = |topic: &str| -> Result<Vec<i32>, KafkaError> {
        let metadata = client.fetch_metadata(Some(topic), timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect())
    };
    let partitions = partitions_of(input)?;
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition(input, *p);
    }
    let committed = client.committed_offsets(list, timeout)?;
    let mut up = Upstream::default();
    for p in partitions {
        let (low, high) = client.fetch_watermarks(input, p, timeout)?;
        let at = match committed.find_partition(input, p).map(|e| e.offset()) {
            Some(Offset::Offset(at)) => at,
            _ => low,
        };
        if high - at > 1 {
            up.behind.insert(p);
        }
    }
    drop(committed); // before the client: a live list can hang its drop
    up.at = Some(std::time::Instant::now());
    for p in partitions_of(repartition)? {
        let (_, end) = client.fetch_watermarks(repartition, p, timeout)?;
        up.ends.insert(p, end);
    }
    Ok(up)
}

impl Sink {
    /// How many partitions `topic` has (`None`: it does not exist). Blocking.
    pub fn partition_count(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<i32>, KafkaError> {
        let metadata = self
            .producer()
            .client()
            .fetch_metadata(Some(topic), timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|n| *n > 0))
    }

    /// Every topic of the cluster with its partition count (one metadata request for
    /// all of them: asking for a missing topic by name could auto-create it). Blocking.
    pub fn topic_partitions(&self, timeout: Duration) -> Result<BTreeMap<String, i32>, KafkaError> {
        let metadata = self.producer().client().fetch_metadata(None, timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// The advertised HTTP address of the owner of each assigned partition of
    /// `topic` in `group`. Blocking.
    pub fn partition_owners(
        &self,
        group: &str,
        topic: &str,
        timeout: Duration,
    ) -> Result<BTreeMap<i32, String>, KafkaError> {
        let list = self
            .producer()
            .client()
            .fetch_group_list(Some(group), timeout)?;
        let mut owners = BTreeMap::new();
        for g in list.groups().iter().filter(|g| g.name() == group) {
            for member in g.members() {
                let (Some(addr), Some(assignment)) =
                    (advertised_in(member.client_id()), member.assignment())
                else {
                    continue;
                };
                for p in assigned(assignment, topic).unwrap_or_default() {
                    owners.insert(p, addr.to_string());
                }
            }
        }
        Ok(owners)
    }
}

/// The partitions of `topic` in a consumer-protocol assignment: `version: i16`, then
/// `[topic: string, [partition: i32]]` (user data follows; unused).
fn assigned(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut r = Reader(bytes);
    r.take(2)?;
    let mut out = Vec::new();
    for _ in 0..r.i32()? {
        let len = usize::try_from(i16::from_be_bytes(r.take(2)?.try_into().ok()?)).ok()?;
        let name = r.take(len)?;
        for _ in 0..r.i32()? {
            let p = r.i32()?;
            if name == topic.as_bytes() {
                out.push(p);
            }
        }
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = vec![0, 1];
        b.extend((topics.len() as i32).to_be_bytes());
        for (name, parts) in topics {
            b.extend((name.len() as i16).to_be_bytes());
            b.extend(name.as_bytes());
            b.extend((parts.len() as i32).to_be_bytes());
            for p in *parts {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // no user data
        b
    }

    #[test]
    fn reads_the_partitions_of_one_topic() {
        let bytes = assignment(&[("other", &[0, 1]), ("in", &[2, 5])]);
        assert_eq!(assigned(&bytes, "in"), Some(vec![2, 5]));
        assert_eq!(assigned(&bytes, "none"), Some(vec![]));
        assert_eq!(assigned(&bytes[..9], "in"), None, "truncated");
    }
}
