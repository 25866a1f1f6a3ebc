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
//! - [`record`]: what flows between stages: records read, outputs to produce, and a
//!   stateful step's effects.
//! - [`kafka`]: the Kafka edge: the embedded broker, the source (consumer with
//!   offsets stored only after a record's effects are acknowledged) and the sink
//!   (producer, dead-letter records, transactions).
//! - [`pipeline`]: the one record loop every binding and stage runs (source → step →
//!   delivery, at-least-once or exactly-once), the steps that call functions (a
//!   batch shared by several instances of one, `limits.instances`), and building
//!   each binding and stage from its config.
//! - [`wasm`]: the WebAssembly engine: the one `bindgen!`, compiling with a
//!   precompiled-artifact cache, the function registry that hot-swaps versions, and
//!   per-binding workers that call guests with CPU-time and memory limits.
//! - [`window`]: the analytics stage's operator: tumbling, hopping, sliding and
//!   session windows, aggregates (built-in, or an aggregator function whose state
//!   bytes the store keeps), stream time and idle close per input partition,
//!   the changelog, restore, final results, and the queryable store.
//! - [`http`]: the dashboard, the JSON API and the SSE feeds, `/metrics`, `/healthz`
//!   and `/readyz`, the API token; store queries gathered from the other instances.
//! - [`observe`]: counters, rates, statuses, the runtime event feed every stage
//!   reports to, and the typed events that log, count and broadcast in one call.
//! - [`watch`]: the `functions/` and `kfn.yaml` watcher behind hot reload.
//! - [`builder`]: `kfn build`: turns function source folders into `.wasm`.
//! - [`scaffold`]: `kfn init` and `kfn new`: a project, or a function folder, from a
//!   template.
//! - [`assets`]: what the binary carries: the WIT contract, the templates, the
//!   dashboard.
//! - [`app`]: builds every stage from the config, connects them, applies a changed
//!   kfn.yaml live, and owns shutdown.
//! - [`bench`]: `kfn bench`: kfn against a plain rdkafka passthrough.
//!
//! # Glossary
//!
//! - **source / sink**: Kafka input and output.
//! - **supplier / function / consumer / aggregator**: the kinds of component (WIT
//!   worlds, one table: [`wasm::WORLDS`]): called on a schedule, once per record with
//!   outputs, once per record for a side effect, and per record and window of an
//!   analytics stage with the window's state (which kfn keeps) in and out.
//! - **binding**: one entry of `bindings:` in `kfn.yaml`: a component bound to topics.
//! - **stage**: one entry of `analytics:`: a windowed aggregation, run as one or two
//!   record loops (a repartition step when it groups by a new key, then the window
//!   step).
//! - **store**: the queryable window state of one stage.
//! - **stream time / watermark**: per input partition of a stage, the largest record
//!   timestamp seen (the smallest over the input partitions feeding it, for a
//!   repartitioned stage), and that moved on by wall-clock time while the input is
//!   really idle; windows close and records are late by the watermark.
//! - **delivery**: how a record loop makes effects durable: pipelined acks
//!   (at-least-once) or Kafka transactions (exactly-once).
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
