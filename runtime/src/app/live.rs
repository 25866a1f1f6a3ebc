//! Live configuration: what runs, and applying a changed kfn.yaml to it without a
//! restart.
//!
//! Each binding and stage runs as a [`Unit`] with a shutdown token of its own (a
//! child of the app's). When the file changes and is valid, [`plan`] compares it with
//! what runs and [`Topology::apply`] carries out the difference:
//!
//! - a binding added starts; one removed drains (in-flight records finish, offsets
//!   are committed) and stops; one changed drains, then starts again from its new
//!   config, in the same consumer group, from the offsets the old one committed
//!   (nothing lost, nothing read twice);
//! - a binding or stage whose only change is its `config:` values keeps running: the
//!   new values are swapped into its function's [`LiveConfig`] and its next call
//!   reads them;
//! - everything else keeps running untouched: its consumer stays in its group, so no
//!   rebalance, no pause;
//! - what cannot change live (the `kafka:`, `functions.dir` and `http:` sections, and
//!   stages other than their `config:` values: a store is served by routes and read
//!   by other instances) keeps running as it was, and the event feed says a restart
//!   is needed to apply it.
//!
//! An invalid file never gets here: the watcher reports its errors and the app is
//! left as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DRAIN_TIMEOUT;
use crate::config::{AnalyticsConfig, BindingConfig, Config};
use crate::http::StoreRoute;
use crate::kafka::{EmbeddedBroker, KafkaSettings, Sink};
use crate::observe::{BindingStats, Bindings, EventKind, Events};
use crate::pipeline::{self, Built};
use crate::wasm::{FunctionStatus, LiveConfig, Registry};
use crate::window::WindowStore;

/// A binding or a stage, by its section and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Binding(String),
    Stage(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Binding(n) => write!(f, "bindings.{n}"),
            Key::Stage(n) => write!(f, "analytics.{n}"),
        }
    }
}

/// What a changed file asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub restart: Vec<String>,
    /// Only their `config:` values changed: swapped in place.
    pub update_config: Vec<Key>,
    /// Changes that need a restart of kfn, said as `section: why`.
    pub not_live: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self == &Plan::default()
    }

    /// One line for the event feed and the log.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let mut say = |what: &str, names: Vec<String>| {
            if !names.is_empty() {
                parts.push(format!("{what} {}", names.join(", ")));
            }
        };
        say("started", self.start.clone());
        say("stopped", self.stop.clone());
        say("restarted", self.restart.clone());
        say(
            "config values updated live for",
            self.update_config.iter().map(Key::to_string).collect(),
        );
        let mut line = if parts.is_empty() {
            "nothing to change".to_string()
        } else {
            parts.join("; ")
        };
        if !self.not_live.is_empty() {
            line.push_str(&format!(
                "; not applied (restart kfn to apply): {}",
                self.not_live.join("; ")
            ));
        }
        line
    }
}

/// The difference between what runs (`old`) and a valid new file (`new`).
pub fn plan(old: &Config, new: &Config) -> Plan {
    let mut p = Plan::default();
    for (name, b) in &new.bindings {
        match old.bindings.get(name) {
            None => p.start.push(name.clone()),
            Some(was) if was == b => {}
            Some(was) if same_but_config_binding(was, b) => {
                p.update_config.push(Key::Binding(name.clone()));
            }
            Some(_) => p.restart.push(name.clone()),
        }
    }
    p.stop = old
        .bindings
        .keys()
        .filter(|n| !new.bindings.contains_key(*n))
        .cloned()
        .collect();
    for (name, a) in &new.analytics {
        match old.analytics.get(name) {
            None => p.not_live.push(format!("analytics.{name} added")),
            Some(was) if was == a => {}
            Some(was) if same_but_config_stage(was, a) => {
                p.update_config.push(Key::Stage(name.clone()));
            }
            Some(_) => p.not_live.push(format!("analytics.{name} changed")),
        }
    }
    for name in old.analytics.keys() {
        if !new.analytics.contains_key(name) {
            p.not_live.push(format!("analytics.{name} removed"));
        }
    }
    if old.kafka != new.kafka {
        p.not_live.push("kafka changed".into());
    }
    if old.functions.dir != new.functions.dir {
        p.not_live.push("functions.dir changed".into());
    }
    if old.http != new.http {
        p.not_live.push("http changed".into());
    }
    p
}

