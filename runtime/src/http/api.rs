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

pub async fn functions(State(s): State<Arc<HttpState>>) -> Json<Vec<FunctionInfo>> {
    Json(s.registry.list())
}

pub async fn bindings(State(s): State<Arc<HttpState>>) -> Json<Vec<BindingInfo>> {
    Json(s.bindings.iter().map(|b| b.info()).collect())
}

#[derive(Serialize)]
pub struct StoreSummary {
    name: String,
    serve: Option<String>,
    window_ms: i64,
    grace_ms: i64,
    aggregate: crate::window::AggregateKind,
}

pub async fn stores(State(s): State<Arc<HttpState>>) -> Json<Vec<StoreSummary>> {
    Json(
        s.stores
            .values()
            .map(|st| StoreSummary {
                name: st.name.clone(),
                serve: st.serve.clone(),
                window_ms: st.spec().size_ms,
                grace_ms: st.spec().grace_ms,
                aggregate: st.aggregate,
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
    let store = s.stores.get(&name).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no store named '{name}' (stores: {})",
            s.stores.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })?;
    Ok(Json(if range.local {
        super::cluster::local(store, &s.cluster.advertise, range.from, range.to)
    } else {
        super::cluster::gather(store, &s.cluster, &s.sink, range.from, range.to).await
    }))
}

#[derive(Deserialize)]
pub struct PublishParams {
    key: Option<String>,
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
        headers: Vec::new(),
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
