//! `kfn bench`: records/s through a Rust function binding (source → wasm → sink with
//! at-least-once offset handling) against a plain rdkafka consume → produce
//! passthrough with the same pipelining and offset rule, in the same run on the same
//! embedded broker, so the ratio means something on a noisy machine.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use crate::config::{
    self, Aggregate, Aggregates, AnalyticsConfig, BindingConfig, EmitConfig, Guarantee,
    KeySelector, WindowConfig, WindowKind,
};
use crate::kafka::{EmbeddedBroker, KafkaSettings, Sink};
use crate::observe::{BindingStats, Events};
use crate::pipeline::{self, MAX_IN_FLIGHT};
use crate::wasm::{Registry, WasmEngine};

mod languages;
pub mod real;

const PARTITIONS: i32 = 3;
/// The stages measured, by store name.
const STAGES: [&str; 5] = ["tumbling", "hopping", "session", "agg-rust", "agg-python"];

/// The aggregator functions measured against the built-in count, on the same 5 s
/// tumbling windows: (stage, label, example function).
const AGGREGATORS: [(&str, &str, &str); 2] = [
    (
        "agg-rust",
        "kfn: aggregator function, Rust (duration-p95), 5 s tumbling",
        "duration-p95",
    ),
    (
        "agg-python",
        "kfn: aggregator function, Python (distinct-users-py), 5 s tumbling",
        "distinct-users-py",
    ),
];

