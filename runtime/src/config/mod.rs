//! `kfn.yaml`: the application's configuration, parsed and validated before anything
//! starts.
//!
//! Every mistake in the file is reported at once, each with `file:line:column`, its path
//! (`bindings.page-enricher.every`) and what to do about it.
//!
//! # How
//! 1. [`node`] reads the file into a span-preserving tree with `serde-saphyr` (chosen
//!    over the deprecated, unmaintained `serde_yaml`; see there). Only a YAML syntax
//!    error stops here. [`env`] then replaces `${NAME}` references with environment
//!    variables.
//! 2. [`validate`] deserializes each section, binding and store separately from its
//!    subtree into the serde shapes of [`raw`] (through [`node_de`]), so one broken entry
//!    does not hide the others, then checks the rules between fields and entries
//!    ([`units`], [`names`], [`catalog`]), collecting every problem.
//! 3. The result is a [`Config`] whose values are resolved: defaults applied, limits
//!    merged, durations and sizes parsed, paths joined, dead-letter topics named.
//!
//! [`schema`] makes the JSON Schema and the key reference of kfn.yaml from the [`raw`]
//! shapes and their doc comments (`kfn schema`, `kfn reference`).

mod catalog;
mod env;
mod error;
mod names;
mod node;
mod node_de;
mod raw;
mod schema;
mod units;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors};
pub use names::check_name;
pub use schema::{json_schema, reference};

/// The defaults of every optional setting, in one place.
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    /// `kafka.application-id` on the embedded broker (the app's own): the consumer
    /// group prefix. A real cluster has no default: two apps would share groups.
    pub const APPLICATION_ID: &str = "kfn";
    /// `functions.dir`, relative to kfn.yaml.
    pub const FUNCTIONS_DIR: &str = "functions";
    /// `limits.memory`: 64 MiB of linear memory per function instance.
    pub const MEMORY_BYTES: u64 = 64 << 20;
    /// `limits.cpu-time`: deadline of one call.
    pub const CPU_TIME: Duration = Duration::from_secs(1);
    /// The most instances `limits.instances: auto` gives a function: past a few, a
    /// binding is bound by reading and writing Kafka, not by its function.
    pub const MAX_AUTO_INSTANCES: usize = 4;

    /// `limits.instances: auto` (the default): an instance per core but one, which
    /// is left to reading and writing Kafka (librdkafka's threads and the record
    /// loops), up to [`MAX_AUTO_INSTANCES`]. On 2 cores that is one: a second
    /// instance bought a JavaScript binding 1.29× there, but nothing for Rust or
    /// Python, whose second core is busy with Kafka already.
    pub fn instances() -> usize {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .clamp(1, MAX_AUTO_INSTANCES)
    }
    /// Calls per failing record before it is dead-lettered: a retry or two absorbs a
    /// transient failure; a bounded number means a poison record never stalls a
    /// partition.
    pub const ATTEMPTS: u32 = 3;
    /// `limits.state`: the largest state an aggregator may keep per window. A
    /// window's state goes to the changelog as one record, which must fit in
    /// [`MESSAGE_MAX_BYTES`] (Kafka's default is about 1 MB) with its key.
    pub const STATE_BYTES: u64 = 512 << 10;
    /// librdkafka's default `message.max.bytes`.
    pub const MESSAGE_MAX_BYTES: u64 = 1_000_000;
    /// Room left in a changelog record beside the state: key, window, built-ins.
    pub const CHANGELOG_OVERHEAD: u64 = 16 << 10;
    /// First retry delay (then 200 ms, 400 ms, ... up to 1 s).
    pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);
    /// `kafka.commit-interval`: how often an exactly-once binding or stage commits its
    /// transaction (Kafka Streams' default under exactly-once too). Larger
    /// transactions cost the broker less; shorter ones make results visible to
    /// `read_committed` readers sooner.
    pub const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
    /// `kafka.transaction-records`: records per transaction at most.
    pub const TRANSACTION_RECORDS: usize = 20_000;
    /// `window.grace`: no late records.
    pub const GRACE: Duration = Duration::ZERO;
    /// `window.idle`: an input partition that receives nothing for this long, with
    /// nothing left to read, closes its windows on the wall clock. Long enough that a
    /// busy or briefly stalled consumer is not taken for idle, short enough that a
    /// quiet stream's last window shows up soon.
    pub const IDLE: Duration = Duration::from_secs(5);
    /// `emit-every` of `emit: changes`: at most one update per window per second.
    pub const EMIT_EVERY: Duration = Duration::from_secs(1);
    /// `http.listen`: local only.
    pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

    /// The dead-letter topic of a binding that does not name one.
    pub fn dead_letter_topic(name: &str) -> String {
        format!("{name}.dlq")
    }

    /// The dead-letter topic of a store that does not name one: with the application
    /// id, so two applications with a store of the same name do not share it.
    pub fn store_dead_letter_topic(application_id: &str, store: &str) -> String {
        format!("{application_id}.{store}.dlq")
    }
}

