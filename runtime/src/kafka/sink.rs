//! The sink: one producer shared by every binding. `send` resolves only once the
//! broker has acknowledged the record, retrying transient failures, so callers can
//! store their input offset afterwards.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
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

    /// Hands `out` to the producer now, so it is on its way while the caller goes on,
    /// and returns a future of its acknowledgement: (partition, offset). Transient
    /// failures (the broker is away) are retried until the broker accepts it; only
    /// permanent errors (e.g. the record is too large) come back.
    pub fn deliver(
        &self,
        topic: String,
        out: Output,
    ) -> impl Future<Output = Result<(i32, i64), KafkaError>> + Send + 'static {
        self.deliver_with(topic, out, true)
    }

    /// Like [`Sink::deliver`] but without retries, for a transaction: librdkafka
    /// retries inside it, and what comes back is final for this transaction (only a
    /// full local queue is waited out).
    pub fn deliver_once(
        &self,
        topic: String,
        out: Output,
    ) -> impl Future<Output = Result<(i32, i64), KafkaError>> + Send + 'static {
        self.deliver_with(topic, out, false)
    }

    fn deliver_with(
        &self,
        topic: String,
        out: Output,
        retry: bool,
    ) -> impl Future<Output = Result<(i32, i64), KafkaError>> + Send + 'static {
        let first = self.enqueue(&topic, &out);
        let sink = self.clone();
        async move {
            let (mut pending, mut attempt) = (first, 0usize);
            loop {
                match acknowledged(pending).await {
                    Err(e) if is_queue_full(&e) => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(e) if retry && !is_permanent(&e) => {
                        if attempt == 0 {
                            tracing::warn!(%topic, error = %e, "send failed, retrying until the broker accepts it");
                        }
                        tokio::time::sleep(BACKOFF[attempt.min(BACKOFF.len() - 1)]).await;
                        attempt += 1;
                    }
                    done => return done,
                }
                pending = sink.enqueue(&topic, &out);
            }
        }
    }

    /// Sends `out` (to its own topic, else `default_topic`) and waits until the broker
    /// acknowledges it, retrying like [`Sink::deliver`].
    pub async fn send(&self, default_topic: &str, out: &Output) -> Result<(i32, i64), KafkaError> {
        let topic = out.topic.as_deref().unwrap_or(default_topic).to_string();
        self.deliver(topic, out.clone()).await
    }

    /// Queues `out` in the producer.
    fn enqueue(&self, topic: &str, out: &Output) -> Result<DeliveryFuture, KafkaError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if !out.tombstone {
            record = record.payload(&out.value);
        }
        if let Some(key) = &out.key {
            record = record.key(key);
        }
        if let Some(partition) = out.partition {
            record = record.partition(partition);
        }
        if let Some(ts) = out.timestamp_ms {
            record = record.timestamp(ts);
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
        self.producer.send_result(record).map_err(|(e, _)| e)
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

    /// Waits for everything queued to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "producer flush incomplete");
        }
    }
}

/// Waits for a queued record's acknowledgement.
async fn acknowledged(
    queued: Result<DeliveryFuture, KafkaError>,
) -> Result<(i32, i64), KafkaError> {
    match queued?.await {
        Ok(Ok(d)) => Ok((d.partition, d.offset)),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(KafkaError::Canceled),
    }
}

fn is_queue_full(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
}

/// Whether the broker (or the client, before sending) refuses `e`'s record for good.
pub fn is_permanent(e: &KafkaError) -> bool {
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

/// The dead-letter record for `record`: its key, value, timestamp and headers, plus
/// headers saying where it came from and why it failed. A record that came through a
/// stage's repartition topic names its original coordinates.
pub fn dead_letter(
    record: &Record,
    binding: &str,
    function: Option<&str>,
    error: &str,
    attempts: u32,
) -> Output {
    let origin = crate::record::origin(record);
    let mut headers: Vec<(String, Vec<u8>)> = record
        .headers
        .iter()
        .filter(|(k, _)| k != crate::record::ORIGIN)
        .cloned()
        .collect();
    let mut add = |k: &str, v: String| headers.push((k.to_string(), v.into_bytes()));
    add("kfn-error", error.to_string());
    add("kfn-binding", binding.to_string());
    if let Some(f) = function {
        add("kfn-function", f.to_string());
    }
    let (topic, partition, offset) =
        origin.unwrap_or((&record.topic, record.partition, record.offset));
    add("kfn-source-topic", topic.to_string());
    add("kfn-source-partition", partition.to_string());
    add("kfn-source-offset", offset.to_string());
    add("kfn-attempts", attempts.to_string());
    add("kfn-failed-at", crate::record::now_ms().to_string());
    Output {
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
        timestamp_ms: Some(record.timestamp_ms),
        ..Output::default()
    }
}
