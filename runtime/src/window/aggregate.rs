//! The aggregates (`count`, `sum`, `min`, `max`, `avg` of a JSON pointer, and a
//! user's `function`), one or several per stage, and the per-window accumulator that
//! answers all of them.
//!
//! A stage with `aggregate: count` reports a number per window; one with a map of
//! named aggregates (`{ views: count, avg_ms: { avg: /duration } }`) an object. The
//! accumulator keeps the record count and, per distinct pointer, sum, min and max:
//! enough for every built-in aggregate, mergeable (session merges), and written to
//! the changelog as bytes. A stage with an aggregator function also keeps that
//! function's state bytes per window ([`super::guest`]).

use super::guest::GuestAcc;
use crate::config;

/// What the stage computes per window, compiled from `aggregate:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates {
    /// `None`: one unnamed aggregate, reported as a plain value.
    names: Option<Vec<String>>,
    items: Vec<Item>,
    /// The distinct JSON pointers the items read, in the order values are given.
    pointers: Vec<String>,
    /// The aggregator function, if an item is one.
    function: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Count,
    Sum(usize),
    Min(usize),
    Max(usize),
    Avg(usize),
    Function,
}

impl Aggregates {
    pub fn new(config: &config::Aggregates) -> Self {
        let mut pointers: Vec<String> = Vec::new();
        let mut item = |a: &config::Aggregate| {
            let mut at = |p: &String| match pointers.iter().position(|q| q == p) {
                Some(i) => i,
                None => {
                    pointers.push(p.clone());
                    pointers.len() - 1
                }
            };
            match a {
                config::Aggregate::Count => Item::Count,
                config::Aggregate::Sum(p) => Item::Sum(at(p)),
                config::Aggregate::Min(p) => Item::Min(at(p)),
                config::Aggregate::Max(p) => Item::Max(at(p)),
                config::Aggregate::Avg(p) => Item::Avg(at(p)),
                config::Aggregate::Function(_) => Item::Function,
            }
        };
        let (names, items) = match config {
            config::Aggregates::One(a) => (None, vec![item(a)]),
            config::Aggregates::Named(list) => (
                Some(list.iter().map(|(name, _)| name.clone()).collect()),
                list.iter().map(|(_, a)| item(a)).collect(),
            ),
        };
        Self {
            names,
            items,
            pointers,
            function: config.function().map(str::to_owned),
        }
    }

    /// The aggregator function the stage calls per record and window, if any.
    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }

    /// The JSON pointers whose numbers each record must give, in order.
    pub fn pointers(&self) -> &[String] {
        &self.pointers
    }

    /// An empty accumulator.
    pub fn empty(&self) -> Acc {
        Acc {
            count: 0,
            nums: vec![Num::EMPTY; self.pointers.len()].into_boxed_slice(),
            guest: self.function.is_some().then(Box::default),
        }
    }

    /// A window's value: a number (or null) for one aggregate, an object for several.
    pub fn value(&self, acc: &Acc) -> serde_json::Value {
        let one = |item: &Item| {
            let n = |f: f64| {
                serde_json::Number::from_f64(f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            };
            let num = |i: usize| acc.nums.get(i).copied().unwrap_or(Num::EMPTY);
            match *item {
                Item::Count => acc.count.into(),
                Item::Function => acc
                    .guest
                    .as_ref()
                    .map_or(serde_json::Value::Null, |g| g.value.clone()),
                _ if acc.count == 0 => serde_json::Value::Null,
                Item::Sum(i) => n(num(i).sum),
                Item::Min(i) => n(num(i).min),
                Item::Max(i) => n(num(i).max),
                Item::Avg(i) => n(num(i).sum / acc.count as f64),
            }
        };
        match &self.names {
            None => self.items.first().map_or(serde_json::Value::Null, one),
            Some(names) => serde_json::Value::Object(
                names
                    .iter()
                    .zip(&self.items)
                    .map(|(name, item)| (name.clone(), one(item)))
                    .collect(),
            ),
        }
    }

    /// What the API says the stage computes: `count`, `sum /duration`, or a map.
    pub fn describe(&self) -> serde_json::Value {
        let one = |item: &Item| match *item {
            Item::Count => "count".to_string(),
            Item::Sum(i) => format!("sum {}", self.pointers[i]),
            Item::Min(i) => format!("min {}", self.pointers[i]),
            Item::Max(i) => format!("max {}", self.pointers[i]),
            Item::Avg(i) => format!("avg {}", self.pointers[i]),
            Item::Function => format!("function {}", self.function.as_deref().unwrap_or("")),
        };
        match &self.names {
            None => self.items.first().map(one).unwrap_or_default().into(),
            Some(names) => serde_json::Value::Object(
                names
                    .iter()
                    .zip(&self.items)
                    .map(|(n, item)| (n.clone(), one(item).into()))
                    .collect::<serde_json::Map<_, _>>(),
            ),
        }
    }

    /// Whether an empty window's value is naturally 0 (a plain count), which lets a
    /// chart draw an absent key as 0.
    pub fn is_count(&self) -> bool {
        self.names.is_none() && self.items == [Item::Count]
    }

    /// Reads what [`Acc::encode`] wrote for this stage.
    pub fn decode(&self, bytes: &[u8]) -> Result<Acc, String> {
        Acc::decode(bytes, self.pointers.len(), self.function.is_some())
    }
}

