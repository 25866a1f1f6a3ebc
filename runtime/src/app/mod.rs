//! Builds every stage from the config, connects them, and owns shutdown.
//!
//! ```text
//!   supplier ──▶ topic ──▶ source ──▶ wasm function ──▶ sink ──▶ topic ──▶ …
//!                              │                           └──▶ <binding>.dlq
//!                              └──▶ [wasm step] ──▶ <store>.repartition (by group key)
//!                                                        │
//!                    changelog ◀── window store ◀── source (per partition)
//!                                       ├──▶ out topic (closed windows)
//!                                       └──▶ HTTP / SSE (gathered across instances)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod run;
mod services;
mod topics;

use run::{run_binding, source};
use services::{load_all, probe_broker, sample_rates};
use topics::{create_app_topics, create_internal, internal, topics};

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::http::{self, Cluster, Health, HttpState, Info, StoreRoute};
use crate::kafka::{EmbeddedBroker, KafkaSettings, Sink};
use crate::observe::{BindingKind, BindingStats, EventKind, Events};
use crate::pipeline::{
    self, AggregateInput, AnalyticsStep, Binding, ConsumerStep, Extract, FunctionStep, KeySelector,
    RepartitionStep, Restorer, Retry, ValueSelector,
};
use crate::wasm::{GuestIdentity, Limits, Registry, WasmEngine, Worker, World};
use crate::window::{AggregateKind, WindowSpec, WindowStore, changelog};

/// Partitions of the topics kfn creates on the embedded broker, and of missing inputs
/// on a real cluster (outputs follow their input there: `topics::create_app_topics`).
const PARTITIONS: i32 = 3;
/// How long shutdown waits for bindings to drain before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Options of `kfn up` that are not in the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overrides `http.listen` (port 0 picks a free port).
    pub listen: Option<SocketAddr>,
    /// Watch `functions/` and the config file for changes.
    pub watch: bool,
    /// The config file, for re-validation on change.
    pub config_path: Option<PathBuf>,
    /// The compile cache; default `.kfn/cache` beside the config.
    pub cache_dir: Option<PathBuf>,
    /// This instance's name among the instances of one application (default: its
    /// advertised address). Keep it stable across restarts of the same instance.
    pub instance: Option<String>,
    /// Where the other instances reach this one's HTTP API (default: the listen
    /// address, with the host name if it listens on all interfaces).
    pub advertise: Option<String>,
}

/// A running kfn.
pub struct App {
    pub http_addr: SocketAddr,
    pub bootstrap: String,
    pub registry: Arc<Registry>,
    pub events: Events,
    pub stores: BTreeMap<String, Arc<WindowStore>>,
    pub bindings: Vec<Arc<BindingStats>>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    services: JoinSet<()>,
    sink: Sink,
    // Dropped last: the broker outlives every client.
    _broker: Option<EmbeddedBroker>,
}