/// One measured run.
pub struct Measured {
    pub name: &'static str,
    pub records: usize,
    pub elapsed: Duration,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(records: usize, languages: bool, output: Option<PathBuf>) -> anyhow::Result<()> {
    let wasm = Path::new("functions/page-enricher.wasm");
    if !wasm.exists() {
        crate::builder::build_dir(Path::new("functions"), false, None)?;
    }
    anyhow::ensure!(
        wasm.exists(),
        "{} is missing: run `cargo kfn build` from the repository root",
        wasm.display()
    );

    let broker = tokio::task::spawn_blocking(EmbeddedBroker::start).await??;
    for t in [
        "bench-in",
        "bench-out-baseline",
        "bench-out-kfn",
        "bench.dlq",
    ]
    .into_iter()
    .map(String::from)
    .chain(
        languages::GUESTS
            .iter()
            .map(|(_, guest)| format!("bench-out-{guest}")),
    )
    .chain(STAGES.iter().flat_map(|stage| {
        [
            format!("bench-out-{stage}"),
            crate::window::changelog::topic("kfn-bench", stage),
        ]
    })) {
        broker.create_topic(&t, PARTITIONS)?;
    }
    let settings = KafkaSettings {
        bootstrap: broker.bootstrap().to_string(),
        embedded: true,
        application_id: "kfn-bench".into(),
        properties: Default::default(),
        instance: "bench".into(),
        advertise: None,
        transactions: Default::default(),
    };
    eprintln!("kfn bench: producing {records} PageEvent records to bench-in ...");
    fill(&settings, records).await?;
    ensure_kept(&settings, records)?;

    eprintln!("kfn bench: baseline (rdkafka consume → produce) ...");
    let baseline = passthrough(&settings, records).await?;
    eprintln!("kfn bench: kfn function binding (page-enricher.wasm) ...");
    let mut runs = vec![Measured {
        name: "kfn: function binding (Rust wasm)",
        records,
        elapsed: function_binding(&settings, "page-enricher", wasm, "bench-out-kfn", records)
            .await?,
    }];
    let s = Duration::from_secs;
    let window = |kind| WindowConfig {
        kind,
        grace: Duration::ZERO,
        idle: Some(config::defaults::IDLE),
    };
    for (name, label, kind) in [
        (
            "tumbling",
            "kfn: count, 5 s tumbling windows",
            WindowKind::Tumbling(s(5)),
        ),
        (
            "hopping",
            "kfn: count, 1 m hopping windows every 10 s",
            WindowKind::Hopping {
                size: s(60),
                advance: s(10),
            },
        ),
        (
            "session",
            "kfn: count, 30 s session windows",
            WindowKind::Session { gap: s(30) },
        ),
    ] {
        eprintln!("kfn bench: {label} ...");
        runs.push(Measured {
            name: label,
            records,
            elapsed: stage(&settings, name, window(kind), None, records).await?,
        });
    }
    for (name, label, function) in AGGREGATORS {
        let wasm = Path::new("functions").join(format!("{function}.wasm"));
        if !wasm.exists() {
            eprintln!(
                "kfn bench: {label}: skipped, {} is missing (`cargo kfn build`)",
                wasm.display()
            );
            continue;
        }
        eprintln!("kfn bench: {label} ...");
        let tumbling = window(WindowKind::Tumbling(s(5)));
        runs.push(Measured {
            name: label,
            records,
            elapsed: stage(&settings, name, tumbling, Some((function, &wasm)), records).await?,
        });
    }
    eprintln!("kfn bench: memory per open window ...");
    let memory = memory_per_window();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut table = String::from(
        "| run | records | seconds | records/s | × baseline |\n|---|---:|---:|---:|---:|\n",
    );
    for m in std::iter::once(&baseline).chain(&runs) {
        table += &format!(
            "| {} | {} | {:.2} | {:.0} | {:.2} |\n",
            m.name,
            m.records,
            m.elapsed.as_secs_f64(),
            m.rate(),
            m.rate() / baseline.rate()
        );
    }
    table += &format!(
        "\n{cores} cores; embedded broker, {PARTITIONS} partitions, ~80 B JSON records \
         (100 keys, 1 ms of event time apart); every run stores offsets only after its \
         effects are acknowledged (the stages: their changelog writes). Window state: \
         {memory}\n"
    );
    if languages {
        eprintln!("kfn bench: per-language guests ...");
        table += &languages::table(&settings, records, baseline.rate()).await?;
    }
    println!("{table}");
    if let Some(path) = output {
        std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    drop(broker);
    Ok(())
}

/// Fails if the embedded broker dropped some of the input (it keeps ~5 MiB per
/// partition): every run would then wait for records that are not there.
fn ensure_kept(settings: &KafkaSettings, records: usize) -> anyhow::Result<()> {
    let consumer: rdkafka::consumer::BaseConsumer = settings.consumer("bench-check").create()?;
    let mut kept = 0;
    for p in 0..PARTITIONS {
        let (low, high) = consumer.fetch_watermarks("bench-in", p, Duration::from_secs(10))?;
        anyhow::ensure!(
            low == 0,
            "the embedded broker dropped the oldest records of bench-in (it keeps about 5 MiB \
             per partition): use --records {} or fewer",
            records * 2 / 3
        );
        kept += high;
    }
    anyhow::ensure!(
        kept as usize == records,
        "bench-in holds {kept} of {records} records"
    );
    Ok(())
}

/// Event time of the first record; each next one is 1 ms later.
const EPOCH_MS: i64 = 1_796_000_000_000;

async fn fill(settings: &KafkaSettings, records: usize) -> anyhow::Result<()> {
    let producer: FutureProducer = settings.producer().create()?;
    let mut in_flight = FuturesOrdered::new();
    for i in 0..records {
        let page = format!("P{}", i % 100);
        let value = format!(
            r#"{{"name":"{page}","user":"U{}","date":"2026-11-25T06:00:00.000Z","duration":{}}}"#,
            i % 2 + 1,
            (i * 37) % 9000
        );
        let producer = producer.clone();
        in_flight.push_back(async move {
            producer
                .send(
                    FutureRecord::to("bench-in")
                        .key(&page)
                        .payload(&value)
                        .timestamp(EPOCH_MS + i as i64),
                    Timeout::Never,
                )
                .await
                .map_err(|(e, _)| e)
        });
        if in_flight.len() >= 10_000 {
            in_flight.next().await.transpose()?;
        }
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    Ok(())
}

async fn passthrough(settings: &KafkaSettings, records: usize) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let consumer: StreamConsumer = settings.consumer("baseline").create()?;
    consumer.subscribe(&["bench-in"])?;
    let producer: FutureProducer = settings.producer().create()?;
    let mut in_flight = FuturesOrdered::new();
    let mut done = 0;
    while done < records {
        tokio::select! {
            Some(acked) = in_flight.next() => {
                let (partition, offset) = acked?;
                consumer.store_offset("bench-in", partition, offset)?;
                done += 1;
            }
            m = consumer.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let m = m?;
                let (key, value) = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec).unwrap_or_default());
                let (partition, offset) = (m.partition(), m.offset());
                let producer = producer.clone();
                in_flight.push_back(async move {
                    let mut r = FutureRecord::to("bench-out-baseline").payload(&value);
                    if let Some(k) = &key {
                        r = r.key(k);
                    }
                    producer.send(r, Timeout::Never).await.map_err(|(e, _)| e)?;
                    Ok::<_, rdkafka::error::KafkaError>((partition, offset))
                });
            }
        }
    }
    Ok(Measured {
        name: "baseline: rdkafka passthrough",
        records,
        elapsed: started.elapsed(),
    })
}

