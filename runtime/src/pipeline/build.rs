//! Each binding and stage builds itself from its config: the running pieces (record
//! loops, their steps and deliveries, the window store) and what the rest of the app
//! needs to see of them. `app` only wires what these return; `kfn bench` and the
//! tests build bindings the same way.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::analytics::{Extract, RepartitionStep, WindowStep, repartition_topic};
use super::delivery::{Pipelined, Transactional};
use super::supplier::{Supplier, run_supplier};
use super::wasm_step::{ConsumerStep, FunctionStep, Retry};
use super::{Activity, Binding, Fork, Parallel, Route, Step, run};
use crate::config::{self, AnalyticsConfig, BindingConfig, Guarantee};
use crate::kafka::{KafkaSettings, Sink, Source, TxnSink};
use crate::observe::{BindingKind, BindingState, BindingStats, EventKind, Events};
use crate::wasm::{GuestIdentity, Limits, LiveConfig, Registry, Worker, World};
use crate::window::{Aggregator, Operator, Restorer, Stage, UpstreamProbe, WindowStore};

/// What every binding and stage is built with.
#[derive(Clone)]
pub struct Context {
    pub settings: KafkaSettings,
    /// The shared producer.
    pub sink: Sink,
    pub registry: Arc<Registry>,
    pub events: Events,
    pub shutdown: CancellationToken,
}

/// A built binding or stage: its counters, the tasks to spawn, and its store.
pub struct Built {
    pub stats: Vec<Arc<BindingStats>>,
    pub tasks: Vec<BoxFuture<'static, ()>>,
    /// A stage's window store, with the consumer group and topic whose partition
    /// assignment says which instance holds which part of it.
    pub store: Option<(Arc<WindowStore>, String, String)>,
    /// The `config:` values its function reads, to change them live.
    pub config: Option<LiveConfig>,
}

impl Context {
    fn worker(
        &self,
        binding: &str,
        function: &str,
        config: &std::collections::BTreeMap<String, String>,
        limits: &config::Limits,
        world: World,
    ) -> Worker {
        Worker::new(
            self.registry.engine().clone(),
            self.registry.slot(function),
            GuestIdentity {
                binding: binding.into(),
                function: function.into(),
            },
            config.clone(),
            Limits {
                memory_bytes: limits.memory_bytes,
                cpu_time: limits.cpu_time,
            },
            world,
        )
    }

    /// A source for `name` on `topic`: exactly-once loops read only committed records
    /// and commit offsets inside their transactions.
    fn source(&self, name: &str, topic: &str, guarantee: Guarantee) -> anyhow::Result<Source> {
        match guarantee {
            Guarantee::AtLeastOnce => Source::new(&self.settings, name, topic),
            Guarantee::ExactlyOnce => Source::transactional(&self.settings, name, topic),
        }
        .with_context(|| format!("{name}: subscribing to {topic}"))
    }

    fn binding(&self, route: Route, source: Source, stats: Arc<BindingStats>) -> Binding {
        Binding {
            route: Arc::new(route),
            source,
            stats,
            events: self.events.clone(),
            shutdown: self.shutdown.clone(),
            activity: None,
            upstream: None,
        }
    }
}

/// `step` over `instances` instances of its function, shown in `stats`.
fn parallel<S: Fork>(step: S, instances: usize, name: &str, stats: &BindingStats) -> Parallel<S> {
    let step = Parallel::new(step, instances, name);
    stats
        .instances
        .store(step.instances() as u64, Ordering::Relaxed);
    step
}

fn retry(limits: &config::Limits) -> Retry {
    Retry {
        attempts: limits.attempts,
        backoff: limits.retry_backoff,
    }
}

