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

pub mod live;
mod services;
mod topics;

use live::{StoreParts, Topics, Topology};
use services::{load_all, probe_broker, sample_rates};
use topics::{create_missing, internal, topics};

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::http::{self, Access, Cluster, Health, HttpState, Info};
use crate::kafka::{EmbeddedBroker, KafkaSettings, Sink};
use crate::observe::{Bindings, EventKind, Events};
use crate::pipeline;
use crate::wasm::{Registry, WasmEngine};
use crate::window::WindowStore;

/// Partitions of the topics kfn creates on the embedded broker, and of missing inputs
/// on a real cluster (outputs follow their input there: `topics::create_missing`).
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
    /// The API token from outside the file (`KFN_HTTP_TOKEN`); wins over
    /// `http.token`.
    pub token: Option<String>,
}

/// A running kfn.
pub struct App {
    pub http_addr: SocketAddr,
    pub bootstrap: String,
    pub registry: Arc<Registry>,
    pub events: Events,
    pub stores: BTreeMap<String, Arc<WindowStore>>,
    /// The bindings running now (they change with kfn.yaml).
    pub bindings: Bindings,
    /// Applies a valid config as if kfn.yaml had been saved with it.
    reconfigure: tokio::sync::mpsc::UnboundedSender<(String, Config)>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    services: JoinSet<()>,
    sink: Sink,
    // Dropped last: the broker outlives every client.
    _broker: Option<Arc<EmbeddedBroker>>,
}

impl App {
    /// Starts everything: broker (if embedded), functions, bindings, stores, HTTP.
    pub async fn start(config: Config, options: Options) -> anyhow::Result<App> {
        let events = Events::new();
        let shutdown = CancellationToken::new();

        let listen = options.listen.unwrap_or(config.http.listen);
        let access = access(&config.http, options.token.as_deref(), listen)?;
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
            transactions: config.kafka.transactions,
        };
        let sink = Sink::new(&settings).context("creating the Kafka producer")?;
        if broker.is_none() {
            create_missing(&settings, &sink, &config, PARTITIONS).await?;
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

        // Each binding and stage builds itself; the topology runs them and applies
        // a changed kfn.yaml (`live`); this only wires what they return.
        let ctx = pipeline::Context {
            settings: settings.clone(),
            sink: sink.clone(),
            registry: registry.clone(),
            events: events.clone(),
            shutdown: shutdown.clone(),
        };
        let broker = broker.map(Arc::new);
        let topic_maker = match &broker {
            Some(b) => Topics::Embedded(b.clone()),
            None => Topics::Cluster {
                settings: settings.clone(),
                sink: sink.clone(),
            },
        };
        let (topology, parts) = Topology::start(ctx, config.clone(), topic_maker)?;
        let bindings = topology.bindings();
        let (reconfigure, changes) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(topology.run(changes));
        let StoreParts {
            stores,
            routes: store_routes,
        } = parts;

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
                Some(reconfigure.clone()),
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
                token: access.token.clone(),
            },
            events: events.clone(),
            sink: sink.clone(),
            health,
            access: Arc::new(access),
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
            reconfigure,
            shutdown,
            tasks,
            services,
            sink,
            _broker: broker,
        })
    }

    /// Applies `config` as a save of kfn.yaml would (the watcher does this on its
    /// own): the difference starts, stops or restarts; the rest runs on.
    pub fn reconfigure(&self, config: Config) {
        let _ = self.reconfigure.send(("kfn.yaml".into(), config));
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

/// The API token (`KFN_HTTP_TOKEN` over `http.token`) and what it guards. Without
/// one, only a loopback address is allowed: anyone who can reach the port could
/// otherwise publish to the cluster.
fn access(
    http: &config::HttpConfig,
    env: Option<&str>,
    listen: SocketAddr,
) -> anyhow::Result<Access> {
    let token = match env {
        Some(t) => {
            Some(config::HttpToken::new(t).map_err(|e| anyhow::anyhow!("KFN_HTTP_TOKEN: {e}"))?)
        }
        None => http.token.clone(),
    };
    if token.is_none() && !listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {listen} without an API token: anyone who can reach it could publish records. \
             Set http.token in kfn.yaml (e.g. `token: ${{KFN_HTTP_TOKEN}}`) or the KFN_HTTP_TOKEN environment variable \
             (e.g. KFN_HTTP_TOKEN=$(openssl rand -hex 32)), or listen on a loopback address such as 127.0.0.1:8080"
        );
    }
    if token.is_none() && http.auth == config::HttpAuth::All {
        anyhow::bail!(
            "http.auth is `all` but no API token is set: set http.token or KFN_HTTP_TOKEN"
        );
    }
    Ok(Access {
        token,
        auth: http.auth,
    })
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
