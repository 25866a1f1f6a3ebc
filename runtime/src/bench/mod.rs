//! `kfn bench`: records/s through a Rust function binding (source → wasm → sink with
//! at-least-once offset handling) against a plain rdkafka consume → produce
//! passthrough with the same pipelining and offset rule, in the same run on the same
//! embedded broker, so the ratio means something on a noisy machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use crate::kafka::{EmbeddedBroker, KafkaSettings, Sink, Source};
use crate::observe::{BindingKind, BindingStats, Events};
use crate::pipeline::{self, Binding, FunctionStep, MAX_IN_FLIGHT, Retry};
use crate::wasm::{GuestIdentity, Limits, Registry, WasmEngine, Worker, World};

mod languages;

const PARTITIONS: i32 = 3;

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
    ) {
        broker.create_topic(&t, PARTITIONS)?;
    }
    let settings = KafkaSettings {
        bootstrap: broker.bootstrap().to_string(),
        embedded: true,
        application_id: "kfn-bench".into(),
        properties: Default::default(),
        instance: "bench".into(),
        advertise: None,
    };
    eprintln!("kfn bench: producing {records} PageEvent records to bench-in ...");
    fill(&settings, records).await?;

    eprintln!("kfn bench: baseline (rdkafka consume → produce) ...");
    let baseline = passthrough(&settings, records).await?;
    eprintln!("kfn bench: kfn function binding (page-enricher.wasm) ...");
    let kfn = Measured {
        name: "kfn: function binding (Rust wasm)",
        records,
        elapsed: function_binding(&settings, "page-enricher", wasm, "bench-out-kfn", records)
            .await?,
    };

    let ratio = kfn.rate() / baseline.rate();
    let table = format!(
        "| run | records | seconds | records/s |\n|---|---:|---:|---:|\n\
         | {} | {} | {:.2} | {:.0} |\n| {} | {} | {:.2} | {:.0} |\n\n\
         kfn / baseline = **{ratio:.2}** ({} cores; embedded broker, {PARTITIONS} partitions, \
         ~80 B JSON records; both runs store offsets only after the output is acknowledged)\n",
        baseline.name,
        baseline.records,
        baseline.elapsed.as_secs_f64(),
        baseline.rate(),
        kfn.name,
        kfn.records,
        kfn.elapsed.as_secs_f64(),
        kfn.rate(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut table = table;
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

async fn fill(settings: &KafkaSettings, records: usize) -> anyhow::Result<()> {
    let producer: FutureProducer = settings.producer().create()?;
    let mut in_flight = FuturesOrdered::new();
    for i in 0..records {
        let page = if i % 2 == 0 { "P1" } else { "P2" };
        let value = format!(
            r#"{{"name":"{page}","user":"U{}","date":"2026-11-25T06:00:00.000Z","duration":{}}}"#,
            i % 2 + 1,
            (i * 37) % 9000
        );
        let producer = producer.clone();
        in_flight.push_back(async move {
            producer
                .send(
                    FutureRecord::to("bench-in").key(page).payload(&value),
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
    let engine = WasmEngine::new(Some(PathBuf::from(".kfn/cache")))?;
    let registry = Registry::new(engine.clone(), Events::new());
    registry.load(name, wasm).await?;
    let started = Instant::now();
    let stats = BindingStats::new(
        name,
        BindingKind::Function,
        Some(name.into()),
        Some("bench-in".into()),
        Some(out.into()),
    );
    let shutdown = CancellationToken::new();
    let worker = Worker::new(
        engine,
        registry.slot(name),
        GuestIdentity {
            binding: name.into(),
            function: name.into(),
        },
        Default::default(),
        Limits::default(),
        World::Function,
    );
    let binding = Binding {
        name: name.into(),
        function: Some(name.into()),
        source: Source::new(settings, &format!("kfn-{name}"), "bench-in")?,
        sink: Sink::new(settings)?,
        out: Some(out.into()),
        dlq: "bench.dlq".into(),
        stats: stats.clone(),
        events: Events::new(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(pipeline::run_records(
        binding,
        FunctionStep(worker, Retry::NONE),
    ));
    wait_for(&stats, records).await?;
    let elapsed = started.elapsed();
    shutdown.cancel();
    let _ = task.await;
    Ok(elapsed)
}

async fn wait_for(stats: &Arc<BindingStats>, records: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while (stats.records_out.load(Ordering::Relaxed) as usize) < records {
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
    Ok(())
}