/// Runs function `name` (from `wasm`) as a binding over all of `bench-in`, in its own
/// consumer group, writing to `out`; measures until `records` outputs are acknowledged.
async fn function_binding(
    settings: &KafkaSettings,
    name: &str,
    wasm: &Path,
    out: &str,
    records: usize,
) -> anyhow::Result<Duration> {
    let ctx = context(settings)?;
    ctx.registry.load(name, wasm).await?;
    let binding = BindingConfig {
        kind: config::BindingKind::Function,
        function: name.into(),
        input: Some("bench-in".into()),
        output: Some(out.into()),
        every: None,
        config: Default::default(),
        limits: limits(),
        dlq: "bench.dlq".into(),
        guarantee: Guarantee::AtLeastOnce,
    };
    let started = Instant::now();
    let built = pipeline::build_binding(&format!("kfn-{name}"), &binding, &ctx)?;
    measure(
        &ctx,
        built,
        started,
        |s| s.records_out.load(Ordering::Relaxed),
        records,
    )
    .await
}

/// A stage over `bench-in` grouped by record key, with `window` and a count, or the
/// aggregator `function` (name, .wasm); measures until every record went into its
/// windows.
async fn stage(
    settings: &KafkaSettings,
    name: &str,
    window: WindowConfig,
    function: Option<(&str, &Path)>,
    records: usize,
) -> anyhow::Result<Duration> {
    let ctx = context(settings)?;
    let aggregate = match function {
        Some((function, wasm)) => {
            ctx.registry.load(function, wasm).await?;
            Aggregate::Function(function.into())
        }
        None => Aggregate::Count,
    };
    let stage = AnalyticsConfig {
        input: "bench-in".into(),
        function: None,
        config: Default::default(),
        limits: limits(),
        key: KeySelector::RecordKey,
        window,
        aggregate: Aggregates::One(aggregate),
        emit: EmitConfig::Final,
        output: Some(format!("bench-out-{name}")),
        serve: None,
        dlq: "bench.dlq".into(),
        guarantee: Guarantee::AtLeastOnce,
    };
    let started = Instant::now();
    let built = pipeline::build_stage(name, &stage, &ctx)?;
    measure(
        &ctx,
        built,
        started,
        |s| s.records_in.load(Ordering::Relaxed),
        records,
    )
    .await
}

fn limits() -> config::Limits {
    config::Limits {
        memory_bytes: config::defaults::MEMORY_BYTES,
        cpu_time: config::defaults::CPU_TIME,
        attempts: 1,
        retry_backoff: Duration::ZERO,
        state_bytes: config::defaults::STATE_BYTES,
        instances: config::defaults::instances(),
    }
}

fn context(settings: &KafkaSettings) -> anyhow::Result<pipeline::Context> {
    let engine = WasmEngine::new(Some(PathBuf::from(".kfn/cache")))?;
    let events = Events::new();
    Ok(pipeline::Context {
        settings: settings.clone(),
        sink: Sink::new(settings)?,
        registry: Registry::new(engine, events.clone()),
        events,
        shutdown: CancellationToken::new(),
    })
}

