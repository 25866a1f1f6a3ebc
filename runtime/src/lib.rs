//! # kfn
//!
//! Binds Kafka topics to user functions compiled to WebAssembly components, runs a
//! windowed analytics stage over the stream, hot-reloads functions while it runs and
//! serves live results over Server-Sent Events to a dashboard.
//!
//! # Layout
//!
//! Modules in data-path order, top to bottom:
//!
//! - [`config`]: `kfn.yaml`: parse, validate (every error, with line:column).
//! - [`kafka`]: the Kafka edge: the embedded broker, the source (consumer with
//!   offsets stored only after a record's effects are acknowledged) and the sink
//!   (producer, dead-letter records).
//! - [`wasm`]: the WebAssembly engine: the one `bindgen!`, compiling with a
//!   precompiled-artifact cache, the function registry that hot-swaps versions, and
//!   per-binding workers that call guests with CPU-time and memory limits.
//! - [`window`]: tumbling windows: assignment, aggregates, closing on stream time or
//!   idle wall-clock, and the queryable store, kept per input partition.
//! - [`pipeline`]: the loops that join the stages, one per kind of binding
//!   (supplier, function, consumer, analytics).
//! - [`http`]: the dashboard, the JSON API and the SSE feeds; store queries gathered
//!   from the other instances.
//! - [`observe`]: counters, rates, statuses and the runtime event feed every stage
//!   reports to.
//! - [`watch`]: the `functions/` and `kfn.yaml` watcher behind hot reload.
//! - [`builder`]: `kfn build`: turns function source folders into `.wasm`.
//! - [`scaffold`]: `kfn init` and `kfn new`: a project, or a function folder, from a
//!   template.
//! - [`assets`]: what the binary carries: the WIT contract, the templates, the
//!   dashboard.
//! - [`app`]: builds every stage from the config, connects them and owns shutdown.
//! - [`bench`]: `kfn bench`: kfn against a plain rdkafka passthrough.
//!
//! # Glossary
//!
//! - **source / sink**: Kafka input and output.
//! - **supplier / function / consumer**: the kinds of component (WIT worlds): called on
//!   a schedule, once per record with outputs, once per record for a side effect.
//! - **binding**: one entry of `bindings:` in `kfn.yaml`: a component bound to topics.
//! - **store**: the queryable window state of one `analytics:` stage.
//! - **generation**: a counter bumped on every successful (re)load of a function;
//!   workers compare it between records to pick up a new version.
//! - **lease**: a number given to a partition each time the group assigns it to this
//!   instance; records and window state carry it, so nothing read under an old
//!   assignment is processed, acknowledged or served after the partition moved.
//! - **instance**: one `kfn up` process; instances with one application id share
//!   partitions through Kafka's consumer groups.

pub mod app;
pub mod assets;
pub mod bench;
pub mod builder;
pub mod config;
pub mod http;
pub mod kafka;
pub mod observe;
pub mod pipeline;
pub mod record;
pub mod scaffold;
pub mod wasm;
pub mod watch;
pub mod window;
