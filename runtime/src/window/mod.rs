//! Tumbling windows over a keyed stream.
//!
//! - [`aggregate`]: the per-window accumulator (`count`, `sum`, `min`, `max`, `avg`);
//! - [`state`]: assignment of records to windows and when windows close: on stream
//!   time (the largest record timestamp seen) *or* on idle wall-clock time, so a quiet
//!   stream still closes its windows; records for closed windows are reported late;
//! - [`store`]: the queryable, shareable store the HTTP layer reads;
//! - [`changelog`]: the store's changes as records of a compacted topic, replayed on
//!   start to restore it.

mod aggregate;
pub mod changelog;
mod state;
mod store;

pub use aggregate::{Acc, AggregateKind};
pub use state::{ClosedWindow, Late, WindowSpec, WindowState};
pub use store::{Closed, WindowRow, WindowStore};
