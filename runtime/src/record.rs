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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Destination; `None` means the binding's `out` topic.
    pub topic: Option<String>,
    /// A partition chosen by kfn (a changelog record goes to the partition of the
    /// state it belongs to); `None` lets the partitioner hash the key.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