/// A `bindings:` entry.
pub fn build_binding(name: &str, b: &BindingConfig, ctx: &Context) -> anyhow::Result<Built> {
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
    let world = match b.kind {
        config::BindingKind::Supplier => World::Supplier,
        config::BindingKind::Consumer => World::Consumer,
        config::BindingKind::Function => World::Function,
    };
    let worker = ctx
        .worker(name, &b.function, &b.config, &b.limits, world)
        .observe_calls(stats.call_seconds.clone());
    let config = worker.live_config();
    // One instance (a supplier's calls come one at a time, on a timer), unless the
    // step below shares its batches among more.
    stats.instances.store(1, Ordering::Relaxed);
    let task: BoxFuture<'static, ()> = match b.kind {
        config::BindingKind::Supplier => run_supplier(Supplier {
            name: name.to_string(),
            function: b.function.clone(),
            worker,
            sink: ctx.sink.clone(),
            out: b
                .output
                .clone()
                .context("supplier without `out` passed validation")?,
            every: b
                .every
                .context("supplier without `every` passed validation")?,
            stats: stats.clone(),
            events: ctx.events.clone(),
            shutdown: ctx.shutdown.clone(),
        })
        .boxed(),
        _ => {
            let input = b
                .input
                .as_deref()
                .context("binding without `in` passed validation")?;
            let binding = ctx.binding(
                Route {
                    name: name.to_string(),
                    function: Some(b.function.clone()),
                    out: b.output.clone(),
                    dlq: b.dlq.clone(),
                },
                ctx.source(name, input, b.guarantee)?,
                stats.clone(),
            );
            let retry = retry(&b.limits);
            let instances = b.limits.instances;
            if b.kind == config::BindingKind::Consumer {
                let step = parallel(ConsumerStep(worker, retry), instances, name, &stats);
                run_loop(ctx.clone(), b.guarantee, binding, step).boxed()
            } else {
                let step = parallel(FunctionStep(worker, retry), instances, name, &stats);
                run_loop(ctx.clone(), b.guarantee, binding, step).boxed()
            }
        }
    };
    Ok(Built {
        stats: vec![stats],
        tasks: vec![task],
        store: None,
        config: Some(config),
    })
}

/// An `analytics:` entry: the window step, preceded by a repartition step when the
/// stage groups by a new key or runs a function.
pub fn build_stage(name: &str, a: &AnalyticsConfig, ctx: &Context) -> anyhow::Result<Built> {
    let app_id = &ctx.settings.application_id;
    let stage = Arc::new(Stage::new(name, a, app_id));
    let store = Arc::new(WindowStore::new(stage.clone()));
    let extract = Extract::new(a.key.clone(), stage.aggregates.pointers().to_vec());
    let mut built = Built {
        stats: Vec::new(),
        tasks: Vec::new(),
        store: None,
        config: None,
    };
    let mut upstream_probe = None;
    let (aggregated, upstream) = if a.repartitions() {
        // Step 1: function and group key, to the repartition topic by group key.
        let topic = repartition_topic(app_id, name);
        let step_name = format!("{name}.repartition");
        let stats = BindingStats::new(
            &step_name,
            BindingKind::Repartition,
            a.function.clone(),
            Some(a.input.clone()),
            Some(topic.clone()),
        );
        built.stats.push(stats.clone());
        let calls = stats.call_seconds.clone();
        let step_stats = stats.clone();
        let activity = Arc::new(Activity::default());
        let mut binding = ctx.binding(
            Route {
                name: step_name.clone(),
                function: a.function.clone(),
                out: Some(topic.clone()),
                dlq: a.dlq.clone(),
            },
            ctx.source(&step_name, &a.input, a.guarantee)?,
            stats,
        );
        binding.activity = Some(activity.clone());
        let step = RepartitionStep {
            worker: a.function.as_ref().map(|f| {
                ctx.worker(name, f, &a.config, &a.limits, World::Function)
                    .observe_calls(calls)
            }),
            retry: retry(&a.limits),
            extract: Extract::new(a.key.clone(), Vec::new()),
        };
        built.config = step.worker.as_ref().map(Worker::live_config);
        let step = parallel(step, a.limits.instances, &step_name, &step_stats);
        built
            .tasks
            .push(run_loop(ctx.clone(), a.guarantee, binding, step).boxed());
        let probe = Arc::new(UpstreamProbe::default());
        built.tasks.push(
            probe_upstream(
                ctx.clone(),
                step_name,
                a.input.clone(),
                topic.clone(),
                probe.clone(),
            )
            .boxed(),
        );
        upstream_probe = Some(probe);
        (topic, Some(activity))
    } else {
        (a.input.clone(), None)
    };

    // Step 2: the windows, per partition of what is aggregated.
    let stats = BindingStats::new(
        name,
        BindingKind::Analytics,
        None,
        Some(aggregated.clone()),
        a.output.clone(),
    );
    built.stats.push(stats.clone());
    // An aggregator keeps the windows' order: one instance.
    let aggregators = u64::from(a.aggregate.function().is_some());
    stats.instances.store(aggregators, Ordering::Relaxed);
    let source = ctx.source(name, &aggregated, a.guarantee)?;
    let ownership = source.ownership();
    let restorer = Arc::new(Restorer {
        settings: ctx.settings.clone(),
        store: store.clone(),
        stats: stats.clone(),
        events: ctx.events.clone(),
        shutdown: ctx.shutdown.clone(),
    });
    let mut binding = ctx.binding(
        Route {
            name: name.to_string(),
            function: None,
            out: a.output.clone(),
            dlq: a.dlq.clone(),
        },
        source,
        stats,
    );
    binding.upstream = upstream;
    let step = WindowStep {
        operator: Operator {
            store: store.clone(),
            restorer,
            ownership,
            sources_from: a.repartitions().then(|| a.input.clone()),
            sources: None,
            upstream: upstream_probe,
            lagging: (Vec::new(), std::time::Instant::now()),
            guest: a.aggregate.function().map(|f| Aggregator {
                worker: ctx.worker(name, f, &a.config, &a.limits, World::Aggregator),
                max_state: usize::try_from(a.limits.state_bytes).unwrap_or(usize::MAX),
            }),
            blocked: false,
        },
        extract,
        direct: !a.repartitions(),
    };
    built
        .tasks
        .push(run_loop(ctx.clone(), a.guarantee, binding, step).boxed());
    built.store = Some((store, ctx.settings.group_id(name), aggregated));
    Ok(built)
}