/// Runs what was built until `count` of its last stats reaches `records`; the time
/// since `started`.
async fn measure(
    ctx: &pipeline::Context,
    built: pipeline::Built,
    started: Instant,
    count: impl Fn(&BindingStats) -> u64,
    records: usize,
) -> anyhow::Result<Duration> {
    let stats = built.stats.last().context("nothing built")?.clone();
    let tasks: Vec<_> = built.tasks.into_iter().map(tokio::spawn).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while (count(&stats) as usize) < records {
        anyhow::ensure!(
            Instant::now() < deadline,
            "kfn run did not finish within 10 minutes"
        );
        anyhow::ensure!(
            stats.errors.load(Ordering::Relaxed) == 0,
            "records failed during the benchmark"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    ctx.shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok(elapsed)
}

/// Resident memory per open (key, window) pair, each kind measured in a process of
/// its own (memory freed by one measurement would be reused by the next).
fn memory_per_window() -> String {
    let probe = |kind: &str| -> Option<(f64, u64)> {
        let out = std::process::Command::new(std::env::current_exe().ok()?)
            .args(["bench", "--memory-probe", kind])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
    };
    let show = |kind: &str, what: &str| match probe(kind) {
        Some((bytes, pairs)) => format!(
            "{:.0} MiB per million open (key, window) pairs {what} ({pairs} pairs)",
            bytes * 1e6 / f64::from(1 << 20)
        ),
        None => format!("{what}: not measured"),
    };
    format!(
        "{}; {}.",
        show("tumbling", "with one window per key"),
        show("hopping", "with six per key (1 m hopping every 10 s)")
    )
}

/// `kfn bench --memory-probe KIND`: fills one partition's window state (a million
/// keys with one tumbling window each, or 200,000 keys in six hopping windows each)
/// and prints the resident bytes it took per open pair, and the pairs.
pub fn memory_probe(kind: &str) -> anyhow::Result<()> {
    use crate::window::{PartitionState, Stage};
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * 4096)
    };
    let (kind, keys) = match kind {
        "tumbling" => (WindowKind::Tumbling(Duration::from_secs(5)), 1_000_000),
        "hopping" => (
            WindowKind::Hopping {
                size: Duration::from_secs(60),
                advance: Duration::from_secs(10),
            },
            200_000,
        ),
        other => anyhow::bail!("no memory probe for {other}"),
    };
    let config = AnalyticsConfig {
        input: "in".into(),
        function: None,
        config: Default::default(),
        limits: limits(),
        key: KeySelector::RecordKey,
        window: WindowConfig {
            kind,
            grace: Duration::ZERO,
            idle: None,
        },
        aggregate: Aggregates::One(Aggregate::Count),
        emit: EmitConfig::Final,
        output: None,
        serve: None,
        dlq: "dlq".into(),
        guarantee: Guarantee::AtLeastOnce,
    };
    let stage = Stage::new("memory", &config, "bench");
    let names: Vec<String> = (0..keys).map(|i| format!("user-{i:07}")).collect();
    let now = tokio::time::Instant::now();
    let before = rss();
    let mut state = PartitionState::new(&stage, 0, now);
    for (i, name) in names.iter().enumerate() {
        let _ = state.add(&stage, 0, EPOCH_MS + i as i64 % 1000, name, &[], now);
        if i % 10_000 == 0 {
            // What a flush does: the changelog records, dropped here.
            let mut fx = crate::record::Effects::default();
            state.flush(&stage, &mut fx);
        }
    }
    let mut fx = crate::record::Effects::default();
    state.flush(&stage, &mut fx);
    drop(fx);
    let pairs = state.open_windows() as u64;
    let bytes = rss().saturating_sub(before) as f64 / pairs.max(1) as f64;
    println!("{bytes:.1} {pairs}");
    drop(state);
    Ok(())
}
