//! Delivery guarantees on a real Apache Kafka broker, proven by killing things.
//!
//! These tests need a broker: `scripts/kafka.sh start`, then
//! `KFN_TEST_KAFKA=127.0.0.1:19092 cargo test --test real_kafka -- --include-ignored --test-threads=1`
//! (`.ci/run` does this). They are `#[ignore]`d otherwise, which cargo reports, so
//! they never pass silently. They share one broker and one of them stops it: run
//! them one at a time.
//!
//! What they prove:
//! - crash: `kill -9` of kfn at random moments, five times, loses no record
//!   (at-least-once); with `guarantee: exactly-once`, every input has exactly one
//!   output and every window's count equals an independent count of the input;
//! - shutdown: SIGTERM drains, commits and exits 0; a restart continues without a
//!   gap and (after a clean stop) without duplicates;
//! - outage: the broker dies and returns mid-stream; kfn reports it and loses nothing
//!   (and, under exactly-once, writes nothing twice);
//! - state: a store is restored from its changelog after a restart, counting nothing twice;
//! - scale-out: two instances share a stage grouping by a value field (repartitioned
//!   through an internal topic); a query on either answers for every key; one is
//!   killed half-way and the survivor takes over its partitions and state, ending with
//!   counts equal to an independent count;
//! - live configuration: kfn.yaml saved under load restarts the binding it changes
//!   with nothing lost or duplicated, while the others run on undisturbed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{eventually, read_until_quiet, reader};
use rdkafka::producer::FutureRecord;

const NEEDS_KAFKA: &str = "needs a real Kafka broker: scripts/kafka.sh start, then set KFN_TEST_KAFKA=127.0.0.1:19092 and pass --include-ignored";
const LONG: Duration = Duration::from_secs(120);

/// An idempotent producer: the outage test kills the broker under it, and a plain
/// producer's retries could then write an input record twice.
fn producer(bootstrap: &str) -> rdkafka::producer::FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1")
        .set("enable.idempotence", "true")
        .create()
        .expect("test producer")
}

fn bootstrap() -> String {
    std::env::var("KFN_TEST_KAFKA")
        .unwrap_or_else(|_| panic!("KFN_TEST_KAFKA is not set: this test {NEEDS_KAFKA}"))
}

/// A unique suffix so reruns against the same broker never see old topics or groups.
fn unique() -> String {
    format!("{}-{}", std::process::id(), kfn::record::now_ms())
}

/// A kfn process running `kfn.yaml` in `dir`.
struct Kfn {
    child: Child,
    http: String,
}

impl Kfn {
    fn start(dir: &Path) -> Kfn {
        Kfn::start_as(dir, "solo")
    }

    /// Starts the instance named `instance` (restarts keep the name, so a restart
    /// fences its predecessor's transactions).
    fn start_as(dir: &Path, instance: &str) -> Kfn {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kfn"))
            .args(["up", "--no-build", "--listen", "127.0.0.1:0"])
            .args(["--instance", instance, "--config"])
            .arg(dir.join("kfn.yaml"))
            .env(
                "KFN_LOG",
                std::env::var("KFN_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kfn");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.split("dashboard: ").nth(1) {
                    let _ = tx.send(url.trim().trim_start_matches("http://").to_string());
                }
            }
        });
        let http = rx
            .recv_timeout(LONG)
            .expect("kfn printed its dashboard address");
        Kfn { child, http }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (or a panic if it does not exit within `limit`).
    fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kfn did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kfn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kfn app with one function binding (the probe guest) from `input` to `output`.
fn app_dir(input: &str, output: &str, id: &str) -> tempfile::TempDir {
    app_dir_with(input, output, id, "")
}

/// Like [`app_dir`], with `extra` appended to the binding's YAML flow map.
fn app_dir_with(input: &str, output: &str, id: &str, extra: &str) -> tempfile::TempDir {
    app(
        id,
        "",
        &format!("bindings:\n  probe: {{ function: probe, in: {input}, out: {output}{extra} }}\n"),
    )
}

/// Produces `count` numbered, keyed records at about `per_sec`, in the background.
fn produce_numbered(
    topic: String,
    count: u32,
    per_sec: u32,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicU32>) {
    produce_paced(topic, count, per_sec, |i| {
        (format!("k{}", i % 64), i.to_string(), None)
    })
}

