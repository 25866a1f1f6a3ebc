//! duration-p95: a kfn *aggregator*: the 95th percentile of `/duration` per window.
//!
//! The state is a fixed histogram: 10 ms buckets from 0 to 10 s, and one for
//! everything above. It is kept sparse (only buckets that have records), so a
//! window of a few records costs a few bytes, and merging two windows is adding
//! their buckets: exact, whatever the order records come in. `finish` reports the
//! nearest-rank p95 rounded up to its bucket's upper edge (so a p95 of 1234 ms is
//! reported as 1240), the count and the largest duration seen:
//! `{"p95":1240,"count":57,"max":8990}`.
//!
//! Format (version 1): `[1]`, the max as a little-endian u64, then per non-empty
//! bucket, in bucket order, its index (u16) and its count (u32).

use std::collections::BTreeMap;

wit_bindgen::generate!({ world: "aggregator", path: "../../wit" });

struct Component;

const FORMAT: u8 = 1;
/// Bucket width, ms.
const WIDTH: u64 = 10;
/// Buckets 0..BUCKETS cover [0, 10 s); the last one holds everything above.
const BUCKETS: u16 = 1000;

#[derive(Default)]
struct Histogram {
    max: u64,
    counts: BTreeMap<u16, u32>,
}

impl Histogram {
    fn read(bytes: &[u8]) -> Result<Histogram, String> {
        let Some((&FORMAT, rest)) = bytes.split_first() else {
            return Err(match bytes.first() {
                Some(v) => format!("state format {v} unknown (this version reads {FORMAT})"),
                None => "empty state".into(),
            });
        };
        if rest.len() < 8 || (rest.len() - 8) % 6 != 0 {
            return Err(format!("state of {} bytes is not a version-1 histogram", bytes.len()));
        }
        let max = u64::from_le_bytes(rest[..8].try_into().unwrap());
        let counts = rest[8..]
            .chunks_exact(6)
            .map(|c| (u16::from_le_bytes([c[0], c[1]]), u32::from_le_bytes([c[2], c[3], c[4], c[5]])))
            .collect();
        Ok(Histogram { max, counts })
    }

    fn write(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.counts.len() * 6);
        out.push(FORMAT);
        out.extend_from_slice(&self.max.to_le_bytes());
        for (bucket, count) in &self.counts {
            out.extend_from_slice(&bucket.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    fn add(&mut self, duration: u64) {
        let bucket = (duration / WIDTH).min(u64::from(BUCKETS)) as u16;
        *self.counts.entry(bucket).or_default() += 1;
        self.max = self.max.max(duration);
    }

    /// The upper edge of the bucket holding the nearest-rank 95th percentile.
    fn p95(&self) -> Option<u64> {
        let count: u64 = self.counts.values().map(|&c| u64::from(c)).sum();
        if count == 0 {
            return None;
        }
        let rank = (count * 95).div_ceil(100); // nearest rank, 1-based
        let mut seen = 0;
        for (&bucket, &c) in &self.counts {
            seen += u64::from(c);
            if seen >= rank {
                return Some(if bucket == BUCKETS { self.max } else { (u64::from(bucket) + 1) * WIDTH });
            }
        }
        None
    }
}

impl Guest for Component {
    fn init() -> Vec<u8> {
        Histogram::default().write()
    }

    fn add(state: Vec<u8>, msg: Message) -> Result<Vec<u8>, String> {
        let mut h = Histogram::read(&state)?;
        let event: serde_json::Value =
            serde_json::from_slice(&msg.value).map_err(|e| format!("value is not JSON: {e}"))?;
        let duration = event
            .get("duration")
            .and_then(serde_json::Value::as_u64)
            .ok_or("no /duration (a whole number of ms) in the value")?;
        h.add(duration);
        Ok(h.write())
    }

    fn merge(a: Vec<u8>, b: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut a = Histogram::read(&a)?;
        let b = Histogram::read(&b)?;
        for (bucket, count) in b.counts {
            *a.counts.entry(bucket).or_default() += count;
        }
        a.max = a.max.max(b.max);
        Ok(a.write())
    }

    fn finish(state: Vec<u8>) -> Result<Vec<u8>, String> {
        let h = Histogram::read(&state)?;
        let count: u64 = h.counts.values().map(|&c| u64::from(c)).sum();
        let value = serde_json::json!({ "p95": h.p95(), "count": count, "max": h.max });
        Ok(value.to_string().into_bytes())
    }
}

export!(Component);
