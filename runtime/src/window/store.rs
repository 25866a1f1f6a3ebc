//! The queryable window store of one analytics stage, shared between the stage (which
//! writes) and the HTTP layer (which reads). A std `Mutex`, never held across an
//! `.await`: every operation is a short in-memory update or copy.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use tokio::time::Instant;

use super::aggregate::AggregateKind;
use super::changelog::Entry;
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

    /// Adds a value; returns the changelog entry of the window it changed.
    pub fn add(&self, ts: i64, key: &str, value: f64) -> Result<Entry, Late> {
        let (start, acc) = self.lock().add(ts, key, value, Instant::now())?;
        Ok(Entry::new(start, key, &acc, false))
    }

    /// Closes due windows; returns them and the windows forgotten after retention.
    pub fn close_due(&self) -> (Vec<ClosedWindow>, Vec<(i64, String)>) {
        let mut forgotten = Vec::new();
        let closed = self.lock().close_due(Instant::now(), &mut forgotten);
        (closed, forgotten)
    }

    /// Applies one changelog record (`None`: a tombstone for `record_key`).
    pub fn restore(&self, record_key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        match value {
            Some(bytes) => {
                let e =
                    Entry::from_json(bytes).map_err(|e| format!("bad changelog record: {e}"))?;
                self.lock()
                    .restore(e.start, &e.key, e.acc(), e.closed, Instant::now());
            }
            None => {
                let text = String::from_utf8_lossy(record_key);
                let (start, key) = text.split_once('/').ok_or("bad changelog key")?;
                let start = start.parse().map_err(|_| "bad changelog key")?;
                self.lock().forget(start, key);
            }
        }
        Ok(())
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
