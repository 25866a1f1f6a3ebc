//! The changelog of a window store: one compacted-topic record per (window, key),
//! written whenever that window changes, so the store can be rebuilt after a restart.
//!
//! Record key: `<window start>/<group key>` (compaction keeps the latest per window
//! and key). Value: JSON `{"start","key","count","sum","min","max","closed"}`; a
//! window forgotten after retention is a tombstone (no value).

use serde::{Deserialize, Serialize};

use super::aggregate::Acc;

/// One window's state as written to the changelog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub start: i64,
    pub key: String,
    pub count: u64,
    pub sum: f64,
    /// `None` while the window is empty (JSON has no infinity).
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub closed: bool,
}

impl Entry {
    pub fn new(start: i64, key: &str, acc: &Acc, closed: bool) -> Self {
        Self {
            start,
            key: key.to_string(),
            count: acc.count,
            sum: acc.sum,
            min: acc.min.is_finite().then_some(acc.min),
            max: acc.max.is_finite().then_some(acc.max),
            closed,
        }
    }

    pub fn acc(&self) -> Acc {
        Acc {
            count: self.count,
            sum: self.sum,
            min: self.min.unwrap_or(f64::INFINITY),
            max: self.max.unwrap_or(f64::NEG_INFINITY),
        }
    }

    /// The changelog record key for this window and key.
    pub fn record_key(&self) -> Vec<u8> {
        record_key(self.start, &self.key)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Entry, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

pub fn record_key(start: i64, key: &str) -> Vec<u8> {
    format!("{start}/{key}").into_bytes()
}

/// The changelog topic of `store` in application `app`. Partition `p` of it holds
/// the state of partition `p` of the topic the store aggregates.
pub fn topic(app: &str, store: &str) -> String {
    format!("{app}.{store}.changelog")
}

/// The internal topic through which `store`'s input is repartitioned by group key.
pub fn repartition_topic(app: &str, store: &str) -> String {
    format!("{app}.{store}.repartition")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_including_empty_min_max() {
        let mut acc = Acc::default();
        let empty = Entry::new(5_000, "P1", &acc, false);
        assert_eq!(Entry::from_json(&empty.to_json()).unwrap().acc(), acc);
        acc.add(3.0);
        acc.add(-1.5);
        let e = Entry::new(5_000, "P/1", &acc, true);
        let back = Entry::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.acc(), acc);
        assert_eq!(e.record_key(), b"5000/P/1");
    }
}
