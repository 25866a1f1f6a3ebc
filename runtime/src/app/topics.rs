//! The topics an app needs, and creating them on a real cluster.

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

/// Creates each store's internal topics on a real cluster, partitioned like the
/// topic they follow: the repartition topic like the input, the changelog like
/// what the store aggregates (partition `p` of the changelog is the state of
/// partition `p`). An existing changelog partitioned otherwise is an error: its state
/// would land on the wrong instances.
pub(super) async fn create_internal(
    settings: &KafkaSettings,
    sink: &Sink,
    config: &Config,
) -> anyhow::Result<()> {
    let app = &config.kafka.application_id;
    for (store, a) in &config.analytics {
        let input = partitions(sink, &a.input).await?;
        let aggregated = if a.repartitions() {
            let t = repartition_topic(app, store);
            create_topics(settings, std::slice::from_ref(&t), input, false).await;
            t
        } else {
            a.input.clone()
        };
        let wanted = partitions(sink, &aggregated).await?;
        let log = changelog::topic(app, store);
        create_topics(settings, std::slice::from_ref(&log), wanted, true).await;
        let has = partitions(sink, &log).await?;
        anyhow::ensure!(
            has == wanted,
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

/// Creates the app's missing topics on a real cluster: a missing input with
/// `partitions` (create inputs beforehand to choose), and what a binding or stage
/// writes (`out`, its dead-letter topic) with as many partitions as its input has, so
/// that an output is as parallel as what feeds it.
pub(super) async fn create_app_topics(
    settings: &KafkaSettings,
    sink: &Sink,
    config: &Config,
    partitions_of_new_inputs: i32,
) {
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
    // Inputs first (a supplier's output is an input elsewhere).
    // Each once: Kafka refuses a CreateTopics request naming a topic twice.
    let inputs: std::collections::BTreeSet<String> = follows
        .iter()
        .filter_map(|(input, _)| input.map(|i| i.to_string()))
        .collect();
    let inputs: Vec<String> = inputs.into_iter().collect();
    create_topics(settings, &inputs, partitions_of_new_inputs, false).await;
    for (input, written) in follows {
        let partitions = match input {
            Some(input) => partitions(sink, input)
                .await
                .unwrap_or(partitions_of_new_inputs),
            None => partitions_of_new_inputs,
        };
        let written: std::collections::BTreeSet<String> = written.into_iter().cloned().collect();
        let written: Vec<String> = written.into_iter().collect();
        create_topics(settings, &written, partitions, false).await;
    }
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

/// Creates missing topics on a real cluster; an existing topic is fine, and a failure
/// is only logged (the broker may auto-create, or an operator manages topics).
pub(super) async fn create_topics(
    settings: &KafkaSettings,
    topics: &[String],
    partitions: i32,
    compact: bool,
) {
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
        .map(|t| {
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
