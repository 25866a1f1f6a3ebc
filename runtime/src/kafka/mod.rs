//! The Kafka edge of the data path.
//!
//! - [`embedded`]: `brokers: embedded`, a Kafka-protocol broker in this process;
//! - [`Source`]: a consumer-group member reading one topic; offsets are stored only
//!   when the caller acknowledges a record, i.e. after its effects are durable; its
//!   [`Ownership`] says which partitions it owns, under which lease;
//! - [`Sink`]: the shared producer; sends are retried until acknowledged, and failed
//!   records become dead-letter records with the error in their headers;
//! - [`replay`]: read a topic to its end once (restoring a store from its changelog);
//! - `cluster`: partition counts, and which instance owns which partition
//!   ([`Sink::partition_owners`]).

mod cluster;
pub use cluster::{Upstream, partition_count, upstream};
pub mod embedded;
mod replay;
mod settings;
mod sink;
mod source;
mod txn;

pub use embedded::EmbeddedBroker;
pub use replay::replay;
pub use settings::{KafkaSettings, advertised_in};
pub use sink::{Sends, Sink, dead_letter, is_permanent};
pub use source::{Ownership, Source};
pub use txn::TxnSink;