/// A validated kfn.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How to reach Kafka.
    pub kafka: KafkaConfig,
    /// Where the functions are and their default limits.
    pub functions: FunctionsConfig,
    /// Functions bound to topics, by binding name.
    pub bindings: BTreeMap<String, BindingConfig>,
    /// Windowed aggregations, by store name.
    pub analytics: BTreeMap<String, AnalyticsConfig>,
    /// The HTTP server (dashboard and SSE routes).
    pub http: HttpConfig,
    /// The folder of the yaml file; relative paths in it are relative to this.
    pub base_dir: PathBuf,
}

/// When an exactly-once binding or stage commits: every `interval`, or after
/// `records` records, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transactions {
    pub interval: Duration,
    pub records: usize,
}

impl Default for Transactions {
    fn default() -> Self {
        Self {
            interval: defaults::COMMIT_INTERVAL,
            records: defaults::TRANSACTION_RECORDS,
        }
    }
}

/// `kafka:`.
#[derive(Clone, PartialEq)]
pub struct KafkaConfig {
    /// Which broker.
    pub brokers: Brokers,
    /// Prefix of every consumer group kfn creates.
    pub application_id: String,
    /// Extra librdkafka properties, as text (paths already resolved against the
    /// file's folder).
    pub properties: BTreeMap<String, String>,
    /// `commit-interval` and `transaction-records`.
    pub transactions: Transactions,
}

impl std::fmt::Debug for KafkaConfig {
    /// Secrets show as `***`: a debug print of the config must not leak them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("application_id", &self.application_id)
            .field("properties", &redacted(&self.properties))
            .field("transactions", &self.transactions)
            .finish()
    }
}

/// Whether a librdkafka property holds a secret (a password, a client secret, a
/// private key or a JAAS-style config string): never logged, shown or echoed.
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password")
        || name.contains("secret")
        || name.ends_with("key.pem")
        || name == "sasl.oauthbearer.config"
        || name == "sasl.jaas.config"
}

/// The properties with every secret value replaced by `***`.
pub fn redacted(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_property(k) {
                "***"
            } else {
                v.as_str()
            };
            (k.as_str(), shown)
        })
        .collect()
}

/// Which Kafka broker to use.
#[derive(Debug, Clone, PartialEq)]
pub enum Brokers {
    /// A broker inside the process (development).
    Embedded,
    /// A real cluster: the bootstrap list `host:port[,host:port...]`.
    Bootstrap(String),
}

/// `functions:`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionsConfig {
    /// The functions folder, already joined with [`Config::base_dir`].
    pub dir: PathBuf,
    /// Default limits of every function.
    pub limits: Limits,
}

/// Resource limits of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Linear memory cap, in bytes.
    pub memory_bytes: u64,
    /// Deadline of one call.
    pub cpu_time: Duration,
    /// Calls per record (a guest error or trap is retried) before dead-lettering.
    pub attempts: u32,
    /// Wait before the first retry; it doubles per retry, up to ten times this.
    pub retry_backoff: Duration,
    /// Largest state an aggregator function may keep per window, in bytes.
    pub state_bytes: u64,
    /// Instances of a binding's function that share each read batch, each on a
    /// thread of its own (an aggregator has one: it keeps the windows' order).
    pub instances: usize,
}