/// Produces record `i` = `make(i)` (key, value, timestamp) for `i` in `0..count` at
/// about `per_sec`, in the background; the counter says how many were sent.
fn produce_paced(
    topic: String,
    count: u32,
    per_sec: u32,
    make: impl Fn(u32) -> (String, String, Option<i64>) + Send + 'static,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicU32>) {
    let sent = Arc::new(AtomicU32::new(0));
    let counter = sent.clone();
    let handle = tokio::spawn(async move {
        let p = producer(&bootstrap());
        let mut pending = futures::stream::FuturesUnordered::new();
        let started = std::time::Instant::now();
        for i in 0..count {
            let (p, topic, (key, value, ts)) = (p.clone(), topic.clone(), make(i));
            pending.push(async move {
                let mut record = FutureRecord::to(&topic).key(&key).payload(&value);
                if let Some(ts) = ts {
                    record = record.timestamp(ts);
                }
                p.send(record, Duration::from_secs(300))
                    .await
                    .map_err(|(e, _)| e)
                    .expect("produce");
            });
            if pending.len() >= 1000 {
                futures::StreamExt::next(&mut pending).await;
            }
            counter.store(i + 1, Ordering::Relaxed);
            let due = Duration::from_secs_f64(f64::from(i + 1) / f64::from(per_sec));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        while futures::StreamExt::next(&mut pending).await.is_some() {}
    });
    (handle, sent)
}

/// How many times each input number appears on `topic`, read until quiet.
async fn outputs(topic: &str) -> BTreeMap<u32, u32> {
    let mut seen = BTreeMap::new();
    for r in read_until_quiet(&reader(&bootstrap(), topic), Duration::from_secs(5)).await {
        let n = r
            .value
            .trim_start_matches("probe-v1:")
            .parse::<u32>()
            .unwrap();
        *seen.entry(n).or_insert(0) += 1;
    }
    seen
}

async fn wait_for_all(topic: &str, count: u32) -> BTreeMap<u32, u32> {
    eventually(
        LONG,
        &format!("all {count} inputs on {topic}"),
        async || {
            let seen = outputs(topic).await;
            (seen.len() == count as usize).then_some(seen)
        },
    )
    .await
}

fn create_topic(topic: &str, partitions: i32) {
    common::create_topic(&bootstrap(), topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn crash_kill_9_five_times_loses_nothing() {
    let id = unique();
    let (input, output) = (format!("crash-in-{id}"), format!("crash-out-{id}"));
    create_topic(&input, 6);
    create_topic(&output, 6);
    let dir = app_dir(&input, &output, &id);
    let total = 100_000;
    // ~20 s of input, so every kill lands mid-stream.
    let (producing, sent) = produce_numbered(input.clone(), total, 5_000);

    let mut rng_state = kfn::record::now_ms() as u64;
    let mut next = move |lo: u64, hi: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        lo + rng_state % (hi - lo)
    };
    for round in 1..=5 {
        let kfn = Kfn::start(dir.path());
        let wait = next(1_000, 4_000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        eprintln!(
            "crash round {round}: kill -9 after {wait} ms ({} produced so far)",
            sent.load(Ordering::Relaxed)
        );
        kfn.kill9();
    }
    let kfn = Kfn::start(dir.path());
    producing.await.unwrap();
    let seen = wait_for_all(&output, total).await;
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "crash: {total} inputs, all have outputs; {duplicates} duplicates from replays (at-least-once)"
    );
    assert!((0..total).all(|n| seen.contains_key(&n)));
    kfn.terminate(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn sigterm_drains_commits_and_exits_zero_and_a_restart_continues() {
    let id = unique();
    let (input, output) = (format!("term-in-{id}"), format!("term-out-{id}"));
    create_topic(&input, 3);
    create_topic(&output, 3);
    let dir = app_dir(&input, &output, &id);
    let total = 20_000;
    let (producing, _) = produce_numbered(input.clone(), total, 4_000);

    let kfn = Kfn::start(dir.path());
    // Stop it mid-stream: as soon as it has produced something (the input takes ~5 s).
    let first = reader(&bootstrap(), &output);
    common::read_n(&first, 1, LONG).await;
    let status = kfn.terminate(Duration::from_secs(30));
    assert!(status.success(), "kfn exited with {status} on SIGTERM");
    let before = outputs(&output).await;
    assert!(
        !before.is_empty() && before.len() < total as usize,
        "stopped mid-stream ({} done)",
        before.len()
    );

    let kfn = Kfn::start(dir.path());
    producing.await.unwrap();
    let seen = wait_for_all(&output, total).await;
    let duplicates: Vec<_> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        duplicates.is_empty(),
        "a clean stop commits what it did: {} replayed",
        duplicates.len()
    );
    assert!(kfn.terminate(Duration::from_secs(30)).success());
}

fn kafka_script(command: &str) {
    let script = common::repo_root().join("scripts/kafka.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(command)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/kafka.sh {command} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn a_broker_outage_is_reported_and_loses_nothing() {
    let seen = outage("outage", "").await;
    assert!(
        seen.len() == 30_000,
        "every record made it through the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn a_broker_outage_under_exactly_once_loses_and_duplicates_nothing() {
    let seen = outage("eos-outage", ", guarantee: exactly-once").await;
    assert!(
        seen.len() == 30_000,
        "every record made it through the outage"
    );
    let duplicates = seen.values().filter(|n| **n > 1).count();
    assert_eq!(
        duplicates, 0,
        "no record was written twice across the outage"
    );
}

/// Kills and restarts the broker while 30,000 records flow through a function binding
/// (with `extra` in its YAML); checks kfn reports it; returns the outputs' counts.
async fn outage(name: &str, extra: &str) -> BTreeMap<u32, u32> {
    let id = unique();
    let (input, output) = (format!("{name}-in-{id}"), format!("{name}-out-{id}"));
    create_topic(&input, 3);
    create_topic(&output, 3);
    let dir = app_dir_with(&input, &output, &id, extra);
    let total = 30_000;
    let kfn = Kfn::start(dir.path());
    let http: std::net::SocketAddr = kfn.http.parse().unwrap();
    let (producing, sent) = produce_numbered(input.clone(), total, 3_000);

    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!(
        "{name}: killing the broker after {} records",
        sent.load(Ordering::Relaxed)
    );
    kafka_script("kill");
    eventually(
        Duration::from_secs(30),
        "kfn to report the broker down",
        async || {
            let (status, body) = common::http(http, "GET", "/api/health", "").await;
            (status == 503 && body.contains("\"down\"")).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka_script("start");
    eventually(LONG, "kfn to report the broker up", async || {
        let (status, _) = common::http(http, "GET", "/api/health", "").await;
        (status == 200).then_some(())
    })
    .await;

    producing.await.unwrap();
    let seen = wait_for_all(&output, total).await;
    assert!(kfn.terminate(Duration::from_secs(30)).success());
    seen
}

/// A kfn app with one analytics stage counting `input` by record key in day-long windows
/// (an hour of grace), so the window under test stays open for the whole test.
fn counting_app_dir(input: &str, id: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("functions")).unwrap();
    let yaml = format!(
        "kafka:\n  brokers: {}\n  application-id: state-{id}\n  properties:\n    session.timeout.ms: 6000\n\
         analytics:\n  counts: {{ in: {input}, key: record-key, window: {{ tumbling: 24h, grace: 1h }}, aggregate: count }}\n",
        bootstrap()
    );
    std::fs::write(dir.path().join("kfn.yaml"), yaml).unwrap();
    dir
}

/// Total count per key in the store, over the API.
async fn counts(http: std::net::SocketAddr) -> BTreeMap<String, u64> {
    let windows = common::get_json(http, "/api/stores/counts").await;
    let mut out = BTreeMap::new();
    for w in windows["windows"].as_array().unwrap() {
        *out.entry(w["key"].as_str().unwrap().to_string())
            .or_default() += w["value"].as_u64().unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn window_state_is_restored_from_its_changelog() {
    let id = unique();
    let input = format!("state-in-{id}");
    create_topic(&input, 3);
    let keys: u32 = std::env::var("KFN_TEST_RESTORE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    // One record per key, all in today's window.
    let ts = kfn::record::now_ms();
    let p = producer(&bootstrap());
    let mut pending = futures::stream::FuturesUnordered::new();
    for i in 0..keys {
        let (p, input) = (p.clone(), input.clone());
        pending.push(async move {
            let key = format!("key-{i}");
            p.send(
                FutureRecord::to(&input)
                    .key(&key)
                    .payload("x")
                    .timestamp(ts),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
        });
        if pending.len() >= 5_000 {
            futures::StreamExt::next(&mut pending).await;
        }
    }
    while futures::StreamExt::next(&mut pending).await.is_some() {}

    let dir = counting_app_dir(&input, &id);
    let kfn = Kfn::start(dir.path());
    let http: std::net::SocketAddr = kfn.http.parse().unwrap();
    let before = eventually(LONG, "every key counted", async || {
        let c = counts(http).await;
        (c.len() == keys as usize).then_some(c)
    })
    .await;
    assert!(before.values().all(|&n| n == 1));
    assert!(kfn.terminate(Duration::from_secs(30)).success());

    // A new process: the state comes back from the changelog, not from re-reading input
    // (its offsets were committed), so nothing is counted twice.
    let started = std::time::Instant::now();
    let kfn = Kfn::start(dir.path());
    let http: std::net::SocketAddr = kfn.http.parse().unwrap();
    // Timed with cheap reads (a status, a window count), not a read of every window:
    // from the first restore progress the stage shows (the partitions are assigned)
    // until the store holds every window.
    let restoring = eventually(LONG, "the restore to start", async || {
        let bindings = common::get_json(http, "/api/bindings").await;
        bindings
            .as_array()?
            .iter()
            .any(|b| !b["restore"].is_null())
            .then(std::time::Instant::now)
    })
    .await;
    eventually(LONG, "the store to hold every window", async || {
        let stores = common::get_json(http, "/api/stores").await;
        (stores[0]["open_windows"].as_u64() == Some(u64::from(keys))).then_some(())
    })
    .await;
    eprintln!(
        "restore: {keys} window-keys back in {:.2?} from the first restore progress, {:.2?} from the process start",
        restoring.elapsed(),
        started.elapsed()
    );
    let after = counts(http).await;
    assert_eq!(
        after, before,
        "restored counts equal the counts before the restart"
    );

    produce_one(&input, "key-0", ts).await;
    eventually(
        LONG,
        "the next record to add to the restored count",
        async || (counts(http).await.get("key-0") == Some(&2)).then_some(()),
    )
    .await;
    assert!(kfn.terminate(Duration::from_secs(30)).success());
}

async fn produce_one(topic: &str, key: &str, ts: i64) {
    producer(&bootstrap())
        .send(
            FutureRecord::to(topic).key(key).payload("x").timestamp(ts),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn exactly_once_survives_kill_9_five_times() {
    let id = unique();
    let (input, output) = (format!("eos-in-{id}"), format!("eos-out-{id}"));
    create_topic(&input, 6);
    create_topic(&output, 6);
    // A function binding and a counting store, both exactly-once, on the same input.
    let dir = app_dir_with(&input, &output, &id, ", guarantee: exactly-once");
    let yaml = std::fs::read_to_string(dir.path().join("kfn.yaml")).unwrap()
        + &format!(
            "analytics:\n  counts: {{ in: {input}, key: record-key, window: {{ tumbling: 24h, grace: 1h }}, aggregate: count, guarantee: exactly-once }}\n"
        );
    std::fs::write(dir.path().join("kfn.yaml"), yaml).unwrap();
    let total = 100_000;
    let (producing, sent) = produce_numbered(input.clone(), total, 5_000);

    let mut rng_state = kfn::record::now_ms() as u64 | 1;
    for round in 1..=5 {
        let kfn = Kfn::start(dir.path());
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let wait = 1_000 + rng_state % 3_000;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        eprintln!(
            "exactly-once round {round}: kill -9 after {wait} ms ({} produced so far)",
            sent.load(Ordering::Relaxed)
        );
        kfn.kill9();
    }
    let kfn = Kfn::start(dir.path());
    let http: std::net::SocketAddr = kfn.http.parse().unwrap();
    producing.await.unwrap();

    let seen = wait_for_all(&output, total).await;
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    assert_eq!(
        duplicates, 0,
        "exactly-once: every input has exactly one output"
    );
    let all = outputs(&output).await.values().sum::<u32>();
    assert_eq!(all, total, "output count equals input count");

    // Window counts equal an independent count: record i has key k{i % 64}.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..total {
        *expected.entry(format!("k{}", i % 64)).or_default() += 1;
    }
    let counted = eventually(LONG, "the store to count every input", async || {
        let c = counts(http).await;
        (c.values().sum::<u64>() >= u64::from(total)).then_some(c)
    })
    .await;
    assert_eq!(
        counted, expected,
        "each window's count equals the independent count"
    );
    assert!(kfn.terminate(Duration::from_secs(30)).success());
}

/// The store's answer on `http` (gathered from every instance unless `local`).
async fn store_answer(http: &str, local: bool) -> serde_json::Value {
    let http: std::net::SocketAddr = http.parse().unwrap();
    let path = if local {
        "/api/stores/counts?local=true"
    } else {
        "/api/stores/counts"
    };
    common::get_json(http, path).await
}

/// Count per (group key, window start) in a store answer.
fn window_counts(answer: &serde_json::Value) -> BTreeMap<(String, i64), u64> {
    let mut out = BTreeMap::new();
    for w in answer["windows"].as_array().unwrap() {
        let key = (
            w["key"].as_str().unwrap().to_string(),
            w["start"].as_i64().unwrap(),
        );
        *out.entry(key).or_default() += count_of(&w["value"]);
    }
    out
}

/// A window's count: the value of `aggregate: count`, or the `records` an aggregator
/// function (the agg-probe guest) reports; 0 while an aggregator has not finished it.
fn count_of(value: &serde_json::Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value["records"].as_u64())
        .unwrap_or(0)
}

fn partitions_of(answer: &serde_json::Value) -> Vec<i64> {
    answer["instances"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_i64().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn two_instances_share_a_stage_and_one_survives_the_other() {
    scale_out("count").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn the_survivor_of_two_instances_restores_an_aggregator_functions_state() {
    // The survivor restores the dead instance's partitions, guest state included,
    // from the changelog, and finishes with the oracle's values.
    scale_out("{ function: agg-probe }").await;
}

async fn scale_out(aggregate: &str) {
    let id = unique();
    let input = format!("scale-in-{id}");
    create_topic(&input, 6);
    // Grouped by a value field, so the stage repartitions by it; windows stay open.
    // kfn's own group timings: the takeover below is what a user gets.
    let dir = app_exact(
        &format!("scale-{id}"),
        "",
        &format!(
            "analytics:\n  counts: {{ in: {input}, key: /user, window: {{ tumbling: 10m, grace: 24h }}, aggregate: {aggregate}, serve: /counts, guarantee: exactly-once }}\n"
        ),
    );

    let a = Kfn::start_as(dir.path(), "a");
    let b = Kfn::start_as(dir.path(), "b");
    let (a_http, b_http) = (a.http.clone(), b.http.clone());

    // Records over three windows and 97 users, keyed by nothing in particular.
    let total: u32 = 60_000;
    let base = kfn::record::now_ms() / 600_000 * 600_000;
    let ts = move |i: u32| base + i64::from(i % 3) * 600_000 + i64::from(i % 1000);
    let mut expected: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for i in 0..total {
        *expected
            .entry((format!("u{}", i % 97), base + i64::from(i % 3) * 600_000))
            .or_default() += 1;
    }
    // About 4,000 records a second: the kill lands mid-stream.
    let (producing, sent) = produce_paced(input.clone(), total, 4_000, move |i| {
        let value = format!(r#"{{"user":"u{}","n":{i}}}"#, i % 97);
        (format!("r{i}"), value, Some(ts(i)))
    });

    // Both instances own partitions, and a query on either gathers the other's.
    let (a_parts, b_parts) = eventually(LONG, "both instances to hold state", async || {
        let (a, b) = (
            store_answer(&a_http, true).await,
            store_answer(&b_http, true).await,
        );
        let (a, b) = (partitions_of(&a), partitions_of(&b));
        (!a.is_empty() && !b.is_empty() && a.len() + b.len() == 6).then_some((a, b))
    })
    .await;
    eprintln!("scale-out: a holds partitions {a_parts:?}, b holds {b_parts:?}");
    for http in [&a_http, &b_http] {
        let answer = eventually(LONG, "a complete gathered answer", async || {
            let answer = store_answer(http, false).await;
            (answer["complete"] == true && !window_counts(&answer).is_empty()).then_some(answer)
        })
        .await;
        assert_eq!(answer["partitions"], 6);
        let sources: Vec<_> = answer["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| !i["partitions"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(sources.len(), 2, "both instances answered: {answer}");
        // The store's SSE route gathers from both instances too: every user shows.
        let http: std::net::SocketAddr = http.parse().unwrap();
        eventually(LONG, "every user on the SSE route", async || {
            let events = common::sse(http, "/counts", 1, LONG).await;
            let map: serde_json::Value = serde_json::from_str(&events[0]).unwrap();
            (map.as_object().unwrap().len() == 97).then_some(())
        })
        .await;
    }

    // Half-way, instance a dies.
    eventually(LONG, "half of the input produced", async || {
        (sent.load(Ordering::Relaxed) >= total / 2).then_some(())
    })
    .await;
    let counted_before: u64 = window_counts(&store_answer(&a_http, false).await)
        .values()
        .sum();
    let sent_before = sent.load(Ordering::Relaxed);
    eprintln!(
        "scale-out: kill -9 of instance a at {sent_before} produced, {counted_before} counted"
    );
    a.kill9();
    let killed = std::time::Instant::now();
    // Taken over: the survivor holds every partition, with its state restored, and has
    // counted every record produced before the kill.
    eventually(LONG, "the survivor to take over", async || {
        let answer = store_answer(&b_http, true).await;
        let n: u64 = window_counts(&answer).values().sum();
        (partitions_of(&answer).len() == 6 && n >= u64::from(sent_before)).then_some(())
    })
    .await;
    eprintln!(
        "scale-out: takeover after kill -9 in {:?}: every record produced before it counted",
        killed.elapsed()
    );
    producing.await.unwrap();

    // The survivor counts the rest.
    let started = std::time::Instant::now();
    let answer = eventually(LONG, "the survivor to count every record", async || {
        let answer = store_answer(&b_http, false).await;
        let n: u64 = window_counts(&answer).values().sum();
        (answer["complete"] == true && n >= u64::from(total)).then_some(answer)
    })
    .await;
    eprintln!(
        "scale-out: survivor complete {:?} after the last record was produced",
        started.elapsed()
    );
    let mut held = partitions_of(&store_answer(&b_http, true).await);
    held.sort_unstable();
    assert_eq!(
        held,
        [0, 1, 2, 3, 4, 5],
        "the survivor holds every partition"
    );
    let counted = window_counts(&answer);
    if counted != expected {
        // Which stage counted twice: an input record committed twice to the
        // repartition topic is step 1's; none there, the window step's.
        let repartition = format!("app-scale-{id}.counts.repartition");
        let repeated =
            common::repeated_origins(&bootstrap(), &repartition, Duration::from_secs(3)).await;
        panic!(
            "every window's count equals the independent count: {:?}\n\
             input records {repartition} holds twice: {repeated:?}",
            common::differences(&expected, &counted)
        );
    }
    assert!(b.terminate(Duration::from_secs(30)).success());
}

/// A kfn app in a new folder: `kfn.yaml` with `body` after the kafka section, and the
/// probe and agg-probe guests in `functions/`. The group notices a dead member after
/// 6 s (the least a broker accepts) rather than kfn's default, to keep kill tests short.
fn app(id: &str, properties: &str, body: &str) -> tempfile::TempDir {
    app_exact(
        id,
        &format!("    session.timeout.ms: 6000\n    heartbeat.interval.ms: 500\n{properties}"),
        body,
    )
}

/// [`app`] with only `properties` in `kafka.properties`: kfn's defaults otherwise.
fn app_exact(id: &str, properties: &str, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("functions")).unwrap();
    for guest in ["probe", "agg-probe"] {
        std::fs::copy(
            common::guest(guest),
            dir.path().join(format!("functions/{guest}.wasm")),
        )
        .unwrap();
    }
    let properties = match properties {
        "" => String::new(),
        p => format!("  properties:\n{p}"),
    };
    let yaml = format!(
        "kafka:\n  brokers: {}\n  application-id: app-{id}\n{properties}{body}",
        bootstrap()
    );
    std::fs::write(dir.path().join("kfn.yaml"), yaml).unwrap();
    dir
}

/// The binding `name` as `/api/bindings` shows it.
async fn binding_info(http: &str, name: &str) -> serde_json::Value {
    let all = common::get_json(http.parse().unwrap(), "/api/bindings").await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no binding {name} in {all}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn an_output_the_broker_refuses_is_dead_lettered_under_both_guarantees() {
    // A 3 MB output against the broker's 1 MB limit: refused by the client itself
    // (librdkafka's own message.max.bytes), or — with the client's limit raised — by
    // the broker, inside the transaction under exactly-once.
    for guarantee in ["at-least-once", "exactly-once"] {
        for refused_by in ["client", "broker"] {
            let id = format!("{}-{guarantee}-{refused_by}", unique());
            let (input, output) = (format!("big-in-{id}"), format!("big-out-{id}"));
            let dlq = format!("big-dlq-{id}");
            create_topic(&input, 1);
            create_topic(&output, 1);
            let properties = if refused_by == "broker" {
                "    message.max.bytes: 10000000\n"
            } else {
                ""
            };
            let dir = app(
                &id,
                properties,
                &format!(
                    "bindings:\n  probe: {{ function: probe, in: {input}, out: {output}, dlq: {dlq}, guarantee: {guarantee} }}\n"
                ),
            );
            let kfn = Kfn::start(dir.path());
            let p = producer(&bootstrap());
            for i in 0..10 {
                let value = if i == 4 {
                    "big:3000000".to_string()
                } else {
                    i.to_string()
                };
                p.send(
                    FutureRecord::to(&input).key("k").payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce");
            }
            let what = format!("{guarantee}, refused by the {refused_by}");
            let out = common::read_n(&reader(&bootstrap(), &output), 9, LONG).await;
            let mut values: Vec<String> = out.iter().map(|r| r.value.clone()).collect();
            values.sort();
            let want: Vec<String> = (0..10)
                .filter(|i| *i != 4)
                .map(|i| format!("probe-v1:{i}"))
                .collect();
            assert_eq!(
                values, want,
                "{what}: the records after it come out, once each"
            );
            let letters = common::read_n(&reader(&bootstrap(), &dlq), 1, LONG).await;
            let letter = &letters[0];
            assert_eq!(
                letter.header("kfn-source-topic"),
                Some(input.as_str()),
                "{what}"
            );
            assert_eq!(letter.value, "big:3000000", "{what}: the input itself");
            let error = letter.header("kfn-error").unwrap();
            assert!(
                error.contains("rejected by the broker")
                    && error.to_lowercase().contains("too large"),
                "{what}: {error}"
            );
            let info = eventually(LONG, "the counters to settle", async || {
                let b = binding_info(&kfn.http, "probe").await;
                (b["records_in"] == 10).then_some(b)
            })
            .await;
            assert_eq!(
                (
                    &info["records_in"],
                    &info["records_out"],
                    &info["errors"],
                    &info["dead_lettered"],
                    &info["status"]
                ),
                (
                    &10.into(),
                    &9.into(),
                    &1.into(),
                    &1.into(),
                    &"running".into()
                ),
                "{what}: {info}"
            );
            // Nothing more arrives: no replay loop.
            let more =
                read_until_quiet(&reader(&bootstrap(), &output), Duration::from_secs(3)).await;
            assert_eq!(more.len(), 9, "{what}: no duplicates");
            assert_eq!(
                binding_info(&kfn.http, "probe").await["records_in"],
                10,
                "{what}: each record counted once"
            );
            assert!(kfn.terminate(Duration::from_secs(30)).success());
        }
    }
}

/// A stage `counts` counting per `/name` in `window` with `aggregate` (`count`, or
/// the agg-probe aggregator, which counts too), from a new six-partition input to a
/// new output: (input, output, dead-letter topic, app folder).
fn counting_stage(
    id: &str,
    window: &str,
    aggregate: &str,
    guarantee: &str,
) -> (String, String, String, tempfile::TempDir) {
    let (input, output) = (format!("count-in-{id}"), format!("count-out-{id}"));
    create_topic(&input, 6);
    create_topic(&output, 6);
    let dir = app(
        id,
        "",
        &format!(
            "analytics:\n  counts: {{ in: {input}, key: /name, window: {window}, aggregate: {aggregate}, out: {output}, guarantee: {guarantee} }}\n"
        ),
    );
    (input, output, format!("app-{id}.counts.dlq"), dir)
}

/// Records produced now, stamped with their produce time, at about `per_sec`: record
/// `i` has value `{"name":"k{i % keys}","n":i}`. Returns the producer task and the
/// (key, timestamp) of every record sent.
#[allow(clippy::type_complexity)]
fn produce_stamped(
    topic: String,
    count: u32,
    per_sec: u32,
    keys: u32,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<AtomicU32>,
    Arc<std::sync::Mutex<Vec<(String, i64)>>>,
) {
    let stamps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = stamps.clone();
    let (handle, sent) = produce_paced(topic, count, per_sec, move |i| {
        let (key, ts) = (format!("k{}", i % keys), kfn::record::now_ms());
        log.lock().unwrap().push((key.clone(), ts));
        (
            format!("r{i}"),
            format!(r#"{{"name":"{key}","n":{i}}}"#),
            Some(ts),
        )
    });
    (handle, sent, stamps)
}

/// Count per (key, window start) of `size`-ms tumbling windows.
fn tumbling_counts(stamps: &[(String, i64)], size: i64) -> BTreeMap<(String, i64), u64> {
    let mut counts = BTreeMap::new();
    for (key, ts) in stamps {
        *counts.entry((key.clone(), ts - ts % size)).or_default() += 1;
    }
    counts
}

/// Final results on `topic`, read committed: count per (key, start), and how many
/// times each window was reported.
async fn finals(topic: &str) -> (BTreeMap<(String, i64), u64>, BTreeMap<(String, i64), u32>) {
    let (mut values, mut times) = (BTreeMap::new(), BTreeMap::new());
    for r in read_until_quiet(&reader(&bootstrap(), topic), Duration::from_secs(3)).await {
        let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
        assert_eq!(v["final"], true, "{v}");
        let id = (
            v["key"].as_str().unwrap().to_string(),
            v["start"].as_i64().unwrap(),
        );
        values.insert(id.clone(), count_of(&v["value"]));
        *times.entry(id).or_default() += 1;
    }
    (values, times)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn exactly_once_windows_closing_throughout_survive_kill_9_five_times() {
    windows_survive_kill_9_five_times("count").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn exactly_once_aggregator_function_state_survives_kill_9_five_times() {
    // The guest's state bytes go to the changelog in the input's transaction and are
    // restored after each kill: each window's final value is the oracle's, once.
    windows_survive_kill_9_five_times("{ function: agg-probe }").await;
}

async fn windows_survive_kill_9_five_times(aggregate: &str) {
    // Grouped by a value field (repartitioned), 2 s windows, no grace: every window
    // closes while kfn is killed and restarted around it.
    let (input, output, dlq, dir) =
        counting_stage(&unique(), "{ tumbling: 2s }", aggregate, "exactly-once");
    let kfn = Kfn::start(dir.path());
    // Produce only once kfn reads: a first contact with a backlog is not what this tests.
    eventually(LONG, "kfn to hold its partitions", async || {
        let b = binding_info(&kfn.http, "counts").await;
        (b["status"] == "running").then_some(())
    })
    .await;
    let total = 100_000;
    let (producing, sent, stamps) = produce_stamped(input.clone(), total, 5_000, 16);
    let mut kfn = Some(kfn);
    let mut rng_state = kfn::record::now_ms() as u64 | 1;
    for round in 1..=5 {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let wait = 1_500 + rng_state % 2_500;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        eprintln!(
            "windows round {round}: kill -9 after {wait} ms ({} produced so far)",
            sent.load(Ordering::Relaxed)
        );
        kfn.take().unwrap().kill9();
        kfn = Some(Kfn::start(dir.path()));
    }
    producing.await.unwrap();
    let expected = tumbling_counts(&stamps.lock().unwrap(), 2_000);
    // The last windows close on idle (5 s) once the input stops.
    let (got, times) = eventually(LONG, "every window's final result", async || {
        let (got, times) = finals(&output).await;
        (got.len() >= expected.len()).then_some((got, times))
    })
    .await;
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "windows reported more than once: {twice:?}"
    );
    let wrong = common::differences(&expected, &got);
    let late = read_until_quiet(&reader(&bootstrap(), &dlq), Duration::from_secs(3)).await;
    assert!(
        wrong.is_empty() && got.len() == expected.len() && late.is_empty(),
        "{} windows expected, {} reported; {} on-time records dead-lettered (first: {:?}); wrong: {wrong:?}",
        expected.len(),
        got.len(),
        late.len(),
        late.first(),
    );
    assert!(kfn.unwrap().terminate(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn a_consumer_seconds_behind_makes_nothing_late_and_an_idle_input_still_closes() {
    for guarantee in ["at-least-once", "exactly-once"] {
        seconds_behind(guarantee).await;
    }
}

async fn seconds_behind(guarantee: &str) {
    let (input, output, dlq, dir) = counting_stage(
        &format!("{}-{guarantee}", unique()),
        "{ tumbling: 1s, idle: 2s }",
        "count",
        guarantee,
    );
    // Six seconds of input before kfn starts: it begins seconds behind, reading every
    // partition's backlog in chunks, one partition ahead of the others.
    let total = 60_000;
    let (producing, sent, stamps) = produce_stamped(input.clone(), total, 5_000, 8);
    eventually(LONG, "a backlog", async || {
        (sent.load(Ordering::Relaxed) >= 30_000).then_some(())
    })
    .await;
    let kfn = Kfn::start(dir.path());
    producing.await.unwrap();
    let stopped = kfn::record::now_ms();
    let expected = tumbling_counts(&stamps.lock().unwrap(), 1_000);
    let last_end = expected
        .keys()
        .map(|(_, start)| start + 1_000)
        .max()
        .unwrap();
    let out = reader(&bootstrap(), &output);
    let mut got = BTreeMap::new();
    let mut last_seen = 0;
    let deadline = std::time::Instant::now() + LONG;
    while got.len() < expected.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} windows",
            got.len(),
            expected.len()
        );
        for r in common::read_some(&out, 10_000, Duration::from_millis(200)).await {
            let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
            let id = (
                v["key"].as_str().unwrap().to_string(),
                v["start"].as_i64().unwrap(),
            );
            if id.1 + 1_000 == last_end {
                last_seen = kfn::record::now_ms();
            }
            got.insert(id, v["value"].as_u64().unwrap());
        }
    }
    assert_eq!(
        got, expected,
        "every window's final count equals the independent count"
    );
    let late = read_until_quiet(&reader(&bootstrap(), &dlq), Duration::from_secs(3)).await;
    assert!(
        late.is_empty(),
        "on-time records dead-lettered: {:?}",
        &late[..late.len().min(3)]
    );
    // The last window closes once the input has been idle for 2 s: within that plus
    // a second of the later of its end and the last record.
    let due = last_end.max(stopped) + 2_000;
    eprintln!(
        "idle close ({guarantee}): last window [{}, {last_end}) final {} ms after it was due (input stopped at {stopped})",
        last_end - 1_000,
        last_seen - due
    );
    assert!(
        last_seen <= due + 1_000,
        "last window final at {last_seen}, due at {due}"
    );
    assert!(kfn.terminate(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn saving_kfn_yaml_applies_the_difference_under_load() {
    // The scenario of `live_config.rs`, on a real broker: consumer groups rebalance
    // for real here, so "steady kept running" means its group was never disturbed.
    let id = unique();
    let kafka = format!(
        "{{ brokers: \"{}\", application-id: live-{id} }}",
        bootstrap()
    );
    common::live::scenario(&kafka, &|name| format!("live-{name}-{id}")).await;
}

/// Partition count and `cleanup.policy` of `topic` on the broker (None: missing).
async fn layout(topic: &str) -> Option<(usize, String)> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let config = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .clone();
    let c: BaseConsumer = config.create().unwrap();
    let partitions = tokio::task::block_in_place(|| {
        let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
        md.topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
    })?;
    let admin: AdminClient<_> = config.create().unwrap();
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let policy = described[0]
        .as_ref()
        .unwrap()
        .get("cleanup.policy")
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    Some((partitions, policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker: see the module docs"]
async fn missing_topics_are_created_partitioned_like_what_they_follow() {
    // One stage on an existing 4-partition input, one binding on a missing input:
    // kfn plans every missing topic from one read of the cluster and creates them in
    // one request, each partitioned like what it follows.
    let id = unique();
    let (input, new_input) = (format!("plan-in-{id}"), format!("plan-new-{id}"));
    create_topic(&input, 4);
    let body = format!(
        "bindings:\n  probe: {{ function: probe, in: {new_input}, out: plan-out-{id}, dlq: plan-dlq-{id} }}\n\
         analytics:\n  counted:\n    in: {input}\n    key: /name\n    \
         window: {{ tumbling: 5s }}\n    aggregate: count\n    out: plan-counts-{id}\n"
    );
    let dir = app(&id, "", &body);
    let kfn = Kfn::start(dir.path());
    let app_id = format!("app-{id}");
    let expected = [
        (input.clone(), 4, "delete"),
        (new_input.clone(), 3, "delete"), // a new input: kfn's default
        (format!("plan-out-{id}"), 3, "delete"),
        (format!("plan-dlq-{id}"), 3, "delete"),
        (format!("plan-counts-{id}"), 4, "delete"),
        (format!("{app_id}.counted.dlq"), 4, "delete"),
        (format!("{app_id}.counted.repartition"), 4, "delete"),
        (format!("{app_id}.counted.changelog"), 4, "compact"),
    ];
    for (topic, partitions, policy) in &expected {
        assert_eq!(
            layout(topic).await,
            Some((*partitions, policy.to_string())),
            "{topic}"
        );
    }
    assert!(kfn.terminate(Duration::from_secs(30)).success());

    // A changelog partitioned otherwise than what its store aggregates is refused at
    // start, with what to do about it.
    let id = unique();
    let input = format!("plan-in-{id}");
    create_topic(&input, 4);
    create_topic(&format!("app-{id}.counted.changelog"), 2);
    let body = format!(
        "analytics:\n  counted:\n    in: {input}\n    key: record-key\n    \
         window: {{ tumbling: 5s }}\n    aggregate: count\n"
    );
    let dir = app(&id, "", &body);
    let out = Command::new(env!("CARGO_BIN_EXE_kfn"))
        .args(["up", "--no-build", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("kfn.yaml"))
        .output()
        .expect("run kfn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kfn started: {stderr}");
    assert!(
        stderr.contains(&format!(
            "its changelog app-{id}.counted.changelog has 2 partitions but {input} has 4"
        )) && stderr.contains("Delete"),
        "{stderr}"
    );
}
