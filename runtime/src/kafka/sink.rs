//! The sink: one producer shared by every binding. Every message carries a
//! [`Ticket`] that the producer's delivery report settles, so nothing is per-message
//! on the async side: a [`Sends`] group (a batch's outputs, a transaction's messages)
//! is one [`Tracker`] that wakes its waiter once, when the last message of the group
//! is acknowledged. [`Sink::deliver`] (one record, retried until the broker accepts
//! it) is for the paths that send a record at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::task::AtomicWaker;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use tokio::sync::oneshot;

use super::KafkaSettings;
use crate::record::{Output, Record};

/// Retry delays for a send that failed (e.g. the broker is away); the last repeats.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

/// The broker's answer for one message: where it was written, or why not.
type Answer = Result<(i32, i64), KafkaError>;

/// Where the broker's answer for one message goes.
pub enum Ticket {
    /// A single send awaiting its own answer.
    One(oneshot::Sender<Answer>),
    /// Message `index` of a group.
    Group(Arc<Tracker>, u32),
}

/// Counts a group's messages still unacknowledged and keeps its failures.
#[derive(Default)]
pub struct Tracker {
    pending: AtomicUsize,
    failed: Mutex<Vec<(u32, KafkaError)>>,
    waker: AtomicWaker,
}

impl Tracker {
    fn settle(&self, index: u32, result: Result<(), KafkaError>) {
        if let Err(e) = result {
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((index, e));
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waker.wake();
        }
    }

    /// Waits until every message is acknowledged; the ones that failed.
    async fn acked(&self) -> Vec<(u32, KafkaError)> {
        futures::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.pending.load(Ordering::Acquire) == 0 {
                Poll::Ready(std::mem::take(
                    &mut *self.failed.lock().unwrap_or_else(|p| p.into_inner()),
                ))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// The producer's context: settles each message's ticket from its delivery report.
pub struct Acks;

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<Ticket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Box<Ticket>) {
        let result = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        match *ticket {
            Ticket::One(tx) => {
                let _ = tx.send(result);
            }
            Ticket::Group(tracker, index) => tracker.settle(index, result.map(drop)),
        }
    }
}

/// The producer every sink is made of.
pub type KafkaProducer = ThreadedProducer<Acks>;

#[derive(Clone)]
pub struct Sink {
    producer: KafkaProducer,
    /// For saying why the cluster is unreachable ([`Sink::ping`]).
    settings: Option<std::sync::Arc<KafkaSettings>>,
}

/// Messages sent as one group: each gets an index (in the order pushed), and
/// [`Sends::acked`] answers for all of them once the last is acknowledged.
pub struct Sends {
    tracker: Arc<Tracker>,
    messages: Vec<(String, Output)>,
    /// Not queued (the producer's queue was full, or the client refused it).
    unsent: Vec<(u32, KafkaError)>,
}

impl Sends {
    pub fn new() -> Self {
        Self {
            tracker: Arc::default(),
            messages: Vec::new(),
            unsent: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Hands `out` to the producer now; returns its index in the group.
    pub fn push(&mut self, sink: &Sink, topic: String, out: Output) -> usize {
        let index = self.messages.len();
        self.tracker.pending.fetch_add(1, Ordering::AcqRel);
        let ticket = Box::new(Ticket::Group(self.tracker.clone(), index as u32));
        if let Err(e) = sink.enqueue(&topic, &out, ticket) {
            self.tracker.settle(index as u32, Ok(()));
            self.unsent.push((index as u32, e));
        }
        self.messages.push((topic, out));
        index
    }

    /// Waits for every message's answer: one per message, in push order. With
    /// `retry`, transient failures are sent again until the broker accepts them (only
    /// permanent refusals come back); without (inside a transaction, where librdkafka
    /// retries itself), only a full local queue is waited out.
    pub async fn acked(self, sink: &Sink, retry: bool) -> Vec<Result<(), KafkaError>> {
        let mut results: Vec<Result<(), KafkaError>> = vec![Ok(()); self.messages.len()];
        let mut failed = self.tracker.acked().await;
        failed.extend(self.unsent);
        failed.sort_by_key(|(i, _)| *i);
        for (i, e) in failed {
            let (topic, out) = &self.messages[i as usize];
            results[i as usize] = if is_queue_full(&e) || (retry && !is_permanent(&e)) {
                sink.deliver_with(topic.clone(), out.clone(), retry)
                    .await
                    .map(drop)
            } else {
                Err(e)
            };
        }
        results
    }
}

impl Default for Sends {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: settings.producer().create_with_context(Acks)?,
            settings: Some(std::sync::Arc::new(settings.clone())),
        })
    }

    pub(super) fn from_producer(producer: KafkaProducer) -> Self {
        Self {
            producer,
            settings: None,
        }
    }

    pub(super) fn producer(&self) -> &KafkaProducer {
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

    fn deliver_with(
        &self,
        topic: String,
        out: Output,
        retry: bool,
    ) -> impl Future<Output = Result<(i32, i64), KafkaError>> + Send + 'static {
        let first = self.enqueue_one(&topic, &out);
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
                pending = sink.enqueue_one(&topic, &out);
            }
        }
    }

    /// Sends `out` (to its own topic, else `default_topic`) and waits until the broker
    /// acknowledges it, retrying like [`Sink::deliver`].
    pub async fn send(&self, default_topic: &str, out: &Output) -> Result<(i32, i64), KafkaError> {
        let topic = out.topic.as_deref().unwrap_or(default_topic).to_string();
        self.deliver(topic, out.clone()).await
    }

    fn enqueue_one(
        &self,
        topic: &str,
        out: &Output,
    ) -> Result<oneshot::Receiver<Answer>, KafkaError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(topic, out, Box::new(Ticket::One(tx)))?;
        Ok(rx)
    }

    /// Queues `out` in the producer; `ticket` gets the broker's answer.
    fn enqueue(&self, topic: &str, out: &Output, ticket: Box<Ticket>) -> Result<(), KafkaError> {
        let mut record: BaseRecord<'_, [u8], [u8], Box<Ticket>> =
            BaseRecord::with_opaque_to(topic, ticket);
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
        self.producer.send(record).map_err(|(e, _)| e)
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
async fn acknowledged(queued: Result<oneshot::Receiver<Answer>, KafkaError>) -> Answer {
    queued?.await.unwrap_or(Err(KafkaError::Canceled))
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