/// Sum, min and max of one pointer's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Num {
    const EMPTY: Num = Num {
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
}

/// One window's accumulator.
#[derive(Debug, Clone, PartialEq)]
pub struct Acc {
    pub count: u64,
    pub nums: Box<[Num]>,
    /// The aggregator function's part, in a stage that has one.
    pub guest: Option<Box<GuestAcc>>,
}

impl Acc {
    /// Adds one record whose numbers (one per pointer) are `values` (and, for the
    /// aggregator function, the record being handled: its call is queued).
    pub fn add(&mut self, values: &[f64]) {
        self.count += 1;
        for (n, v) in self.nums.iter_mut().zip(values) {
            n.sum += v;
            n.min = n.min.min(*v);
            n.max = n.max.max(*v);
        }
        if let Some(g) = &mut self.guest {
            g.queue_add();
        }
    }

    /// Adds everything `other` holds (two sessions merging).
    pub fn merge(&mut self, other: &Acc) {
        self.count += other.count;
        for (n, o) in self.nums.iter_mut().zip(other.nums.iter()) {
            n.sum += o.sum;
            n.min = n.min.min(o.min);
            n.max = n.max.max(o.max);
        }
        if let (Some(g), Some(o)) = (&mut self.guest, &other.guest) {
            g.queue_merge(o);
        }
    }

    /// Appends the changelog form: count, then sum/min/max per pointer (little-endian),
    /// then the aggregator function's state, if the stage has one.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.count.to_le_bytes());
        for n in self.nums.iter() {
            for f in [n.sum, n.min, n.max] {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        if let Some(g) = &self.guest {
            g.encode(out);
        }
    }

    /// Reads what [`Acc::encode`] wrote, for a stage with `pointers` pointers (and an
    /// aggregator function if `guest`).
    pub fn decode(bytes: &[u8], pointers: usize, guest: bool) -> Result<Acc, String> {
        let fixed = 8 + pointers * 24;
        let (bytes, guest) = match (guest, bytes.split_at_checked(fixed)) {
            (true, Some((built_in, state))) => (built_in, Some(Box::new(GuestAcc::decode(state)?))),
            _ => (bytes, None),
        };
        if bytes.len() != fixed {
            return Err(format!(
                "window state of {} bytes, expected {fixed} (was the stage's aggregate changed? \
                 its changelog holds the old shape)",
                bytes.len()
            ));
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            b
        };
        let nums = (0..pointers)
            .map(|p| {
                let at = 8 + p * 24;
                Num {
                    sum: f64::from_le_bytes(word(at)),
                    min: f64::from_le_bytes(word(at + 8)),
                    max: f64::from_le_bytes(word(at + 16)),
                }
            })
            .collect();
        Ok(Acc {
            count: u64::from_le_bytes(word(0)),
            nums,
            guest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Aggregate, Aggregates as Config};

    #[test]
    fn one_aggregate_is_a_plain_value_several_an_object() {
        let count = Aggregates::new(&Config::One(Aggregate::Count));
        let mut acc = count.empty();
        acc.add(&[]);
        acc.add(&[]);
        assert_eq!(count.value(&acc), serde_json::json!(2));
        assert!(count.is_count());

        let named = Aggregates::new(&Config::Named(vec![
            ("views".into(), Aggregate::Count),
            ("avg_ms".into(), Aggregate::Avg("/duration".into())),
            ("max_ms".into(), Aggregate::Max("/duration".into())),
            ("bytes".into(), Aggregate::Sum("/size".into())),
        ]));
        assert_eq!(
            named.pointers(),
            ["/duration", "/size"],
            "one slot per pointer"
        );
        let mut acc = named.empty();
        assert_eq!(
            named.value(&acc),
            serde_json::json!({"views": 0, "avg_ms": null, "max_ms": null, "bytes": null})
        );
        acc.add(&[100.0, 3.0]);
        acc.add(&[300.0, 4.0]);
        assert_eq!(
            named.value(&acc),
            serde_json::json!({"views": 2, "avg_ms": 200.0, "max_ms": 300.0, "bytes": 7.0})
        );
    }

    #[test]
    fn accumulators_merge_and_round_trip() {
        let a = Aggregates::new(&Config::One(Aggregate::Min("/x".into())));
        let (mut x, mut y) = (a.empty(), a.empty());
        x.add(&[3.0]);
        y.add(&[-1.5]);
        y.add(&[8.0]);
        x.merge(&y);
        assert_eq!(x.count, 3);
        assert_eq!(a.value(&x), serde_json::json!(-1.5));
        let mut bytes = Vec::new();
        x.encode(&mut bytes);
        assert_eq!(a.decode(&bytes).unwrap(), x);
        let mut empty = Vec::new();
        a.empty().encode(&mut empty);
        assert_eq!(a.decode(&empty).unwrap(), a.empty(), "infinities survive");
        assert!(Acc::decode(&bytes, 2, false).is_err());
    }
}
