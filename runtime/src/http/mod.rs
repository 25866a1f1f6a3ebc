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
//! | `POST /api/topics/{topic}?key=&timestamp=` | publish the body as a record |
//! | `GET <serve>` | SSE: a store's current values, `{"P1": n, ...}`, every second, from every instance |

mod api;
mod cluster;
mod sse;

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
use crate::observe::{BindingStats, Events};
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
    down: AtomicBool,
    detail: std::sync::Mutex<Option<String>>,
}

impl Health {
    pub fn set(&self, result: Result<(), String>) -> bool {
        let down = result.is_err();
        let was = self.down.swap(down, Ordering::Relaxed);
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = result.err();
        was != down
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
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
    pub bindings: Vec<Arc<BindingStats>>,
    pub stores: BTreeMap<String, Arc<WindowStore>>,
    pub cluster: Cluster,
    pub events: Events,
    pub sink: Sink,
    pub health: Arc<Health>,
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
        .route("/api/events", get(sse::events));
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
    router.with_state(state)
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
