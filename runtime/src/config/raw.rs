//! The serde shapes of kfn.yaml, exactly as written by the user.
//!
//! Each section, binding and store is deserialized on its own (see [`super::node_de`]),
//! so these shapes only reject what serde can see locally: unknown keys and wrong types.
//! Almost every field is optional here; what is required, what excludes what, and what
//! a value must look like is checked in [`super::validate`], which reports every problem
//! instead of the first. Values that validation checks are [`Located`] so its errors
//! point at them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::node_de::{Located, ScalarText};

/// The top-level sections, in the order the file usually has them.
pub const SECTIONS: &[&str] = &["kafka", "functions", "bindings", "analytics", "http"];

/// A whole kfn.yaml. Only the schema and the reference use it: validation reads each
/// section on its own (see the module doc).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "only its shape is used, by the schema")]
pub struct RawFile {
    /// Where the Kafka broker is and how to talk to it (required).
    pub kafka: RawKafka,
    /// Where the functions are and how much each call may use.
    pub functions: Option<RawFunctions>,
    /// Functions bound to topics, by binding name.
    pub bindings: Option<BTreeMap<String, RawBinding>>,
    /// Windowed aggregations, materialised as queryable stores, by store name.
    pub analytics: Option<BTreeMap<String, RawStage>>,
    /// The dashboard and API server.
    pub http: Option<RawHttp>,
}

/// `kafka:` — where the broker is and how to talk to it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawKafka {
    /// `embedded` for a broker inside kfn (development; nothing is kept on disk), or a
    /// bootstrap list `host:port,host:port` of a real cluster (required).
    pub brokers: Option<Located<String>>,
    /// Prefix of this app's consumer groups, transactional ids and internal topics:
    /// one per app on a cluster. Required with a real cluster; `kfn` on the embedded
    /// broker.
    pub application_id: Option<Located<String>>,
    /// librdkafka properties for every client kfn creates (TLS, SASL, tuning), e.g.
    /// `security.protocol: SASL_SSL`; numbers and booleans are passed on as text, file
    /// paths are relative to kfn.yaml, and secret values (`sasl.password`, ...) are
    /// never logged or shown. `kfn validate` asks librdkafka about each one. See
    /// https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md
    pub properties: Option<BTreeMap<String, Located<ScalarText>>>,
    /// How often a binding or stage with `guarantee: exactly-once` commits its Kafka
    /// transaction with the input offsets, e.g. `100ms` (the default, as in Kafka
    /// Streams): its results become visible to `read_committed` readers this often.
    /// Longer costs the broker less.
    pub commit_interval: Option<Located<String>>,
    /// Records in one such transaction at most (it commits when either limit is
    /// reached); default 20000.
    pub transaction_records: Option<Located<String>>,
}

/// `functions:` — where the `.wasm` files are and how much they may use.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFunctions {
    /// Folder of `.wasm` files and function sources, relative to kfn.yaml; default
    /// `functions`.
    pub dir: Option<Located<String>>,
    /// Default limits for every function.
    pub limits: Option<RawLimits>,
}

/// `limits:` — resource limits of one function call; unset fields inherit.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLimits {
    /// Linear memory cap, e.g. `64MiB`.
    pub memory: Option<Located<String>>,
    /// Deadline of one call, e.g. `1s`.
    pub cpu_time: Option<Located<String>>,
    /// Calls per record before it is dead-lettered, e.g. `3` (1 = no retry).
    pub attempts: Option<Located<String>>,
    /// Wait before the first retry, doubling up to 10 times as long, e.g. `100ms`.
    pub retry_backoff: Option<Located<String>>,
    /// Largest state an aggregator function keeps per window, e.g. `512KiB` (the
    /// default); a record that would grow it further is dead-lettered.
    pub state: Option<Located<String>>,
    /// Instances of the function that share each batch of records, each on a thread
    /// of its own: `auto` (the default: one per core but one, from 1 to 4) or 1 to
    /// 64. A function that needs every record in one instance's memory sets 1.
    pub instances: Option<Located<String>>,
}

/// One entry of `bindings:` — a function bound to topics.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBinding {
    /// Runs this function on a schedule (`every`) and writes what it returns to `out`.
    pub supplier: Option<Located<String>>,
    /// Runs this function on every record of `in`.
    pub consumer: Option<Located<String>>,
    /// Runs this function on every record of `in` and writes what it returns to `out`.
    pub function: Option<Located<String>>,
    /// Input topic.
    #[serde(rename = "in")]
    pub input: Option<Located<String>>,
    /// Output topic (a function's outputs may also name their own topics).
    pub out: Option<Located<String>>,
    /// Schedule of a supplier, e.g. `1s`.
    pub every: Option<Located<String>>,
    /// Configuration values the function can read, as text.
    pub config: Option<BTreeMap<String, ScalarText>>,
    /// Limits for this binding, over `functions.limits`.
    pub limits: Option<RawLimits>,
    /// Dead-letter topic for records that fail; default `<binding>.dlq`.
    pub dlq: Option<Located<String>>,
    /// `at-least-once` (default) or `exactly-once` (Kafka transactions).
    pub guarantee: Option<Located<String>>,
}