/// What a binding does with its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingKind {
    /// Called every `every`; writes to `output`.
    Supplier,
    /// Called per record of `input`; writes nothing.
    Consumer,
    /// Called per record of `input`; writes to `output` (or topics it names).
    Function,
}

/// One entry of `bindings:`.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingConfig {
    /// Supplier, consumer or function.
    pub kind: BindingKind,
    /// The function's name (`<functions.dir>/<name>.wasm`).
    pub function: String,
    /// Input topic; set for consumers and functions.
    pub input: Option<String>,
    /// Output topic; set for suppliers and functions.
    pub output: Option<String>,
    /// Schedule; set for suppliers.
    pub every: Option<Duration>,
    /// Values the function can read.
    pub config: BTreeMap<String, String>,
    /// Limits, merged over `functions.limits`.
    pub limits: Limits,
    /// Dead-letter topic, resolved (default `<binding>.dlq`).
    pub dlq: String,
    /// Delivery guarantee of the binding's record path.
    pub guarantee: Guarantee,
}

/// What a record-driven binding promises about its effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guarantee {
    /// Offsets move only after effects are acknowledged; a crash may repeat effects.
    #[default]
    AtLeastOnce,
    /// Effects and offsets commit together in a Kafka transaction.
    ExactlyOnce,
}

/// One entry of `analytics:`: a windowed aggregation materialised as a store.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsConfig {
    /// Input topic.
    pub input: String,
    /// Optional function run on each record before windowing.
    pub function: Option<String>,
    /// Values that function can read.
    pub config: BTreeMap<String, String>,
    /// That function's limits, merged over `functions.limits`.
    pub limits: Limits,
    /// How records are grouped.
    pub key: KeySelector,
    /// The window.
    pub window: WindowConfig,
    /// What is computed per key and window.
    pub aggregate: Aggregates,
    /// When results go to `output`.
    pub emit: EmitConfig,
    /// Topic receiving window results.
    pub output: Option<String>,
    /// SSE route serving live results.
    pub serve: Option<String>,
    /// Dead-letter topic (late and bad records), resolved (default
    /// `<application-id>.<store>.dlq`).
    pub dlq: String,
    /// Delivery guarantee of the stage's record path and its state changes.
    pub guarantee: Guarantee,
}

impl AnalyticsConfig {
    /// Whether the stage's input must be repartitioned by the group key (through an
    /// internal topic) so that each key's windows live in one partition. Input grouped
    /// by its own record key, with no function to change it, is partitioned already.
    pub fn repartitions(&self) -> bool {
        self.function.is_some() || self.key != KeySelector::RecordKey
    }
}

/// The grouping key of a store.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySelector {
    /// A JSON pointer (RFC 6901) into the record's JSON value, e.g. `/name`.
    JsonPointer(String),
    /// The Kafka record key.
    RecordKey,
}

/// The windows of a store.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// Which windows.
    pub kind: WindowKind,
    /// How long after its end (by stream time) a window still accepts records.
    pub grace: Duration,
    /// How long a quiet input partition waits before closing windows on the wall
    /// clock; `None`: only stream time closes windows (Kafka Streams).
    pub idle: Option<Duration>,
}

/// The kinds of window; every duration is greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of this length.
    Tumbling(Duration),
    /// Fixed windows of `size` starting every `advance` (at most `size`).
    Hopping { size: Duration, advance: Duration },
    /// Kafka Streams' sliding windows with this time difference.
    Sliding(Duration),
    /// Per-key sessions closed by this much inactivity.
    Session { gap: Duration },
}

/// One aggregate or several named ones.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregates {
    /// `aggregate: count`: the value is a number.
    One(Aggregate),
    /// `aggregate: { views: count, avg_ms: { avg: /duration } }`: the value is an
    /// object with these names, in this order (the file's).
    Named(Vec<(String, Aggregate)>),
}

/// When a store reports to its `out` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitConfig {
    /// Once per window, when it closes.
    Final,
    /// Every change, at most once per `every` per window, and the final value.
    Changes { every: Duration },
}

/// What a store computes per key and window; pointers are JSON pointers to a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregate {
    /// Number of records.
    Count,
    /// Sum.
    Sum(String),
    /// Minimum.
    Min(String),
    /// Maximum.
    Max(String),
    /// Average.
    Avg(String),
    /// A user-defined aggregate: the named function of world `aggregator`.
    Function(String),
}