/// How often a repartitioned stage asks where the step before it stands.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps `probe` up to date with where the repartition step `step` (on any instance)
/// stands: the partitions of `input` it still has records of — windows wait for
/// those, however long their partition is silent (e.g. while it waits for a new
/// owner) — and where `repartition`'s committed records end.
async fn probe_upstream(
    ctx: Context,
    step: String,
    input: String,
    repartition: String,
    probe: Arc<UpstreamProbe>,
) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (settings, step_, input_, repartition_) = (
            ctx.settings.clone(),
            step.clone(),
            input.clone(),
            repartition.clone(),
        );
        match tokio::task::spawn_blocking(move || {
            crate::kafka::upstream(&settings, &step_, &input_, &repartition_)
        })
        .await
        {
            Ok(Ok(upstream)) => probe.set(upstream),
            Ok(Err(e)) => {
                tracing::debug!(%step, error = %e, "cannot tell where the step before stands")
            }
            Err(_) => return,
        }
    }
}

/// Runs a record loop with the delivery its guarantee needs. Under exactly-once the
/// transactional producer is registered first, which aborts whatever this instance's
/// predecessor left open, so that restoring state reads settled data.
async fn run_loop<S: Step + 'static>(
    ctx: Context,
    guarantee: Guarantee,
    binding: Binding,
    step: S,
) {
    if guarantee == Guarantee::AtLeastOnce {
        return run(binding, step, Pipelined::new(ctx.sink.clone())).await;
    }
    let name = binding.route.name.clone();
    if ctx.settings.embedded {
        binding.events.emit(
            EventKind::Info,
            &name,
            "exactly-once on the embedded broker: transactions are accepted but not enforced (use a real cluster)",
        );
    }
    let settings = ctx.settings.clone();
    let txn_name = name.clone();
    match tokio::task::spawn_blocking(move || TxnSink::new(&settings, &txn_name)).await {
        Ok(Ok(txn)) => {
            let delivery = Transactional::new(ctx.settings.clone(), &name, txn);
            run(binding, step, delivery).await
        }
        Ok(Err(e)) => {
            let reason = format!("cannot start transactions: {e}");
            tracing::error!(binding = %name, "{reason}");
            binding
                .events
                .emit(EventKind::Broker, &name, reason.clone());
            binding.stats.set_state(BindingState::Stopped, Some(reason));
        }
        Err(e) => {
            binding
                .stats
                .set_state(BindingState::Stopped, Some(e.to_string()));
        }
    }
}