fn same_but_config_binding(a: &BindingConfig, b: &BindingConfig) -> bool {
    let mut a = a.clone();
    a.config = b.config.clone();
    &a == b
}

fn same_but_config_stage(a: &AnalyticsConfig, b: &AnalyticsConfig) -> bool {
    let mut a = a.clone();
    a.config = b.config.clone();
    &a == b
}

/// One running binding or stage.
struct Unit {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    stats: Vec<Arc<BindingStats>>,
    config: Option<LiveConfig>,
}

impl Unit {
    /// Stops fetching, lets in-flight records finish and commits, then returns.
    async fn drain(mut self) {
        self.shutdown.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("a binding did not drain within {DRAIN_TIMEOUT:?}; stopping it anyway");
            self.tasks.abort_all();
        }
    }
}

/// Where topics for new bindings are made.
pub(super) enum Topics {
    Embedded(Arc<EmbeddedBroker>),
    Cluster { settings: KafkaSettings, sink: Sink },
}

/// What a stage contributes to the HTTP layer.
pub(super) struct StoreParts {
    pub stores: BTreeMap<String, Arc<WindowStore>>,
    pub routes: BTreeMap<String, StoreRoute>,
}

/// Everything that runs, and how to change it.
pub(super) struct Topology {
    ctx: pipeline::Context,
    config: Config,
    units: BTreeMap<Key, Unit>,
    bindings: Bindings,
    registry: Arc<Registry>,
    events: Events,
    topics: Topics,
}

impl Topology {
    /// Builds and starts every binding and stage of `config`.
    pub(super) fn start(
        ctx: pipeline::Context,
        config: Config,
        topics: Topics,
    ) -> anyhow::Result<(Topology, StoreParts)> {
        let mut t = Topology {
            registry: ctx.registry.clone(),
            events: ctx.events.clone(),
            ctx,
            config: config.clone(),
            units: BTreeMap::new(),
            bindings: Bindings::default(),
            topics,
        };
        let mut parts = StoreParts {
            stores: BTreeMap::new(),
            routes: BTreeMap::new(),
        };
        for (name, b) in &config.bindings {
            let built = t.build(&Key::Binding(name.clone()), |ctx| {
                pipeline::build_binding(name, b, ctx)
            })?;
            t.add(Key::Binding(name.clone()), built, &[]);
        }
        for (name, a) in &config.analytics {
            let mut built = t.build(&Key::Stage(name.clone()), |ctx| {
                pipeline::build_stage(name, a, ctx)
            })?;
            if let Some((store, group, topic)) = built.1.store.take() {
                let name = store.name().to_string();
                parts
                    .routes
                    .insert(name.clone(), StoreRoute { group, topic });
                parts.stores.insert(name, store);
            }
            t.add(Key::Stage(name.clone()), built, &[]);
        }
        Ok((t, parts))
    }

    /// The bindings that run (shared with the HTTP layer).
    pub(super) fn bindings(&self) -> Bindings {
        self.bindings.clone()
    }

    fn build(
        &self,
        key: &Key,
        build: impl FnOnce(&pipeline::Context) -> anyhow::Result<Built>,
    ) -> anyhow::Result<(CancellationToken, Built)> {
        let shutdown = self.ctx.shutdown.child_token();
        let ctx = pipeline::Context {
            shutdown: shutdown.clone(),
            ..self.ctx.clone()
        };
        let built = build(&ctx).with_context(|| key.to_string())?;
        Ok((shutdown, built))
    }

