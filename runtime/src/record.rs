//! The record types that flow between stages, independent of rdkafka and wasmtime.

/// A record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Which ownership of `partition` this record was read under (see
    /// [`crate::kafka::Ownership`]): a record read before its partition moved to
    /// another instance is neither processed nor acknowledged afterwards.
    pub lease: u64,
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Destination; `None` means the binding's `out` topic.
    pub topic: Option<String>,
    /// A partition chosen by kfn (a changelog record goes to the partition of the
    /// state it belongs to); `None` lets the partitioner hash the key.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record's timestamp (ms since the epoch); `None`: the time it is produced.
    pub timestamp_ms: Option<i64>,
    /// A delete marker of a compacted topic: the key with no value (`value` is
    /// ignored).
    pub tombstone: bool,
}

/// What a stateful step produced besides its records' own outputs, in the order it
/// must become durable.
#[derive(Debug, Default)]
pub struct Effects {
    /// State changes (changelog records), durable before the records that caused
    /// them are acknowledged.
    pub changes: Vec<Output>,
    /// Results for the user's topics (closed windows, updates).
    pub results: Vec<Output>,
    /// Written only once `changes` and `results` are durable (a window's closed-marker
    /// after its final result: a crash in between re-publishes the result rather than
    /// losing it).
    pub after: Vec<Output>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.results.is_empty() && self.after.is_empty()
    }

    pub fn append(&mut self, mut other: Effects) {
        self.changes.append(&mut other.changes);
        self.results.append(&mut other.results);
        self.after.append(&mut other.after);
    }
}

/// The header by which a record on a stage's internal repartition topic names the
/// input record it came from: `topic:partition:offset`.
pub const ORIGIN: &str = "kfn-origin";

/// The `ORIGIN` header value for `record`.
pub fn origin_of(record: &Record) -> (String, Vec<u8>) {
    (
        ORIGIN.to_string(),
        format!("{}:{}:{}", record.topic, record.partition, record.offset).into_bytes(),
    )
}

/// The input record a repartitioned record came from: (topic, partition, offset).
pub fn origin(record: &Record) -> Option<(&str, i32, i64)> {
    let (_, v) = record.headers.iter().find(|(k, _)| k == ORIGIN)?;
    let text = std::str::from_utf8(v).ok()?;
    let (rest, offset) = text.rsplit_once(':')?;
    let (topic, partition) = rest.rsplit_once(':')?;
    Some((topic, partition.parse().ok()?, offset.parse().ok()?))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
