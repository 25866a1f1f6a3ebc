//! The windowed analytics stage as one stateful operator: records in, windows kept
//! per input partition, state changes to the changelog, final results out.
//!
//! - [`spec`]: the window kinds (tumbling, hopping, sliding, session), their bounds
//!   and when each is final;
//! - [`kinds`]: how a record goes into its key's windows, one file per kind;
//! - [`aggregate`]: the built-in aggregates, one or several per stage;
//! - [`clock`]: stream time and the watermark per partition (idle close);
//! - [`state`]: one partition's windows, closing, and what changed;
//! - [`changelog`]: the binary records of the changelog topic;
//! - [`store`]: the partitions held here, shared with the HTTP layer;
//! - [`restore`]: rebuilding a partition from its changelog;
//! - [`operator`]: the stage's behaviour, driven by the record loop (one writer:
//!   every change, closed-marker and result leaves through the loop's delivery, so
//!   under exactly-once they share the input's transaction).

pub mod aggregate;
pub mod changelog;
pub mod clock;
mod guest;
mod kinds;
mod operator;
mod restore;
pub mod spec;
mod state;
mod store;

use std::time::Duration;

pub use aggregate::Aggregates;
pub use guest::Aggregator;
pub use operator::{AddError, Operator, UpstreamProbe};
pub use restore::Restorer;
pub use spec::{Bounds, Kind, Spec};
pub use state::{Late, PartitionState, WindowRow};
pub use store::{CurrentWindow, WindowStore, current_map};

use crate::config::{self, AnalyticsConfig};

/// What the stage reports on `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// One result per window, when it closes (Kafka Streams needs `suppress` for this).
    Final,
    /// Each changed window's current value at most once per `every`, and the final
    /// one when it closes.
    Changes { every: Duration },
}

/// Everything fixed about one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The store's name.
    pub name: String,
    pub spec: Spec,
    pub aggregates: Aggregates,
    pub emit: Emit,
    /// The changelog topic.
    pub changelog: String,
    /// Where results go.
    pub out: Option<String>,
    /// The SSE route serving the current windows.
    pub serve: Option<String>,
}

impl Stage {
    pub fn new(name: &str, config: &AnalyticsConfig, application_id: &str) -> Self {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let w = &config.window;
        let kind = match w.kind {
            config::WindowKind::Tumbling(size) => Kind::Tumbling { size: millis(size) },
            config::WindowKind::Hopping { size, advance } => Kind::Hopping {
                size: millis(size),
                advance: millis(advance),
            },
            config::WindowKind::Sliding(d) => Kind::Sliding {
                difference: millis(d),
            },
            config::WindowKind::Session { gap } => Kind::Session { gap: millis(gap) },
        };
        Self {
            name: name.to_string(),
            spec: Spec {
                kind,
                grace: millis(w.grace),
                idle: w.idle,
            },
            aggregates: Aggregates::new(&config.aggregate),
            emit: match config.emit {
                config::EmitConfig::Final => Emit::Final,
                config::EmitConfig::Changes { every } => Emit::Changes { every },
            },
            changelog: changelog::topic(application_id, name),
            out: config.output.clone(),
            serve: config.serve.clone(),
        }
    }
}
