//! The sink: one producer shared by every binding. `send` resolves only once the
//! broker has acknowledged the record, retrying transient failures, so callers can
//! store their input offset afterwards.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::KafkaSettings;
use crate::record::{Output, Record};

/// Retry delays for a send that failed (e.g. the broker is away); the last repeats.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

#[derive(Clone)]
pub struct Sink {
    producer: FutureProducer,
    /// For saying why the cluster is unreachable ([`Sink::ping`]).
    settings: Option<std::sync::Arc<KafkaSettings>>,
}

impl Sink {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: settings.producer().create()?,
            settings: Some(std::sync::Arc::new(settings.clone())),
        })
    }

    pub(super) fn from_producer(producer: FutureProducer) -> Self {
        Self {
            producer,
            settings: None,
        }
    }

    pub(super) fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Sends `out` to `topic` once; resolves with (partition, offset) when
    /// acknowledged.
    pub async fn send_once(&self, topic: &str, out: &Output) -> Result<(i32, i64), KafkaError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(&out.value);
        if let Some(key) = &out.key {
            record = record.key(key);
        }
        if let Some(partition) = out.partition {
            record = record.partition(partition);
        }
        if !out.headers.is_empty() {
            let hs = out.headers.iter().fold(OwnedHeaders::new(), |hs, (k, v)| {
                hs.insert(Header {
                    key: k,
                    value: Some(v),
                })
            });
            record = record.headers(hs);
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(5)))
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| e)
    }

    /// Sends `out` (to its own topic, else `default_topic`) and retries until the
    /// broker acknowledges it. Only non-retriable errors (e.g. record too large) are
    /// returned.
    pub async fn send(&self, default_topic: &str, out: &Output) -> Result<(i32, i64), KafkaError> {
        let topic = out.topic.as_deref().unwrap_or(default_topic);
        let mut attempt = 0;
        loop {
            match self.send_once(topic, out).await {
                Ok(at) => return Ok(at),
                Err(e) if is_permanent(&e) => return Err(e),
                Err(e) => {
                    let delay = BACKOFF[attempt.min(BACKOFF.len() - 1)];
                    if attempt == 0 {
                        tracing::warn!(%topic, error = %e, "send failed, retrying until the broker accepts it");
                    }
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Asks the cluster for metadata: is it reachable? Blocking. When it is not, the
    /// error says why where librdkafka knows (wrong credentials, a certificate it does
    /// not trust), not just that the metadata request failed.
    pub fn ping(&self, timeout: Duration) -> Result<(), String> {
        let result = self
            .producer
            .client()
            .fetch_metadata(None, Timeout::After(timeout));
        match (result, &self.settings) {
            (Ok(_), _) => Ok(()),
            (Err(e), Some(settings)) => Err(settings
                .diagnose(timeout)
                .unwrap_or_else(|| settings.redact(&e.to_string()))),
            (Err(e), None) => Err(e.to_string()),
        }
    }

    /// Sends a tombstone (a key with no value) to `partition` of `topic`, retrying
    /// like [`Sink::send`].
    pub async fn send_tombstone(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
    ) -> Result<(i32, i64), KafkaError> {
        let mut attempt = 0;
        loop {
            let record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).key(key).partition(partition);
            match self
                .producer
                .send(record, Timeout::After(Duration::from_secs(5)))
                .await
            {
                Ok(d) => return Ok((d.partition, d.offset)),
                Err((e, _)) if is_permanent(&e) => return Err(e),
                Err(_) => {
                    tokio::time::sleep(BACKOFF[attempt.min(BACKOFF.len() - 1)]).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Waits for everything queued to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "producer flush incomplete");
        }
    }
}

fn is_permanent(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidTopic
                | C::TopicAuthorizationFailed
                | C::InvalidMessage
        )
    )
}

/// The dead-letter record for `record`: its key, value and headers, plus headers
/// saying where it came from and why it failed.
pub fn dead_letter(
    record: &Record,
    binding: &str,
    function: Option<&str>,
    error: &str,
    attempts: u32,
) -> Output {
    let mut headers = record.headers.clone();
    let mut add = |k: &str, v: String| headers.push((k.to_string(), v.into_bytes()));
    add("kfn-error", error.to_string());
    add("kfn-binding", binding.to_string());
    if let Some(f) = function {
        add("kfn-function", f.to_string());
    }
    add("kfn-source-topic", record.topic.clone());
    add("kfn-source-partition", record.partition.to_string());
    add("kfn-source-offset", record.offset.to_string());
    add("kfn-attempts", attempts.to_string());
    add("kfn-failed-at", crate::record::now_ms().to_string());
    Output {
        topic: None,
        partition: None,
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
    }
}