/// One entry of `analytics:` — a windowed aggregation materialised as a named store.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStage {
    /// Input topic.
    #[serde(rename = "in")]
    pub input: Option<Located<String>>,
    /// Optional function (function world) run on each record before windowing.
    pub function: Option<Located<String>>,
    /// Configuration values for that function, as text.
    pub config: Option<BTreeMap<String, ScalarText>>,
    /// Limits for that function, over `functions.limits`.
    pub limits: Option<RawLimits>,
    /// Grouping key: a JSON pointer into the value (e.g. `/name`) or `record-key`.
    pub key: Option<Located<String>>,
    /// The window.
    pub window: Option<Located<RawWindow>>,
    /// What to compute per key and window: `count`, `{ sum|min|max|avg: /pointer }`,
    /// `{ function: NAME }` (an aggregator function), or a map of names to those (the
    /// window's value is then an object).
    // Validation reads it from the tree, which tells the two forms apart.
    #[schemars(with = "Option<AggregateSchema>")]
    pub aggregate: Option<serde::de::IgnoredAny>,
    /// `final` (default: one result per window when it closes) or `changes`.
    pub emit: Option<Located<String>>,
    /// With `emit: changes`: at most one update per window this often; default `1s`.
    pub emit_every: Option<Located<String>>,
    /// Topic receiving window results.
    pub out: Option<Located<String>>,
    /// SSE route serving the live results, e.g. `/analytics`.
    pub serve: Option<Located<String>>,
    /// Dead-letter topic for late and bad records; default
    /// `<application-id>.<store>.dlq`.
    pub dlq: Option<Located<String>>,
    /// `at-least-once` (default) or `exactly-once` (Kafka transactions).
    pub guarantee: Option<Located<String>>,
}

/// `window:` of a store: one kind (`tumbling`, `hopping`, `sliding`, `session`), its
/// `grace` and `idle`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawWindow {
    /// Fixed windows of this length, e.g. `5s`.
    pub tumbling: Option<Located<String>>,
    /// Overlapping fixed windows: `{ size: 1m, advance: 10s }`.
    pub hopping: Option<Located<RawHopping>>,
    /// Kafka Streams' sliding windows with this time difference, e.g. `30s`.
    pub sliding: Option<Located<String>>,
    /// Per-key sessions: `{ gap: 30s }`.
    pub session: Option<Located<RawSession>>,
    /// How long after its end a window still accepts late records; default `0s`.
    pub grace: Option<Located<String>>,
    /// Close windows of an input quiet this long on the wall clock; `off`: never
    /// (Kafka Streams); default `5s`.
    pub idle: Option<Located<String>>,
}

/// `hopping:` of a window.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHopping {
    /// Window length, e.g. `1m`.
    pub size: Option<Located<String>>,
    /// How often a window starts, e.g. `10s`; at most `size`.
    pub advance: Option<Located<String>>,
}

/// `session:` of a window.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSession {
    /// Inactivity that ends a session, e.g. `30s`.
    pub gap: Option<Located<String>>,
}

/// One aggregate: `count`, or `{ sum|min|max|avg: /json/pointer }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RawAggregate {
    /// Number of records.
    Count,
    /// Sum of the number at this pointer.
    Sum(Located<String>),
    /// Minimum of the number at this pointer.
    Min(Located<String>),
    /// Maximum of the number at this pointer.
    Max(Located<String>),
    /// Average of the number at this pointer.
    Avg(Located<String>),
    /// A user-defined aggregate: the function (world `aggregator`) of this name in
    /// the functions folder, e.g. `{ function: p95 }`.
    Function(Located<String>),
}

/// The shapes `aggregate:` takes, for the JSON Schema only (validation reads the
/// tree).
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum AggregateSchema {
    /// One aggregate: the window's value is a number.
    One(RawAggregate),
    /// Named aggregates: the window's value is an object with these names.
    Named(BTreeMap<String, RawAggregate>),
}

/// The names of [`RawAggregate`]'s forms.
pub const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg", "function"];

/// `http:` — the dashboard and SSE server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHttp {
    /// Socket address to listen on; default `127.0.0.1:8080`. Any address other than
    /// a loopback one needs `token`.
    pub listen: Option<Located<String>>,
    /// The API token (at least 16 characters; e.g. `${KFN_HTTP_TOKEN}`, or set the
    /// `KFN_HTTP_TOKEN` environment variable, which wins over this). Requests that
    /// change state (publishing a record) must send `Authorization: Bearer <token>`.
    /// Required when `listen` is not a loopback address.
    pub token: Option<Located<String>>,
    /// What the token guards: `writes` (default: state-changing routes; the
    /// dashboard, the JSON API, the SSE feeds and `/metrics` stay open) or `all`
    /// (every route but `/healthz`, `/readyz` and the dashboard's files; the
    /// dashboard then sends the token as a same-site cookie for what it reads).
    pub auth: Option<Located<String>>,
}
