//! The HTTP edge: the dashboard (`static/`), the JSON API, and the SSE feeds.
//!
//! | route | what |
//! |---|---|
//! | `GET /` , `/static/*` | the dashboard |
//! | `GET /api/info`, `/api/health` | version, bootstrap address, broker health |
//! | `GET /api/functions` | each function's version, status and last error |
//! | `GET /api/bindings` | each binding's counters, rates and status |
//! | `GET /api/stores`, `/api/stores/{name}?from=&to=` | window stores and their windows, gathered from every instance (`&local=true`: this one's only) |
//! | `GET /api/stores/{name}/current` | each key's current window, gathered likewise |
//! | `GET /api/events` | SSE: runtime events (history first) |
//! | `GET /metrics` | Prometheus exposition ([`metrics`]) |
//! | `GET /healthz` | 200 while the process serves HTTP (liveness) |
//! | `GET /readyz` | 200 once the broker answered and no binding is starting or restoring; else 503 with the reasons (readiness) |
//! | `POST /api/topics/{topic}?key=&timestamp=` | publish the body as a record (needs the API token when one is set: [`auth`]) |
//! | `GET <serve>` | SSE: a store's current values, `{"P1": n, ...}`, every second, from every instance |

mod api;
mod auth;
mod cluster;
mod metrics;
mod sse;

pub use auth::Access;
pub use cluster::{Cluster, StoreRoute, StoreWindows};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tower_http::services::{ServeDir, ServeFile};

use crate::kafka::Sink;
use crate::observe::{Bindings, Events};
use crate::wasm::Registry;
use crate::window::WindowStore;

/// Static facts shown by `/api/info`.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub version: &'static str,
    pub bootstrap: String,
    pub config: String,
    /// `embedded` or `external`.
    pub broker: &'static str,
    /// This instance's name and the address other instances reach it at.
    pub instance: String,
    pub advertise: String,
}

/// Broker reachability, kept up to date by the app's health probe.
#[derive(Debug, Default)]
pub struct Health {
    /// The probe has answered at least once (until then, not ready).
    probed: AtomicBool,
    down: AtomicBool,
    detail: std::sync::Mutex<Option<String>>,
}

impl Health {
    pub fn set(&self, result: Result<(), String>) -> bool {
        let down = result.is_err();
        self.probed.store(true, Ordering::Relaxed);
        let was = self.down.swap(down, Ordering::Relaxed);
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = result.err();
        was != down
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether the broker answered the latest probe.
    pub fn is_up(&self) -> bool {
        self.probed.load(Ordering::Relaxed) && !self.is_down()
    }

    fn detail(&self) -> Option<String> {
        self.detail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Everything the HTTP layer reads.
pub struct HttpState {
    pub info: Info,
    pub registry: Arc<Registry>,
    pub bindings: Bindings,
    pub stores: BTreeMap<String, Arc<WindowStore>>,
    pub cluster: Cluster,
    pub events: Events,
    pub sink: Sink,
    pub health: Arc<Health>,
    /// The API token and what it guards.
    pub access: Arc<Access>,
    /// A `static/` folder to serve the dashboard from (edit it without a rebuild);
    /// `None` serves the copy inside the binary.
    pub static_dir: Option<PathBuf>,
}

/// The whole router; `main` only binds it to a listener.
pub fn app(state: Arc<HttpState>) -> Router {
    let mut router = Router::new()
        .route("/api/info", get(api::info))
        .route("/api/health", get(api::health))
        .route("/api/functions", get(api::functions))
        .route("/api/bindings", get(api::bindings))
        .route("/api/stores", get(api::stores))
        .route("/api/stores/{name}", get(api::store))
        .route("/api/stores/{name}/current", get(api::current))
        .route("/api/topics/{topic}", post(api::publish))
        .route("/api/events", get(sse::events))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz));
    for store in state.stores.values() {
        if let Some(route) = &store.stage.serve {
            let (state, store) = (state.clone(), store.clone());
            router = router.route(route, get(move || sse::serve(state.clone(), store.clone())));
        }
    }
    router = match &state.static_dir {
        Some(dir) => router
            .route_service("/", ServeFile::new(dir.join("index.html")))
            .nest_service("/static", ServeDir::new(dir)),
        None => router.route("/", get(|| embedded("index.html"))).route(
            "/static/{*path}",
            get(|Path(path): Path<String>| embedded(path)),
        ),
    };
    // Every route goes through the token check: a route added later that changes
    // state is guarded without anyone remembering to.
    let access = state.access.clone();
    router
        .layer(axum::middleware::from_fn_with_state(access, auth::require))
        .with_state(state)
}

/// A dashboard file from inside the binary ([`crate::assets::DASHBOARD`]).
async fn embedded(path: impl AsRef<str>) -> Response {
    let path = path.as_ref();
    match crate::assets::DASHBOARD.get_file(path) {
        Some(file) => (
            [(header::CONTENT_TYPE, crate::assets::content_type(path))],
            file.contents(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