    /// Spawns a built unit; its stats take the place of `replacing`'s.
    fn add(
        &mut self,
        key: Key,
        (shutdown, built): (CancellationToken, Built),
        replacing: &[Arc<BindingStats>],
    ) {
        let mut tasks = JoinSet::new();
        for task in built.tasks {
            tasks.spawn(task);
        }
        self.bindings.replace(replacing, built.stats.clone());
        self.units.insert(
            key,
            Unit {
                shutdown,
                tasks,
                stats: built.stats,
                config: built.config,
            },
        );
    }

    /// Applies configs as they come until the app shuts down, then drains every unit.
    pub(super) async fn run(mut self, mut changes: mpsc::UnboundedReceiver<(String, Config)>) {
        loop {
            tokio::select! {
                () = self.ctx.shutdown.cancelled() => break,
                next = changes.recv() => match next {
                    Some((file, config)) => self.apply(&file, config).await,
                    None => {
                        self.ctx.shutdown.cancelled().await;
                        break;
                    }
                },
            }
        }
        let drains: Vec<_> = std::mem::take(&mut self.units)
            .into_values()
            .map(Unit::drain)
            .collect();
        futures::future::join_all(drains).await;
    }

    /// Carries out what `new` changes (see the module doc) and reports it.
    pub(super) async fn apply(&mut self, file: &str, new: Config) {
        let plan = plan(&self.config, &new);
        if plan.is_empty() {
            tracing::info!(%file, "config saved with no change to apply");
            return;
        }
        if let Err(e) = self.prepare(&new, &plan).await {
            let message =
                format!("changed and valid, but not applied (the running app is unchanged): {e:#}");
            tracing::error!(%file, "{message}");
            self.events.emit(EventKind::Config, file, message);
            return;
        }
        let mut failed = Vec::new();
        // Stopped first, all at once: a restarted binding's new consumer joins a
        // group the old one has left, from the offsets it committed.
        let going: Vec<Key> = plan
            .stop
            .iter()
            .chain(&plan.restart)
            .map(|n| Key::Binding(n.clone()))
            .collect();
        let mut gone: BTreeMap<Key, Vec<Arc<BindingStats>>> = BTreeMap::new();
        let mut drains = Vec::new();
        for key in going {
            if let Some(unit) = self.units.remove(&key) {
                gone.insert(key, unit.stats.clone());
                drains.push(unit.drain());
            }
        }
        futures::future::join_all(drains).await;
        for name in &plan.stop {
            if let Some(stats) = gone.remove(&Key::Binding(name.clone())) {
                self.bindings.replace(&stats, Vec::new());
            }
            self.config.bindings.remove(name);
        }
        for name in plan.start.iter().chain(&plan.restart) {
            let key = Key::Binding(name.clone());
            let b = &new.bindings[name];
            let old_stats = gone.remove(&key).unwrap_or_default();
            match self.build(&key, |ctx| pipeline::build_binding(name, b, ctx)) {
                Ok(built) => {
                    self.add(key, built, &old_stats);
                    self.config.bindings.insert(name.clone(), b.clone());
                }
                Err(e) => {
                    // Its old version is stopped already: say so, and try again on
                    // the next save.
                    self.bindings.replace(&old_stats, Vec::new());
                    self.config.bindings.remove(name);
                    failed.push(format!("{key}: {e:#}"));
                }
            }
        }
        for key in &plan.update_config {
            let values = match key {
                Key::Binding(n) => new.bindings[n].config.clone(),
                Key::Stage(n) => new.analytics[n].config.clone(),
            };
            if let Some(live) = self.units.get(key).and_then(|u| u.config.as_ref()) {
                live.store(Arc::new(values.clone()));
            }
            match key {
                Key::Binding(n) => {
                    if let Some(b) = self.config.bindings.get_mut(n) {
                        b.config = values;
                    }
                }
                Key::Stage(n) => {
                    if let Some(a) = self.config.analytics.get_mut(n) {
                        a.config = values;
                    }
                }
            }
        }
        let mut message = format!("applied: {}", plan.summary());
        if !failed.is_empty() {
            message.push_str(&format!("; FAILED to start: {}", failed.join("; ")));
        }
        if failed.is_empty() {
            tracing::info!(%file, "config {message}");
        } else {
            tracing::error!(%file, "config {message}");
        }
        self.events.emit(EventKind::Config, file, message);
    }

