//! The changelog of a window store: a compacted topic whose partition `p` holds the
//! state of partition `p` of what the stage aggregates, so that the state can be
//! rebuilt on another instance or after a restart.
//!
//! Binary records (compaction keeps the latest per key):
//!
//! | record key | value |
//! |---|---|
//! | `01` start (i64 BE) end (i64 BE) group key (UTF-8) | `01` flags (bit 0: closed) max record time (i64 LE) accumulator — or none: a tombstone, the window is gone |
//! | `02` | `01` stream time, watermark (i64 LE), source count (u32 LE), then per source: partition (i32 LE), largest time (i64 LE) |
//!
//! The window key sorts by start, and the value holds the accumulator as opaque
//! bytes, so an aggregate of any shape fits.

use super::clock::Saved;
use super::spec::Bounds;

const WINDOW: u8 = 1;
const CLOCK: u8 = 2;
const VERSION: u8 = 1;
const CLOSED: u8 = 1;

/// The changelog topic of `store` in application `app`.
pub fn topic(app: &str, store: &str) -> String {
    format!("{app}.{store}.changelog")
}

/// One decoded changelog record.
#[derive(Debug, PartialEq)]
pub enum Change<'a> {
    Window {
        key: &'a str,
        bounds: Bounds,
        closed: bool,
        max_ts: i64,
        state: &'a [u8],
    },
    Removed {
        key: &'a str,
        bounds: Bounds,
    },
    Clock(Saved),
}

pub fn window_key(key: &str, (start, end): Bounds) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + key.len());
    k.push(WINDOW);
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(&end.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

pub fn window_value(closed: bool, max_ts: i64, state: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::with_capacity(48);
    v.push(VERSION);
    v.push(if closed { CLOSED } else { 0 });
    v.extend_from_slice(&max_ts.to_le_bytes());
    state(&mut v);
    v
}

pub fn clock_key() -> Vec<u8> {
    vec![CLOCK]
}

pub fn clock_value(saved: &Saved) -> Vec<u8> {
    let mut v = Vec::with_capacity(21 + saved.sources.len() * 12);
    v.push(VERSION);
    v.extend_from_slice(&saved.stream_time.to_le_bytes());
    v.extend_from_slice(&saved.watermark.to_le_bytes());
    v.extend_from_slice(&(saved.sources.len() as u32).to_le_bytes());
    for (p, t) in &saved.sources {
        v.extend_from_slice(&p.to_le_bytes());
        v.extend_from_slice(&t.to_le_bytes());
    }
    v
}

/// Decodes one record (`value` `None`: a tombstone).
pub fn decode<'a>(key: &'a [u8], value: Option<&'a [u8]>) -> Result<Change<'a>, String> {
    match key.first() {
        Some(&WINDOW) if key.len() >= 17 => {
            let start = i64::from_be_bytes(key[1..9].try_into().map_err(|_| "bad key")?);
            let end = i64::from_be_bytes(key[9..17].try_into().map_err(|_| "bad key")?);
            let name = std::str::from_utf8(&key[17..]).map_err(|_| "group key is not UTF-8")?;
            let bounds = (start, end);
            let Some(v) = value else {
                return Ok(Change::Removed { key: name, bounds });
            };
            if v.len() < 10 || v[0] != VERSION {
                return Err(format!("unknown window record format ({} bytes)", v.len()));
            }
            Ok(Change::Window {
                key: name,
                bounds,
                closed: v[1] & CLOSED != 0,
                max_ts: i64::from_le_bytes(v[2..10].try_into().map_err(|_| "bad value")?),
                state: &v[10..],
            })
        }
        Some(&CLOCK) => {
            let v = value.ok_or("clock tombstone")?;
            let mut r = Reader(v);
            if r.take(1)? != [VERSION] {
                return Err("unknown clock record format".into());
            }
            let stream_time = r.i64()?;
            let watermark = r.i64()?;
            let n = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "bad clock")?);
            let sources = (0..n)
                .map(|_| {
                    Ok((
                        i32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "bad clock")?),
                        r.i64()?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            Ok(Change::Clock(Saved {
                stream_time,
                watermark,
                sources,
            }))
        }
        _ => Err("not a kfn changelog record (written by another kfn version?)".into()),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated clock record".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "bad clock")?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let key = window_key("P/1", (5_000, 10_000));
        let value = window_value(true, 9_999, |v| v.extend_from_slice(b"state"));
        assert_eq!(
            decode(&key, Some(&value)).unwrap(),
            Change::Window {
                key: "P/1",
                bounds: (5_000, 10_000),
                closed: true,
                max_ts: 9_999,
                state: b"state"
            }
        );
        assert_eq!(
            decode(&key, None).unwrap(),
            Change::Removed {
                key: "P/1",
                bounds: (5_000, 10_000)
            }
        );
        // Window keys sort by start: compaction and replays keep time order.
        assert!(window_key("z", (1, 2)) < window_key("a", (2, 3)));
        let saved = Saved {
            stream_time: 7,
            watermark: 9,
            sources: vec![(0, 7), (5, 8)],
        };
        assert_eq!(
            decode(&clock_key(), Some(&clock_value(&saved))).unwrap(),
            Change::Clock(saved)
        );
        assert!(
            decode(b"5000/P1", Some(b"{}")).is_err(),
            "the old JSON format"
        );
    }
}
