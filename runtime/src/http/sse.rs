//! Server-Sent Event feeds.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::{BroadcastStream, IntervalStream, errors::BroadcastStreamRecvError};

use super::HttpState;
use crate::window::{WindowStore, current_map};

fn json_event<T: serde::Serialize>(value: &T) -> Result<Event, Infallible> {
    Ok(Event::default().data(serde_json::to_string(value).unwrap_or_else(|_| "null".into())))
}

/// Runtime events: the recent history, then live ones. A client too slow to keep up
/// is told how many it missed and carries on.
pub async fn events(
    State(s): State<Arc<HttpState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (history, rx) = s.events.subscribe();
    let live = BroadcastStream::new(rx).map(|item| match item {
        Ok(event) => json_event(&event),
        Err(BroadcastStreamRecvError::Lagged(n)) => json_event(&serde_json::json!({
            "ts_ms": crate::record::now_ms(), "kind": "info", "subject": "dashboard",
            "message": format!("{n} events skipped: this client fell behind"),
        })),
    });
    let history = stream::iter(history).map(|e| json_event(&e));
    Sse::new(history.chain(live)).keep_alive(KeepAlive::default())
}

/// A store's current values every second, first ones at once: `{"P1": 3, "P2": 5}`,
/// each key's value in its current window, gathered from every instance holding
/// part of the store (see [`crate::window::Operator`] and `kinds::current` for what
/// "current" is per window kind).
pub async fn serve(
    state: Arc<HttpState>,
    store: Arc<WindowStore>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = IntervalStream::new(tick).then(move |_| {
        let (state, store) = (state.clone(), store.clone());
        async move {
            let answer = super::cluster::gather_current(&store, &state.cluster, &state.sink).await;
            json_event(&current_map(&answer.windows))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
