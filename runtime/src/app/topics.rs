//! The topics an app needs, and creating them on a real cluster.

use std::time::Duration;

use crate::config::{self, Config};
use crate::kafka::KafkaSettings;
use crate::window::changelog;

use super::PARTITIONS;

/// Every topic the config reads or writes, including dead-letter topics; the
/// changelog topics of stores are returned apart, because they are compacted.
pub(super) fn changelogs(config: &Config) -> Vec<String> {
    config
        .analytics
        .keys()
        .map(|store| changelog::topic(&config.kafka.application_id, store))
        .collect()
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
pub(super) async fn create_topics(settings: &KafkaSettings, topics: &[String], compact: bool) {
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
            let topic = NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(-1));
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
