//! The per-language table of `kfn bench --languages`: for the same echo function (the
//! `probe` test guests) in each language, the component's size, compile time cold and
//! from the cache, the first call (instantiation included), the guest's time per
//! record (a call each, or a share of a batch call), and
//! records/s through a full binding against the baseline measured in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::kafka::KafkaSettings;
use crate::observe::Events;
use crate::record::Record;
use crate::wasm::{GuestIdentity, Limits, Registry, WasmEngine, Worker, World};

/// (language, test guest), as built by `cargo kfn build --dir runtime/tests/guests`;
/// a `batch-function` probe does its per-record twin's work, many records per call.
pub const GUESTS: [(&str, &str); 8] = [
    ("Rust", "probe"),
    ("Rust, batch", "probe-batch"),
    ("C", "c-probe"),
    ("Go", "go-probe"),
    ("JavaScript", "js-probe"),
    ("JavaScript, batch", "js-batch-probe"),
    ("Python", "py-probe"),
    ("Python, batch", "py-batch-probe"),
];

/// Calls timed per language for the per-call mean.
const CALLS: u32 = 2_000;

pub async fn table(
    settings: &KafkaSettings,
    records: usize,
    baseline_rate: f64,
) -> anyhow::Result<String> {
    let mut rows = String::from(
        "\n| language | .wasm | compile cold | load from cache | first call (instantiate) | guest time per record | records/s through a binding | / baseline |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut missing = Vec::new();
    let mut costs = Vec::new();
    for (language, guest) in GUESTS {
        let wasm = PathBuf::from(format!("runtime/tests/guests/{guest}.wasm"));
        if !wasm.exists() {
            missing.push(guest);
            continue;
        }
        eprintln!("kfn bench: {language} ({guest}) ...");
        let (size, cold, warm) = tokio::task::spawn_blocking({
            let wasm = wasm.clone();
            move || compile_times(&wasm)
        })
        .await??;
        let (first, per_call) = tokio::task::spawn_blocking({
            let wasm = wasm.clone();
            move || call_times(guest, &wasm)
        })
        .await??;
        let elapsed = super::function_binding(
            settings,
            guest,
            &wasm,
            &format!("bench-out-{guest}"),
            records,
        )
        .await?;
        let rate = records as f64 / elapsed.as_secs_f64();
        costs.push((language, per_call, rate));
        rows += &format!(
            "| {language} | {:.1} MB | {} | {} | {} | {:.1} µs | {rate:.0} | {:.2} |\n",
            size as f64 / 1e6,
            ms(cold),
            ms(warm),
            ms(first),
            per_call.as_secs_f64() * 1e6,
            rate / baseline_rate,
        );
    }
    rows += &batching_note(&costs, baseline_rate);
    if !missing.is_empty() {
        rows += &format!(
            "\nNot measured (not built): {}. Run `cargo kfn build --dir runtime/tests/guests`.\n",
            missing.join(", ")
        );
    }
    Ok(rows)
}

/// A guest whose calls take at least this share of its binding's time per record is
/// bound by the guest, not by Kafka.
const GUEST_BOUND: f64 = 0.5;

/// The footnote: each language's guest cost per record, the share of its binding's
/// time per record that it takes, and what the batch world buys where measured.
fn batching_note(costs: &[(&str, Duration, f64)], baseline_rate: f64) -> String {
    if costs.is_empty() {
        return String::new();
    }
    // Per record × records/s: how busy the binding's worker thread is inside the guest.
    // Measured apart (no Kafka vs through a binding), so noise can push it past 100 %.
    let share = |per_record: &Duration, rate: f64| per_record.as_secs_f64() * rate;
    let each = costs
        .iter()
        .map(|(language, per_record, rate)| {
            let share = share(per_record, *rate);
            let share = if share >= 1.0 {
                "≈100 %".to_string()
            } else {
                format!("{:.0} %", share * 100.0)
            };
            format!(
                "{language} {:.1} µs ({share})",
                per_record.as_secs_f64() * 1e6
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let bound = costs
        .iter()
        .filter(|(_, per_record, rate)| share(per_record, *rate) >= GUEST_BOUND)
        .map(|(language, ..)| *language)
        .collect::<Vec<_>>()
        .join(", ");
    let mut note = format!(
        "\nGuest time per record (no Kafka; a `process` call, or a share of a `process-batch` \
         call of {} records) and its share of the binding's time per record (× records/s): \
         {each}; Kafka alone costs {:.1} µs per record here (1 / baseline).",
        crate::pipeline::BATCH,
        1e6 / baseline_rate,
    );
    if !bound.is_empty() {
        note += &format!(
            " Bound by the guest (≥ {:.0} %): {bound}.",
            GUEST_BOUND * 100.0
        );
    }
    let gains = costs
        .iter()
        .filter_map(|(language, _, rate)| {
            let single = language.strip_suffix(", batch")?;
            let (_, _, single_rate) = costs.iter().find(|(l, ..)| *l == single)?;
            Some(format!("{single} {:.2}×", rate / single_rate))
        })
        .collect::<Vec<_>>();
    if !gains.is_empty() {
        note += &format!(
            " The `batch-function` world against `function`, records/s through a binding: {}.",
            gains.join(", ")
        );
    }
    note + "\n"
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Size, compile time into an empty cache, and load time from that cache (as after a
/// restart: a second engine, the artifact mapped from disk).
fn compile_times(wasm: &std::path::Path) -> anyhow::Result<(u64, Duration, Duration)> {
    let bytes = std::fs::read(wasm)?;
    let cache = std::env::temp_dir().join(format!("kfn-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let started = Instant::now();
    WasmEngine::new(Some(cache.clone()))?.compile(wasm, &bytes)?;
    let cold = started.elapsed();
    let engine = WasmEngine::new(Some(cache.clone()))?;
    let started = Instant::now();
    let warm = engine.compile(wasm, &bytes)?;
    let warm_time = started.elapsed();
    anyhow::ensure!(warm.from_cache, "the second compile did not use the cache");
    let _ = std::fs::remove_dir_all(&cache);
    Ok((bytes.len() as u64, cold, warm_time))
}

/// The first call (instantiation included) and the mean of [`CALLS`] more.
fn call_times(guest: &str, wasm: &std::path::Path) -> anyhow::Result<(Duration, Duration)> {
    let registry = Registry::new(
        WasmEngine::new(Some(PathBuf::from(".kfn/cache")))?,
        Events::new(),
    );
    registry.load_blocking(guest, wasm)?;
    let mut worker = Worker::new(
        registry.engine().clone(),
        registry.slot(guest),
        GuestIdentity {
            binding: "bench".into(),
            function: guest.into(),
        },
        Default::default(),
        Limits::default(),
        World::Function,
    );
    let record = Record {
        key: Some(b"P1".to_vec()),
        value: br#"{"name":"P1","user":"U1","date":"2026-11-25T06:00:00.000Z","duration":1234,"pad":"0123456789abcdef"}"#.to_vec(),
        headers: Vec::new(),
        timestamp_ms: 0,
        topic: "bench-in".into(),
        partition: 0,
        offset: 0,
        lease: 0,
    };
    let started = Instant::now();
    worker.process(&record)?;
    let first = started.elapsed();
    if worker.batches() {
        // Per record, in calls of a full read batch.
        let mut batch = vec![record; crate::pipeline::BATCH];
        let calls = CALLS.div_ceil(batch.len() as u32);
        let started = Instant::now();
        for _ in 0..calls {
            worker.process_batch_lent(&mut batch)?;
        }
        return Ok((first, started.elapsed() / (calls * batch.len() as u32)));
    }
    let started = Instant::now();
    for _ in 0..CALLS {
        worker.process(&record)?;
    }
    Ok((first, started.elapsed() / CALLS))
}