impl Aggregates {
    /// The aggregator function it calls, if any (a stage calls at most one).
    pub fn function(&self) -> Option<&str> {
        fn function(a: &Aggregate) -> Option<&str> {
            match a {
                Aggregate::Function(f) => Some(f.as_str()),
                _ => None,
            }
        }
        match self {
            Aggregates::One(a) => function(a),
            Aggregates::Named(list) => list.iter().find_map(|(_, a)| function(a)),
        }
    }
}

/// `http:`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// The API token, if set in the file (`KFN_HTTP_TOKEN` wins over it at start).
    pub token: Option<HttpToken>,
    /// What the token guards.
    pub auth: HttpAuth,
}

/// What `http.token` guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpAuth {
    /// Routes that change state; reading stays open.
    #[default]
    Writes,
    /// Every route but the orchestrator probes (`/healthz`, `/readyz`).
    All,
}

/// An API token. Its `Debug` never shows it, and it is compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpToken(String);

impl HttpToken {
    /// Fewer characters than this are guessable: refused.
    pub const MIN_LEN: usize = 16;

    pub fn new(token: &str) -> Result<HttpToken, TokenError> {
        let token = token.trim();
        if token.chars().count() < Self::MIN_LEN {
            return Err(TokenError::TooShort);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotPrintable);
        }
        Ok(HttpToken(token.to_owned()))
    }

    /// Whether `given` is this token, in time that does not depend on where they
    /// differ: both are hashed first (BLAKE3, whose `Hash` compares in constant
    /// time), so not even the length shows.
    pub fn matches(&self, given: &[u8]) -> bool {
        blake3::hash(self.0.as_bytes()) == blake3::hash(given)
    }

    /// The token itself, e.g. for a client in a test.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HttpToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpToken(***)")
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the API token must have at least {} characters (e.g. `openssl rand -hex 32`)",
        HttpToken::MIN_LEN
    )]
    TooShort,
    #[error("the API token must be printable ASCII without spaces (it goes in an HTTP header)")]
    NotPrintable,
}

impl Config {
    /// Reads and validates the file at `path`; errors name it as given.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot read the configuration file: {err}"),
            }])
        })?;
        let base_dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Config::parse(&text, &file, base_dir)
    }

    /// Validates `text`; `file_name` is how errors name the file, `base_dir` what
    /// relative paths are relative to.
    pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        Config::parse_with_env(text, file_name, base_dir, &|name| std::env::var(name).ok())
    }

    /// [`Config::parse`] with `env` as the environment of `${NAME}` references.
    pub fn parse_with_env(
        text: &str,
        file_name: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let problems = match node::parse(text) {
            Ok(mut root) => {
                let unset = env::substitute(&mut root, env);
                match validate::build(&root, base_dir) {
                    Ok(config) if unset.is_empty() => return Ok(config),
                    Ok(_) => unset,
                    // A value left as `${NAME}` fails its own check too: say it once.
                    Err(mut problems) => {
                        problems.retain(|p| !unset.iter().any(|u| u.pos == p.pos));
                        problems.extend(unset);
                        problems.sort_by_key(|p| p.pos);
                        problems
                    }
                }
            }
            Err(syntax) => vec![validate::Problem {
                pos: syntax.pos,
                path: String::new(),
                message: format!("invalid YAML: {}", syntax.message),
            }],
        };
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|p| ConfigError {
                    file: file_name.to_owned(),
                    line: p.pos.line,
                    column: p.pos.column,
                    path: p.path,
                    message: p.message,
                })
                .collect(),
        ))
    }

    /// The names of all functions referenced by bindings and analytics.
    pub fn referenced_functions(&self) -> BTreeSet<String> {
        let bound = self.bindings.values().map(|b| b.function.clone());
        let staged = self.analytics.values().flat_map(|a| {
            a.function
                .iter()
                .cloned()
                .chain(a.aggregate.function().map(str::to_owned))
        });
        bound.chain(staged).collect()
    }
}

#[cfg(test)]
mod fixtures;
