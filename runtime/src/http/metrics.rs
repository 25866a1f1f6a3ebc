//! `GET /metrics`: the Prometheus exposition (OpenMetrics text, which Prometheus
//! scrapes natively), encoded by `prometheus-client`.
//!
//! Nothing here keeps a count of its own: at each scrape it reads the counters the
//! typed events bump ([`crate::observe::event`]) and that `/api/bindings` shows, the
//! function registry behind `/api/functions` and the window stores behind
//! `/api/stores`. So a metric and the dashboard cannot disagree.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `kfn_records_in_total` | `binding` | records whose effects are durable |
//! | `kfn_records_out_total` | `binding` | outputs acknowledged by the broker |
//! | `kfn_errors_total` | `binding`, `kind` | failed records: `guest_error`, `trap`, `timeout`, `late`, `output_refused`, `invalid` |
//! | `kfn_dead_lettered_total` | `binding` | records written to the dead-letter topic |
//! | `kfn_guest_call_seconds` | `binding` | histogram of guest call time |
//! | `kfn_end_to_end_seconds` | `binding` | histogram of record timestamp → acknowledged |
//! | `kfn_consumer_lag_records` | `binding`, `topic`, `partition` | records beyond the read position |
//! | `kfn_transactions_total` | `binding`, `outcome` | `committed` / `aborted` (exactly-once) |
//! | `kfn_restore_records` | `binding`, `state` | the latest restore: `done` and `total` changelog records |
//! | `kfn_function_generation` | `function` | loads of the function so far |
//! | `kfn_function_status` | `function`, `status` | 1 for the current status (`ready`, `compiling`, `error`, `missing`) |
//! | `kfn_binding_status` | `binding`, `status` | 1 for the current status |
//! | `kfn_window_store_windows` | `store` | open windows held here |
//! | `kfn_broker_up` | | 1 while the broker answers |

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::HttpState;
use crate::observe::{BindingState, FailureKind};

/// What Prometheus is told it gets.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(s)));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        // Only a bug in an encoder gets here (writing to a String cannot fail).
        tracing::error!(error = %e, "encoding /metrics failed");
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

/// One scrape of the app's state.
struct Scrape(Arc<HttpState>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

type Fmt = Result<(), std::fmt::Error>;

/// One metric family: its descriptor, then one sample per label set.
fn family<L, M>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Fmt
where
    L: prometheus_client::encoding::EncodeLabelSet,
    M: EncodeMetric,
{
    let samples: Vec<(L, M)> = samples.into_iter().collect();
    let Some((_, first)) = samples.first() else {
        return Ok(());
    };
    let kind: MetricType = first.metric_type();
    let mut m = e.encode_descriptor(name, help, unit, kind)?;
    for (labels, metric) in &samples {
        metric.encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge(v: i64) -> ConstGauge<i64> {
    ConstGauge::new(v)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.0;
        let b = &s.bindings.list();
        let one = |name: &str| [("binding", name.to_string())];
        family(
            &mut e,
            "kfn_records_in",
            "Records whose effects are durable",
            None,
            b.iter()
                .map(|b| (one(&b.name), counter(b.records_in.load(Relaxed)))),
        )?;
        family(
            &mut e,
            "kfn_records_out",
            "Outputs acknowledged by the broker",
            None,
            b.iter()
                .map(|b| (one(&b.name), counter(b.records_out.load(Relaxed)))),
        )?;
        family(
            &mut e,
            "kfn_errors",
            "Failed records, by kind",
            None,
            b.iter().flat_map(|b| {
                let f = b.failures();
                FailureKind::ALL.map(|k| {
                    (
                        [("binding", b.name.clone()), ("kind", k.label().to_string())],
                        counter(f.get(k)),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "kfn_dead_lettered",
            "Records written to the dead-letter topic",
            None,
            b.iter()
                .map(|b| (one(&b.name), counter(b.dead_lettered.load(Relaxed)))),
        )?;
        family(
            &mut e,
            "kfn_guest_call",
            "Time of one guest call",
            Some(&Unit::Seconds),
            b.iter()
                .filter(|b| b.function.is_some())
                .map(|b| (one(&b.name), b.call_seconds.clone())),
        )?;
        family(
            &mut e,
            "kfn_end_to_end",
            "Record timestamp to acknowledged",
            Some(&Unit::Seconds),
            b.iter()
                .filter(|b| b.input.is_some())
                .map(|b| (one(&b.name), b.end_to_end_seconds.clone())),
        )?;
        family(
            &mut e,
            "kfn_consumer_lag_records",
            "Records beyond the read position, per partition held",
            None,
            b.iter().flat_map(|b| {
                let topic = b.input.clone().unwrap_or_default();
                b.lag().into_iter().map(move |(p, lag)| {
                    (
                        [
                            ("binding", b.name.clone()),
                            ("topic", topic.clone()),
                            ("partition", p.to_string()),
                        ],
                        gauge(lag),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "kfn_transactions",
            "Kafka transactions, by outcome",
            None,
            b.iter().flat_map(|b| {
                [
                    ("committed", b.txn_committed.load(Relaxed)),
                    ("aborted", b.txn_aborted.load(Relaxed)),
                ]
                .map(|(o, n)| {
                    (
                        [("binding", b.name.clone()), ("outcome", o.to_string())],
                        counter(n),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "kfn_restore_records",
            "The latest state restore: changelog records done and in all",
            None,
            b.iter()
                .filter_map(|b| b.restore_progress().map(|p| (b, p)))
                .flat_map(|(b, (done, total))| {
                    [("done", done), ("total", total)].map(|(st, n)| {
                        (
                            [("binding", b.name.clone()), ("state", st.to_string())],
                            gauge(n as i64),
                        )
                    })
                }),
        )?;
        family(
            &mut e,
            "kfn_binding_status",
            "1 for the binding's current status",
            None,
            b.iter().flat_map(|b| {
                let now = b.state().0;
                [
                    BindingState::Starting,
                    BindingState::Running,
                    BindingState::Paused,
                    BindingState::Stopped,
                ]
                .map(|st| {
                    (
                        [
                            ("binding", b.name.clone()),
                            ("status", state_label(st).to_string()),
                        ],
                        gauge(i64::from(st == now)),
                    )
                })
            }),
        )?;
        let functions = s.registry.list();
        family(
            &mut e,
            "kfn_function_generation",
            "Successful loads of the function so far",
            None,
            functions
                .iter()
                .map(|f| ([("function", f.name.clone())], gauge(f.generation as i64))),
        )?;
        family(
            &mut e,
            "kfn_function_status",
            "1 for the function's current status",
            None,
            functions.iter().flat_map(|f| {
                let now = status_label(&f.status);
                ["ready", "compiling", "error", "missing"].map(|st| {
                    (
                        [("function", f.name.clone()), ("status", st.to_string())],
                        gauge(i64::from(st == now)),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "kfn_window_store_windows",
            "Open windows held by this instance",
            None,
            s.stores.values().map(|st| {
                (
                    [("store", st.name().to_string())],
                    gauge(st.open_windows() as i64),
                )
            }),
        )?;
        family(
            &mut e,
            "kfn_broker_up",
            "1 while the broker answers",
            None,
            [(
                [("broker", s.info.broker.to_string())],
                gauge(i64::from(!s.health.is_down())),
            )],
        )?;
        Ok(())
    }
}

fn state_label(s: BindingState) -> &'static str {
    match s {
        BindingState::Starting => "starting",
        BindingState::Running => "running",
        BindingState::Paused => "paused",
        BindingState::Stopped => "stopped",
    }
}

fn status_label<T: serde::Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
