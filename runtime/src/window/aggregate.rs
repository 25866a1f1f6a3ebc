//! Window accumulators.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateKind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// Enough to answer every aggregate kind; 32 bytes per window and key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acc {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Acc {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Acc {
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// The aggregate as JSON: counts stay integers (`{"P1": 3}`), the rest are numbers.
    pub fn value(&self, kind: AggregateKind) -> serde_json::Value {
        let n = |f: f64| {
            serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        };
        match kind {
            AggregateKind::Count => self.count.into(),
            AggregateKind::Sum => n(self.sum),
            AggregateKind::Min => n(self.min),
            AggregateKind::Max => n(self.max),
            AggregateKind::Avg if self.count == 0 => serde_json::Value::Null,
            AggregateKind::Avg => n(self.sum / self.count as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_from_one_accumulator() {
        let mut a = Acc::default();
        for v in [3.0, 1.0, 8.0] {
            a.add(v);
        }
        assert_eq!(a.value(AggregateKind::Count), serde_json::json!(3));
        assert_eq!(a.value(AggregateKind::Sum), serde_json::json!(12.0));
        assert_eq!(a.value(AggregateKind::Min), serde_json::json!(1.0));
        assert_eq!(a.value(AggregateKind::Max), serde_json::json!(8.0));
        assert_eq!(a.value(AggregateKind::Avg), serde_json::json!(4.0));
        assert_eq!(
            Acc::default().value(AggregateKind::Avg),
            serde_json::Value::Null
        );
    }
}
