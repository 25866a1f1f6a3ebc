//! JSON endpoints.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::HttpState;
use super::StoreWindows;
use crate::observe::BindingInfo;
use crate::record::Output;
use crate::wasm::FunctionInfo;
use crate::window::CurrentWindow;

/// An API failure: a status and a message, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

pub async fn info(State(s): State<Arc<HttpState>>) -> Json<super::Info> {
    Json(s.info.clone())
}

pub async fn health(State(s): State<Arc<HttpState>>) -> Response {
    let down = s.health.is_down();
    let body = serde_json::json!({
        "status": if down { "degraded" } else { "ok" },
        "broker": if down { "down" } else { "up" },
        "detail": s.health.detail(),
    });
    let status = if down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

/// Liveness: the process is up and serving.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the broker answers and every binding is past starting (a stage's
/// restore is done). 503 with the reasons otherwise.
pub async fn readyz(State(s): State<Arc<HttpState>>) -> Response {
    let mut waiting: Vec<String> = Vec::new();
    if !s.health.is_up() {
        waiting.push(match s.health.detail() {
            Some(d) => format!("broker unreachable: {d}"),
            None => "broker not reached yet".into(),
        });
    }
    for b in &s.bindings.list() {
        if let (crate::observe::BindingState::Starting, reason) = b.state() {
            waiting.push(format!(
                "{}: {}",
                b.name,
                reason.as_deref().unwrap_or("starting")
            ));
        }
    }
    let ready = waiting.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "waiting": waiting })),
    )
        .into_response()
}

pub async fn functions(State(s): State<Arc<HttpState>>) -> Json<Vec<FunctionInfo>> {
    Json(s.registry.list())
}

pub async fn bindings(State(s): State<Arc<HttpState>>) -> Json<Vec<BindingInfo>> {
    Json(s.bindings.list().iter().map(|b| b.info()).collect())
}

/// What `/api/stores` says about a store: its windows, aggregates and routes.
#[derive(Serialize)]
pub struct StoreSummary {
    name: String,
    serve: Option<String>,
    out: Option<String>,
    /// `tumbling`, `hopping`, `sliding` or `session`.
    kind: &'static str,
    /// The window length (tumbling and hopping size, sliding time difference,
    /// session gap).
    window_ms: i64,
    /// Hopping windows: how often one starts.
    advance_ms: Option<i64>,
    grace_ms: i64,
    /// Idle close; `null`: off.
    idle_ms: Option<u64>,
    /// Whether window ends are exclusive (`[start, end)`).
    end_exclusive: bool,
    /// `count`, `sum /duration`, ... or a map of names to those.
    aggregate: serde_json::Value,
    /// `final` or `changes`.
    emit: &'static str,
    /// Open windows in the partitions held here.
    open_windows: usize,
    /// The furthest watermark of the partitions held here: where the store's windows
    /// are in event time.
    watermark_ms: Option<i64>,
    /// Partitions held here.
    partitions: Vec<i32>,
}

pub async fn stores(State(s): State<Arc<HttpState>>) -> Json<Vec<StoreSummary>> {
    use crate::window::{Emit, Kind};
    Json(
        s.stores
            .values()
            .map(|st| {
                let stage = &st.stage;
                let (window_ms, advance_ms) = match stage.spec.kind {
                    Kind::Tumbling { size } => (size, None),
                    Kind::Hopping { size, advance } => (size, Some(advance)),
                    Kind::Sliding { difference } => (difference, None),
                    Kind::Session { gap } => (gap, None),
                };
                StoreSummary {
                    name: stage.name.clone(),
                    serve: stage.serve.clone(),
                    out: stage.out.clone(),
                    kind: stage.spec.kind_name(),
                    window_ms,
                    advance_ms,
                    grace_ms: stage.spec.grace,
                    idle_ms: stage.spec.idle.map(|d| d.as_millis() as u64),
                    end_exclusive: stage.spec.end_exclusive(),
                    aggregate: stage.aggregates.describe(),
                    emit: match stage.emit {
                        Emit::Final => "final",
                        Emit::Changes { .. } => "changes",
                    },
                    open_windows: st.open_windows(),
                    watermark_ms: st.watermark(),
                    partitions: st.partitions(),
                }
            })
            .collect(),
    )
}

#[derive(Deserialize)]
pub struct Range {
    from: Option<i64>,
    to: Option<i64>,
    /// Only this instance's partitions (what another instance gathers).
    #[serde(default)]
    local: bool,
}

pub async fn store(
    State(s): State<Arc<HttpState>>,
    Path(name): Path<String>,
    Query(range): Query<Range>,
) -> Result<Json<StoreWindows>, ApiError> {
    let store = find_store(&s, &name)?;
    Ok(Json(if range.local {
        super::cluster::local(
            store,
            &s.cluster.advertise,
            store.query(range.from, range.to),
        )
    } else {
        super::cluster::gather_range(store, &s.cluster, &s.sink, range.from, range.to).await
    }))
}

#[derive(Deserialize)]
pub struct Local {
    #[serde(default)]
    local: bool,
}

/// Each key's current window (what the store's SSE route and the dashboard's chart
/// show), gathered from every instance unless `local`.
pub async fn current(
    State(s): State<Arc<HttpState>>,
    Path(name): Path<String>,
    Query(q): Query<Local>,
) -> Result<Json<StoreWindows<CurrentWindow>>, ApiError> {
    let store = find_store(&s, &name)?;
    Ok(Json(if q.local {
        super::cluster::local(store, &s.cluster.advertise, store.current_windows())
    } else {
        super::cluster::gather_current(store, &s.cluster, &s.sink).await
    }))
}

fn find_store<'a>(
    s: &'a HttpState,
    name: &str,
) -> Result<&'a Arc<crate::window::WindowStore>, ApiError> {
    s.stores.get(name).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no store named '{name}' (stores: {})",
            s.stores.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

#[derive(Deserialize)]
pub struct PublishParams {
    key: Option<String>,
    /// The record's timestamp, ms since the epoch (default: now).
    timestamp: Option<i64>,
}

pub async fn publish(
    State(s): State<Arc<HttpState>>,
    Path(topic): Path<String>,
    Query(params): Query<PublishParams>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let valid = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("'{topic}' is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)"),
        });
    }
    let out = Output {
        topic: None,
        partition: None,
        key: params.key.map(String::into_bytes),
        value: body.to_vec(),
        timestamp_ms: params.timestamp,
        ..Output::default()
    };
    let sent = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.sink.send(&topic, &out),
    )
    .await;
    match sent {
        Ok(Ok((partition, offset))) => Ok(Json(serde_json::json!({
            "topic": topic, "partition": partition, "offset": offset
        }))),
        Ok(Err(e)) => Err(ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: format!("the broker refused the record: {e}"),
        }),
        Err(_) => Err(ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: "the broker did not acknowledge the record within 10 s".into(),
        }),
    }
}
