//! The queryable window store of one analytics stage, shared between the stage (which
//! writes) and the HTTP layer (which reads). A std `Mutex`, never held across an
//! `.await`: every operation is a short in-memory update or copy.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use tokio::time::Instant;

use super::aggregate::AggregateKind;
use super::state::{ClosedWindow, Late, WindowSpec, WindowState};

/// One window of one key, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowRow {
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub value: serde_json::Value,
    pub closed: bool,
}

pub struct WindowStore {
    pub name: String,
    pub aggregate: AggregateKind,
    /// The SSE route serving [`WindowStore::current`], if any.
    pub serve: Option<String>,
    state: Mutex<WindowState>,
}

impl WindowStore {
    pub fn new(
        name: &str,
        spec: WindowSpec,
        aggregate: AggregateKind,
        serve: Option<String>,
    ) -> Self {
        Self {
            name: name.to_string(),
            aggregate,
            serve,
            state: Mutex::new(WindowState::new(spec)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spec(&self) -> WindowSpec {
        self.lock().spec()
    }

    pub fn add(&self, ts: i64, key: &str, value: f64) -> Result<(), Late> {
        self.lock().add(ts, key, value, Instant::now())
    }

    pub fn close_due(&self) -> Vec<ClosedWindow> {
        self.lock().close_due(Instant::now())
    }

    pub fn query(&self, from: Option<i64>, to: Option<i64>) -> Vec<WindowRow> {
        let rows = self
            .lock()
            .windows(from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
        rows.into_iter()
            .map(|(key, start, end, acc, closed)| WindowRow {
                key,
                start,
                end,
                value: acc.value(self.aggregate),
                closed,
            })
            .collect()
    }

    /// `{"P1": 3, "P2": 5}`: each key's value in the current window.
    pub fn current(&self) -> BTreeMap<String, serde_json::Value> {
        let current = self.lock().current(Instant::now());
        current
            .into_iter()
            .map(|(k, acc)| (k, acc.value(self.aggregate)))
            .collect()
    }
}
