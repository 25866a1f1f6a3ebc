//! The topics an app needs, and creating them on a real cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{self, Config};
use crate::kafka::{KafkaSettings, Sink};
use crate::pipeline::repartition_topic;
use crate::window::changelog;

/// The internal topics of stores: repartition topics and (compacted) changelogs.
pub(super) fn internal(config: &Config) -> Vec<String> {
    let app = &config.kafka.application_id;
    let mut t = Vec::new();
    for (store, a) in &config.analytics {
        if a.repartitions() {
            t.push(repartition_topic(app, store));
        }
        t.push(changelog::topic(app, store));
    }
    t
}

/// Creates the app's missing topics on a real cluster, planned from one read of the
/// cluster's topics and created in one CreateTopics request (each request costs the
/// broker a metadata commit, ~130 ms on Kafka 4.4 here; one per topic group was most
/// of a stage's start-up):
/// - a missing input gets `partitions_of_new_inputs` (create inputs beforehand to
///   choose);
/// - what a binding or stage writes (`out`, its dead-letter topic) gets as many
///   partitions as its input, so that an output is as parallel as what feeds it;
/// - each store's repartition topic is partitioned like the store's input, and its
///   (compacted) changelog like what the store aggregates: partition `p` of the
///   changelog is the state of partition `p`.
///
/// A topic that cannot be created is logged (the broker may auto-create, or an
/// operator manages topics). A changelog that is missing afterwards, or partitioned
/// otherwise than what its store aggregates, is an error: its state would land on
/// the wrong instances.
pub(super) async fn create_missing(
    settings: &KafkaSettings,
    sink: &Sink,
    config: &Config,
    partitions_of_new_inputs: i32,
) -> anyhow::Result<()> {
    let read = {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || sink.topic_partitions(Duration::from_secs(10))).await?
    };
    let existing = match read {
        Ok(existing) => existing,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cluster's topics; not creating topics");
            return check_changelogs(sink, config, &BTreeMap::new()).await;
        }
    };
    let mut plan = Plan {
        existing: &existing,
        new: BTreeMap::new(),
    };
    let mut follows: Vec<(Option<&String>, Vec<&String>)> = Vec::new();
    for b in config.bindings.values() {
        let mut written: Vec<&String> = b.output.iter().collect();
        if b.kind != config::BindingKind::Supplier {
            written.push(&b.dlq);
        }
        follows.push((b.input.as_ref(), written));
    }
    for a in config.analytics.values() {
        let mut written: Vec<&String> = a.output.iter().collect();
        written.push(&a.dlq);
        follows.push((Some(&a.input), written));
    }
    // Inputs first: a supplier's output is an input elsewhere, and an input keeps
    // the partition count chosen for inputs.
    for input in follows.iter().filter_map(|(input, _)| *input) {
        plan.want(input, partitions_of_new_inputs, false);
    }
    for (input, written) in &follows {
        let partitions = input
            .and_then(|i| plan.partitions(i))
            .unwrap_or(partitions_of_new_inputs);
        for topic in written {
            plan.want(topic, partitions, false);
        }
    }
    let app = &config.kafka.application_id;
    let mut wanted_logs = BTreeMap::new();
    for (store, a) in &config.analytics {
        let input = plan
            .partitions(&a.input)
            .unwrap_or(partitions_of_new_inputs);
        let aggregated = if a.repartitions() {
            let t = repartition_topic(app, store);
            plan.want(&t, input, false);
            t
        } else {
            a.input.clone()
        };
        let wanted = plan.partitions(&aggregated).unwrap_or(input);
        let log = changelog::topic(app, store);
        plan.want(&log, wanted, true);
        wanted_logs.insert(log, (store.as_str(), aggregated, wanted));
    }
    create_topics(settings, &plan.new).await;
    check_changelogs(sink, config, &wanted_logs).await
}

/// Topics to create (name → partitions, compacted), given those that exist.
struct Plan<'a> {
    existing: &'a BTreeMap<String, i32>,
    new: BTreeMap<String, (i32, bool)>,
}

impl Plan<'_> {
    /// The partitions `topic` has, or will have once created.
    fn partitions(&self, topic: &str) -> Option<i32> {
        let planned = || self.new.get(topic).map(|(n, _)| *n);
        self.existing.get(topic).copied().or_else(planned)
    }

    /// `topic` with `partitions`, unless it exists or is planned already.
    fn want(&mut self, topic: &str, partitions: i32, compact: bool) {
        if !self.existing.contains_key(topic) {
            self.new
                .entry(topic.to_string())
                .or_insert((partitions, compact));
        }
    }
}

/// Each store's changelog exists and is partitioned like what the store aggregates
/// (`wanted`: changelog → (store, aggregated topic, its partitions)).
async fn check_changelogs(
    sink: &Sink,
    config: &Config,
    wanted: &BTreeMap<String, (&str, String, i32)>,
) -> anyhow::Result<()> {
    let app = &config.kafka.application_id;
    for store in config.analytics.keys() {
        let log = changelog::topic(app, store);
        let has = partitions(sink, &log).await?;
        let Some((store, aggregated, wanted)) = wanted.get(&log) else {
            continue;
        };
        anyhow::ensure!(
            has == *wanted,
            "store {store}: its changelog {log} has {has} partitions but {aggregated} has {wanted}; \
             state partitions must line up with input partitions. Delete {log} \
             (the store then starts empty) or give {aggregated} {has} partitions"
        );
    }
    Ok(())
}

/// The partition count of `topic`, which must exist by now.
async fn partitions(sink: &Sink, topic: &str) -> anyhow::Result<i32> {
    let (sink, t) = (sink.clone(), topic.to_string());
    let count =
        tokio::task::spawn_blocking(move || sink.partition_count(&t, Duration::from_secs(10)))
            .await??;
    count.ok_or_else(|| anyhow::anyhow!("topic {topic} does not exist and could not be created"))
}

pub(super) fn topics(config: &Config) -> Vec<String> {
    let mut t = std::collections::BTreeSet::new();
    for b in config.bindings.values() {
        t.extend(b.input.iter().chain(&b.output).cloned());
        if b.kind != config::BindingKind::Supplier {
            t.insert(b.dlq.clone());
        }
    }
    for a in config.analytics.values() {
        t.insert(a.input.clone());
        t.insert(a.dlq.clone());
        t.extend(a.output.iter().cloned());
    }
    t.into_iter().collect()
}

/// Creates `topics` (name → partitions, compacted) in one request; an existing topic
/// is fine, and a failure is only logged.
async fn create_topics(settings: &KafkaSettings, topics: &BTreeMap<String, (i32, bool)>) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    if topics.is_empty() {
        return;
    }
    let admin: AdminClient<DefaultClientContext> = match settings.producer().create() {
        Ok(a) => a,
        Err(e) => {
            return tracing::warn!(error = %e, "cannot create an admin client; not creating topics");
        }
    };
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, &(partitions, compact))| {
            let topic = NewTopic::new(t, partitions, TopicReplication::Fixed(-1));
            if compact {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    match tokio::time::timeout(Duration::from_secs(15), admin.create_topics(&new, &opts)).await {
        Ok(Ok(results)) => {
            for r in results {
                match r {
                    Ok(topic) => tracing::info!(%topic, "topic created"),
                    Err((topic, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                        tracing::debug!(%topic, "topic exists")
                    }
                    Err((topic, code)) => {
                        tracing::warn!(%topic, error = %code, "topic not created")
                    }
                }
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "creating topics failed"),
        Err(_) => tracing::warn!("creating topics timed out"),
    }
}