impl App {
    /// Starts everything: broker (if embedded), functions, bindings, stores, HTTP.
    pub async fn start(config: Config, options: Options) -> anyhow::Result<App> {
        let events = Events::new();
        let shutdown = CancellationToken::new();

        let listen = options.listen.unwrap_or(config.http.listen);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (http.listen); is another kfn running? use --listen to pick another address"))?;
        let http_addr = listener.local_addr()?;
        let advertise = options
            .advertise
            .clone()
            .unwrap_or_else(|| advertised(http_addr));
        let instance = options
            .instance
            .clone()
            .unwrap_or_else(|| advertise.clone());

        let (broker, bootstrap) = match &config.kafka.brokers {
            config::Brokers::Embedded => {
                let broker = tokio::task::spawn_blocking(EmbeddedBroker::start).await??;
                let bootstrap = broker.bootstrap().to_string();
                for topic in topics(&config).into_iter().chain(internal(&config)) {
                    broker.create_topic(&topic, PARTITIONS)?;
                }
                (Some(broker), bootstrap)
            }
            config::Brokers::Bootstrap(servers) => (None, servers.clone()),
        };
        let settings = KafkaSettings {
            bootstrap: bootstrap.clone(),
            embedded: broker.is_some(),
            application_id: config.kafka.application_id.clone(),
            properties: config.kafka.properties.clone(),
            instance: instance.clone(),
            advertise: Some(advertise.clone()),
        };
        let sink = Sink::new(&settings).context("creating the Kafka producer")?;
        if broker.is_none() {
            create_app_topics(&settings, &sink, &config, PARTITIONS).await;
            create_internal(&settings, &sink, &config).await?;
        }

        let cache_dir = options
            .cache_dir
            .clone()
            .unwrap_or_else(|| config.base_dir.join(".kfn").join("cache"));
        let engine = WasmEngine::new(Some(cache_dir))?;
        let registry = Registry::new(engine.clone(), events.clone());
        load_all(
            &registry,
            &config.functions.dir,
            &config.referenced_functions(),
        )
        .await;

        let mut tasks = JoinSet::new();
        let mut bindings = Vec::new();
        let worker = |binding: &str,
                      function: &str,
                      cfg: &BTreeMap<String, String>,
                      limits: &config::Limits,
                      world| {
            Worker::new(
                engine.clone(),
                registry.slot(function),
                GuestIdentity {
                    binding: binding.into(),
                    function: function.into(),
                },
                cfg.clone(),
                Limits {
                    memory_bytes: limits.memory_bytes,
                    cpu_time: limits.cpu_time,
                },
                world,
            )
        };

        for (name, b) in &config.bindings {
            let kind = match b.kind {
                config::BindingKind::Supplier => BindingKind::Supplier,
                config::BindingKind::Function => BindingKind::Function,
                config::BindingKind::Consumer => BindingKind::Consumer,
            };
            let stats = BindingStats::new(
                name,
                kind,
                Some(b.function.clone()),
                b.input.clone(),
                b.output.clone(),
            );
            bindings.push(stats.clone());
            let world = match kind {
                BindingKind::Supplier => World::Supplier,
                BindingKind::Consumer => World::Consumer,
                _ => World::Function,
            };
            let w = worker(name, &b.function, &b.config, &b.limits, world);
            if kind == BindingKind::Supplier {
                let every = b
                    .every
                    .context("supplier without `every` passed validation")?;
                let out = b
                    .output
                    .clone()
                    .context("supplier without `out` passed validation")?;
                tasks.spawn(pipeline::run_supplier(pipeline::Supplier {
                    name: name.clone(),
                    function: b.function.clone(),
                    worker: w,
                    sink: sink.clone(),
                    out,
                    every,
                    stats,
                    events: events.clone(),
                    shutdown: shutdown.clone(),
                }));
                continue;
            }
            let input = b
                .input
                .clone()
                .context("binding without `in` passed validation")?;
            let binding = Binding {
                name: name.clone(),
                function: Some(b.function.clone()),
                source: source(&settings, name, &input, b.guarantee)
                    .with_context(|| format!("binding {name}: subscribing to {input}"))?,
                sink: sink.clone(),
                out: b.output.clone(),
                dlq: b.dlq.clone(),
                stats,
                events: events.clone(),
                shutdown: shutdown.clone(),
            };
            let retry = retry(&b.limits);
            if kind == BindingKind::Consumer {
                tasks.spawn(run_binding(
                    settings.clone(),
                    b.guarantee,
                    binding,
                    ConsumerStep(w, retry),
                ));
            } else {
                tasks.spawn(run_binding(
                    settings.clone(),
                    b.guarantee,
                    binding,
                    FunctionStep(w, retry),
                ));
            }
        }

        let mut stores = BTreeMap::new();
        let mut store_routes = BTreeMap::new();
        for (name, a) in &config.analytics {
            let (aggregate, value) = match &a.aggregate {
                config::Aggregate::Count => (AggregateKind::Count, ValueSelector::One),
                config::Aggregate::Sum(p) => {
                    (AggregateKind::Sum, ValueSelector::Pointer(p.clone()))
                }
                config::Aggregate::Min(p) => {
                    (AggregateKind::Min, ValueSelector::Pointer(p.clone()))
                }
                config::Aggregate::Max(p) => {
                    (AggregateKind::Max, ValueSelector::Pointer(p.clone()))
                }
                config::Aggregate::Avg(p) => {
                    (AggregateKind::Avg, ValueSelector::Pointer(p.clone()))
                }
            };
            let spec = WindowSpec {
                size_ms: millis(a.window.tumbling),
                grace_ms: millis(a.window.grace),
            };
            let store = Arc::new(WindowStore::new(name, spec, aggregate, a.serve.clone()));
            stores.insert(name.clone(), store.clone());
            let extract = Extract {
                key: match &a.key {
                    config::KeySelector::JsonPointer(p) => KeySelector::Pointer(p.clone()),
                    config::KeySelector::RecordKey => KeySelector::RecordKey,
                },
                value,
            };
            let app_id = &config.kafka.application_id;
            let aggregated = if a.repartitions() {
                // Step 1: function, key and value, to the repartition topic by group key.
                let topic = changelog::repartition_topic(app_id, name);
                let stage = format!("{name}.repartition");
                let stats = BindingStats::new(
                    &stage,
                    BindingKind::Repartition,
                    a.function.clone(),
                    Some(a.input.clone()),
                    Some(topic.clone()),
                );
                bindings.push(stats.clone());
                let binding = Binding {
                    name: stage.clone(),
                    function: a.function.clone(),
                    source: source(&settings, &stage, &a.input, a.guarantee)
                        .with_context(|| format!("analytics {name}: subscribing to {}", a.input))?,
                    sink: sink.clone(),
                    out: Some(topic.clone()),
                    dlq: a.dlq.clone(),
                    stats,
                    events: events.clone(),
                    shutdown: shutdown.clone(),
                };
                let step = RepartitionStep {
                    worker: a
                        .function
                        .as_ref()
                        .map(|f| worker(name, f, &a.config, &a.limits, World::Function)),
                    retry: retry(&a.limits),
                    extract: extract.clone(),
                };
                tasks.spawn(run_binding(settings.clone(), a.guarantee, binding, step));
                topic
            } else {
                a.input.clone()
            };

            // Step 2: the windows, per partition of what is aggregated.
            let stats = BindingStats::new(
                name,
                BindingKind::Analytics,
                None,
                Some(aggregated.clone()),
                a.output.clone(),
            );
            bindings.push(stats.clone());
            let source = source(&settings, name, &aggregated, a.guarantee)
                .with_context(|| format!("analytics {name}: subscribing to {aggregated}"))?;
            let ownership = source.ownership();
            store_routes.insert(
                name.clone(),
                StoreRoute {
                    group: settings.group_id(name),
                    topic: aggregated.clone(),
                },
            );
            let restorer = Arc::new(Restorer {
                settings: settings.clone(),
                changelog: changelog::topic(app_id, name),
                store,
                stats: stats.clone(),
                events: events.clone(),
                shutdown: shutdown.clone(),
            });
            let step = AnalyticsStep {
                input: if a.repartitions() {
                    AggregateInput::Repartitioned
                } else {
                    AggregateInput::Direct(extract)
                },
                restorer: restorer.clone(),
                ownership: ownership.clone(),
            };
            let binding = Binding {
                name: name.clone(),
                function: None,
                source,
                sink: sink.clone(),
                out: a.output.clone(),
                dlq: a.dlq.clone(),
                stats: stats.clone(),
                events: events.clone(),
                shutdown: shutdown.clone(),
            };
            tasks.spawn(run_binding(settings.clone(), a.guarantee, binding, step));
            tasks.spawn(pipeline::run_closer(
                restorer,
                ownership,
                sink.clone(),
                a.output.clone(),
                stats,
            ));
        }

        let mut services = JoinSet::new();
        let health = Arc::new(Health::default());
        services.spawn(sample_rates(bindings.clone(), shutdown.clone()));
        services.spawn(probe_broker(
            sink.clone(),
            health.clone(),
            events.clone(),
            shutdown.clone(),
        ));
        if options.watch {
            let handle = crate::watch::spawn(
                config.functions.dir.clone(),
                options.config_path.clone(),
                registry.clone(),
                events.clone(),
                shutdown.clone(),
            )
            .with_context(|| format!("watching {}", config.functions.dir.display()))?;
            services.spawn(async move {
                let _ = handle.await;
            });
        }

        let state = Arc::new(HttpState {
            info: Info {
                version: env!("CARGO_PKG_VERSION"),
                bootstrap: bootstrap.clone(),
                config: options
                    .config_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                broker: if broker.is_some() {
                    "embedded"
                } else {
                    "external"
                },
                instance: instance.clone(),
                advertise: advertise.clone(),
            },
            registry: registry.clone(),
            bindings: bindings.clone(),
            stores: stores.clone(),
            cluster: Cluster {
                advertise: advertise.clone(),
                routes: store_routes,
            },
            events: events.clone(),
            sink: sink.clone(),
            health,
            static_dir: static_dir(&config.base_dir),
        });
        let router = http::app(state);
        let stop = shutdown.clone();
        services.spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });

        events.emit(
            EventKind::Info,
            "kfn",
            format!(
                "started: {} bindings and {} analytics stages, broker {bootstrap}",
                config.bindings.len(),
                config.analytics.len()
            ),
        );
        Ok(App {
            http_addr,
            bootstrap,
            registry,
            events,
            stores,
            bindings,
            shutdown,
            tasks,
            services,
            sink,
            _broker: broker,
        })
    }

    /// The token that stops everything when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops fetching, drains in-flight records, commits offsets, stops HTTP.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("bindings did not drain within {DRAIN_TIMEOUT:?}; stopping anyway");
            self.tasks.abort_all();
        }
        self.sink.flush(Duration::from_secs(5));
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.services.join_next().await.is_some() {}
        })
        .await;
        self.services.abort_all();
    }
}

impl Drop for App {
    /// Dropped without [`App::shutdown`] (e.g. a panic): stop the tasks anyway.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The dashboard's files: a `static/` folder beside the config (this repository's, or
/// a user's own, edited without a rebuild), else the copy inside the binary.
fn static_dir(base: &Path) -> Option<PathBuf> {
    let beside = base.join("static");
    beside.join("index.html").exists().then_some(beside)
}

/// The address other instances use for this one: the listen address, or the host
/// name with its port when listening on every interface.
fn advertised(addr: SocketAddr) -> String {
    if !addr.ip().is_unspecified() {
        return addr.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", addr.port())
}

fn retry(limits: &config::Limits) -> Retry {
    Retry {
        attempts: limits.attempts,
        backoff: limits.retry_backoff,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