    /// Before anything stops: the topics of what starts exist, and the functions it
    /// names are loaded (or loading), so a failure leaves everything as it was.
    async fn prepare(&self, new: &Config, plan: &Plan) -> anyhow::Result<()> {
        let starting: Vec<&BindingConfig> = plan
            .start
            .iter()
            .chain(&plan.restart)
            .map(|n| &new.bindings[n])
            .collect();
        if starting.is_empty() {
            return Ok(());
        }
        match &self.topics {
            Topics::Embedded(broker) => {
                for b in &starting {
                    for t in b.input.iter().chain(&b.output).chain([&b.dlq]) {
                        broker
                            .create_topic(t, super::PARTITIONS)
                            .with_context(|| format!("creating topic {t}"))?;
                    }
                }
            }
            Topics::Cluster { settings, sink } => {
                let mut only = new.clone();
                only.bindings
                    .retain(|n, _| plan.start.contains(n) || plan.restart.contains(n));
                only.analytics.clear();
                super::topics::create_missing(settings, sink, &only, super::PARTITIONS).await?;
            }
        }
        let loaded: BTreeSet<String> = self
            .registry
            .list()
            .into_iter()
            .filter(|f| f.status != FunctionStatus::Missing)
            .map(|f| f.name)
            .collect();
        let needed: BTreeSet<String> = starting
            .iter()
            .map(|b| b.function.clone())
            .filter(|f| !loaded.contains(f))
            .collect();
        super::services::load_all(&self.registry, &self.config.functions.dir, &needed).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Config {
        let base =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
        Config::parse(yaml, "kfn.yaml", &base).unwrap_or_else(|e| panic!("{e}"))
    }

    const BASE: &str = "kafka: { brokers: embedded }\nfunctions: { dir: ../functions }\n";

    #[test]
    fn the_plan_names_what_starts_stops_restarts_and_what_needs_a_restart() {
        let old = parse(&format!(
            "{BASE}bindings:
  same: {{ function: page-enricher, in: A, out: B }}
  values: {{ function: page-enricher, in: A, out: C, config: {{ tag: one }} }}
  moved: {{ function: page-enricher, in: A, out: D }}
  gone: {{ consumer: page-logger, in: A }}
analytics:
  counts: {{ in: A, function: page-filter, key: /name, window: {{ tumbling: 5s }}, aggregate: count, config: {{ x: '1' }} }}
  sums: {{ in: A, key: /name, window: {{ tumbling: 5s }}, aggregate: count }}
"
        ));
        let new = parse(&format!(
            "{BASE}bindings:
  same: {{ function: page-enricher, in: A, out: B }}
  values: {{ function: page-enricher, in: A, out: C, config: {{ tag: two }} }}
  moved: {{ function: page-enricher, in: A, out: E }}
  added: {{ consumer: page-logger, in: B }}
analytics:
  counts: {{ in: A, function: page-filter, key: /name, window: {{ tumbling: 5s }}, aggregate: count, config: {{ x: '2' }} }}
  sums: {{ in: A, key: /name, window: {{ tumbling: 9s }}, aggregate: count }}
http: {{ listen: 127.0.0.1:9999 }}
"
        ));
        let p = plan(&old, &new);
        assert_eq!(p.start, ["added"]);
        assert_eq!(p.stop, ["gone"]);
        assert_eq!(p.restart, ["moved"]);
        assert_eq!(
            p.update_config,
            [Key::Binding("values".into()), Key::Stage("counts".into())]
        );
        assert_eq!(p.not_live, ["analytics.sums changed", "http changed"]);
        assert!(plan(&old, &old).is_empty());
        assert_eq!(plan(&old, &old).summary(), "nothing to change");
        assert!(
            p.summary().contains("restart kfn to apply"),
            "{}",
            p.summary()
        );
    }
}
