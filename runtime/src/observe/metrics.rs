//! The histograms a binding keeps (prometheus-client's, so `/metrics` encodes them as
//! they are) and their buckets. The exposition itself is `http::metrics`.

pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::histogram::exponential_buckets;

/// Guest calls: a Rust guest takes ~2 µs, a JavaScript one up to ~100 µs, a call
/// that hits the default CPU-time limit 1 s: 1 µs … ~4 s in ×4 steps.
pub fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 12))
}

/// Record timestamp → acknowledged: milliseconds when the binding keeps up, up to
/// minutes when it has a backlog: 1 ms … ~17 min in ×4 steps.
pub fn end_to_end_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-3, 4.0, 11))
}
