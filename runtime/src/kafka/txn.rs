//! The transactional sink behind `guarantee: exactly-once`: a batch's outputs,
//! dead-letter records and state changes are produced in one Kafka transaction
//! together with the input offsets they consumed, so they become visible to
//! `read_committed` readers all at once, or (after a crash or an abort) not at all.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;

use super::KafkaSettings;
use super::sink::{Acks, KafkaProducer, Sink};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// How [`TxnSink::committer`]'s offset metadata starts.
const COMMITTER: &str = "kfn-committer:";
/// How long the broker lets a transaction stay open: when an instance dies with one
/// open, `read_committed` readers of what it wrote (the instance taking over its
/// partitions) wait this long at most. Shorter takes over faster, but a broker outage
/// longer than this expires open transactions, and the producer then has to be
/// replaced. Overridable in `kafka.properties`.
const TRANSACTION_TIMEOUT_MS: &str = "30000";

/// One binding's transactional producer on one instance. Its `transactional.id`
/// (`<group>@<instance>`) is stable across restarts of that instance, so a new
/// process fences a zombie still holding the old one; instances of one application
/// have ids of their own, and a zombie that lost its partitions to another instance
/// is fenced by the group generation sent with the offsets.
pub struct TxnSink {
    producer: KafkaProducer,
}

impl TxnSink {
    /// Creates the producer and registers its transactional id (blocking).
    pub fn new(settings: &KafkaSettings, binding: &str) -> Result<Self, KafkaError> {
        let producer = register(settings, &settings.transactional_id(binding))?;
        Ok(Self { producer })
    }

    /// A [`Sink`] over the same producer: sends made between [`TxnSink::begin`] and
    /// [`TxnSink::commit`] belong to the transaction.
    pub fn sink(&self) -> Sink {
        Sink::from_producer(self.producer.clone())
    }

    pub fn begin(&self) -> Result<(), KafkaError> {
        self.producer.begin_transaction()
    }

    /// Adds the consumed offsets (the next offset to read, per partition) and commits.
    /// Blocking.
    pub fn commit(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), KafkaError> {
        self.producer
            .send_offsets_to_transaction(offsets, group, Timeout::After(TXN_TIMEOUT))?;
        self.producer
            .commit_transaction(Timeout::After(TXN_TIMEOUT))
    }

    /// Commits a transaction that consumed nothing (only a timer's effects). Blocking.
    pub fn commit_only(&self) -> Result<(), KafkaError> {
        self.producer
            .commit_transaction(Timeout::After(TXN_TIMEOUT))
    }

    /// Whether `e` leaves the producer unusable (e.g. fenced by a newer instance with
    /// the same transactional id): then only a new process can go on.
    pub fn is_fatal(e: &KafkaError) -> bool {
        matches!(e, KafkaError::Transaction(err) if err.is_fatal())
    }

    /// What a commit records as the offsets' metadata: which instance committed them
    /// (its name and its client id), so that the partition's next owner can tell
    /// whose transactions may still be open on it (see [`fence_departed`]).
    pub fn committer(settings: &KafkaSettings) -> String {
        format!("{COMMITTER}{}\t{}", settings.instance, settings.client_id())
    }

    /// Aborts the open transaction, if any. Blocking.
    pub fn abort(&self) {
        if let Err(e) = self.producer.abort_transaction(Timeout::After(TXN_TIMEOUT)) {
            tracing::warn!(error = %e, "aborting the transaction failed");
        }
    }
}

/// A producer that has registered transactional id `id` (blocking): this aborts the
/// transaction a previous holder of the id left open and fences that holder.
fn register(settings: &KafkaSettings, id: &str) -> Result<KafkaProducer, KafkaError> {
    let mut config = settings.producer();
    config
        .set("transactional.id", id)
        .set("enable.idempotence", "true");
    if !settings.user_sets("transaction.timeout.ms") {
        config.set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
        if !settings.user_sets("message.timeout.ms") {
            // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
            config.set("message.timeout.ms", TRANSACTION_TIMEOUT_MS);
        }
    }
    let producer: KafkaProducer = config.create_with_context(Acks)?;
    producer.init_transactions(Timeout::After(TXN_TIMEOUT))?;
    Ok(producer)
}

/// Fences the transactional ids of the instances that last committed `partitions` of
/// `topic` for `binding` and are no longer members of its consumer group: an instance
/// killed with a transaction open holds every `read_committed` reader of what it
/// wrote (its outputs, the stage's changelog and repartition topic) until the broker
/// times that transaction out, which the broker checks only every 10 s after
/// `transaction.timeout.ms`. Registering its transactional id aborts that
/// transaction at once. A member still in the group is never fenced: it gave the
/// partition up in a rebalance and commits or aborts by itself. Blocking.
pub fn fence_departed(
    settings: &KafkaSettings,
    binding: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<(), KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut config = settings.consumer(binding);
    // Only reads the group's committed offsets; never joins it. Uncommitted reads do
    // not wait for the transaction this is about to abort.
    config
        .set("isolation.level", "read_uncommitted")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let mut asked = TopicPartitionList::new();
    for &p in partitions {
        asked.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(asked, Timeout::After(TXN_TIMEOUT))?;
    let mut departed: Vec<(String, String)> = committed
        .elements()
        .iter()
        .filter_map(|e| {
            let (instance, client) = e.metadata().strip_prefix(COMMITTER)?.split_once('\t')?;
            (instance != settings.instance).then(|| (instance.to_string(), client.to_string()))
        })
        .collect();
    departed.sort();
    departed.dedup();
    if departed.is_empty() {
        return Ok(());
    }
    let groups = consumer.fetch_group_list(
        Some(&settings.group_id(binding)),
        Timeout::After(TXN_TIMEOUT),
    )?;
    let members: Vec<&str> = groups
        .groups()
        .iter()
        .flat_map(|g| g.members())
        .map(|m| m.client_id())
        .collect();
    for (instance, client) in departed {
        if !members.contains(&client.as_str()) {
            // Registered is fenced: the producer has done its work and goes.
            drop(register(
                settings,
                &settings.transactional_id_of(binding, &instance),
            )?);
            tracing::info!(%binding, %instance, "fenced the transactions of a departed instance");
        }
    }
    Ok(())
}
