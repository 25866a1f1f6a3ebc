//! Helpers shared by the integration tests: guest fixtures, awaiting conditions with
//! deadlines, a Kafka reader/writer on the embedded broker, and a minimal HTTP/SSE
//! client over a real socket.
#![allow(dead_code)]
pub mod kstreams;
pub mod live;
pub mod windows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A compile cache shared by the tests of a checkout, so each component is compiled
/// cold once rather than once per test.
pub fn cache_dir() -> PathBuf {
    repo_root().join("target").join("kfn-test-cache")
}

/// A built test guest (`runtime/tests/guests/NAME.wasm`).
pub fn guest(name: &str) -> PathBuf {
    built(
        &repo_root().join("runtime/tests/guests"),
        name,
        "cargo kfn build --dir runtime/tests/guests",
    )
}

/// A built example function (`functions/NAME.wasm`).
pub fn example(name: &str) -> PathBuf {
    built(&repo_root().join("functions"), name, "cargo kfn build")
}

fn built(dir: &Path, name: &str, command: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the fixtures first with `{command}` (from the repository root)",
        path.display()
    );
    path
}

/// Polls `check` until it returns `Some`, or panics after `limit` saying `what`.
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A record as read back from a topic.
#[derive(Debug, Clone)]
pub struct Read {
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    pub partition: i32,
    pub offset: i64,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Creates `topic` on a real broker (one replica); call from a multi-threaded runtime.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        rt.block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
    })
    .expect("create topic");
}

/// The entries of `expected` that `got` lacks or holds another value for, each as
/// `key: expected v, got w`.
pub fn differences<K: std::fmt::Debug + Ord, V: std::fmt::Debug + PartialEq>(
    expected: &std::collections::BTreeMap<K, V>,
    got: &std::collections::BTreeMap<K, V>,
) -> Vec<String> {
    expected
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: expected {v:?}, got {:?}", got.get(k)))
        .collect()
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1")
        .create()
        .expect("test producer")
}

pub async fn produce(
    p: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    value: &str,
    timestamp: Option<i64>,
) {
    let mut r = FutureRecord::to(topic).payload(value);
    if let Some(k) = key {
        r = r.key(k);
    }
    if let Some(ts) = timestamp {
        r = r.timestamp(ts);
    }
    p.send(r, Timeout::After(Duration::from_secs(10)))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

/// How many records `topic` holds, from the broker's watermarks: what a reader would
/// eventually see, without waiting for one to join its group (0 if it does not exist).
pub fn records_in(bootstrap: &str, topic: &str) -> i64 {
    let c: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("watermark client");
    tokio::task::block_in_place(|| {
        let t = Duration::from_secs(10);
        let md = c.fetch_metadata(Some(topic), t).expect("metadata");
        md.topics()
            .iter()
            .flat_map(|tp| tp.partitions())
            .map(|p| {
                let (lo, hi) = c.fetch_watermarks(topic, p.id(), t).expect("watermarks");
                hi - lo
            })
            .sum()
    })
}

/// A reader of `topic` from the beginning, in its own consumer group.
pub fn reader(bootstrap: &str, topic: &str) -> StreamConsumer {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-reader-{topic}-{}", rand_suffix()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // Aborted transactions are invisible, as they are to any careful reader.
        .set("isolation.level", "read_committed")
        // The lowest a real broker accepts by default; one-member groups join at once.
        .set("session.timeout.ms", "6000")
        .create()
        .expect("test consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::process::id() as u64 * 1000 + N.fetch_add(1, Ordering::Relaxed)
}

/// Reads until `n` records arrived, or panics after `limit`.
pub async fn read_n(c: &StreamConsumer, n: usize, limit: Duration) -> Vec<Read> {
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = match tokio::time::timeout(left, c.recv()).await {
            Ok(m) => m.expect("consume"),
            Err(_) => panic!(
                "timed out after {limit:?}: read {} of {n} records",
                out.len()
            ),
        };
        out.push(to_read(&m));
    }
    out
}

/// Reads what has arrived: up to `max` records, stopping early after `quiet` with
/// nothing new (so it returns even while records keep coming).
pub async fn read_some(c: &StreamConsumer, max: usize, quiet: Duration) -> Vec<Read> {
    let mut out = Vec::new();
    while out.len() < max {
        match tokio::time::timeout(quiet, c.recv()).await {
            Ok(m) => out.push(to_read(&m.expect("consume"))),
            Err(_) => break,
        }
    }
    out
}

/// Reads whatever arrives until `quiet` passes with nothing new.
pub async fn read_until_quiet(c: &StreamConsumer, quiet: Duration) -> Vec<Read> {
    let mut out = Vec::new();
    while let Ok(m) = tokio::time::timeout(quiet, c.recv()).await {
        out.push(to_read(&m.expect("consume")));
    }
    out
}

fn to_read(m: &rdkafka::message::BorrowedMessage<'_>) -> Read {
    Read {
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        headers: m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        partition: m.partition(),
        offset: m.offset(),
    }
}

/// A plain HTTP/1.1 request over a real socket: (status, body).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    http_with(addr, method, path, &[], body).await
}

/// [`http`] with extra request headers.
pub async fn http_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path, "").await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// Opens an SSE stream and returns the `data:` payloads of the first `n` events.
pub async fn sse(addr: std::net::SocketAddr, path: &str, n: usize, limit: Duration) -> Vec<String> {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (r, mut w) = s.into_split();
    w.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let mut lines = BufReader::new(r).lines();
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("SSE {path}: {} of {n} events within {limit:?}", out.len()))
            .expect("read")
            .expect("stream ended");
        if let Some(data) = line.strip_prefix("data:") {
            out.push(data.trim().to_string());
        }
    }
    out
}

/// A registry on a fresh compile cache (kept alive by the returned directory).
pub fn registry() -> (std::sync::Arc<kfn::wasm::Registry>, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let engine = kfn::wasm::WasmEngine::new(Some(cache.path().to_path_buf())).unwrap();
    (
        kfn::wasm::Registry::new(engine, kfn::observe::Events::new()),
        cache,
    )
}

/// A worker for `function` as binding `test-binding`, with config `tag = blue`.
pub fn worker(
    registry: &kfn::wasm::Registry,
    function: &str,
    world: kfn::wasm::World,
    limits: kfn::wasm::Limits,
) -> kfn::wasm::Worker {
    kfn::wasm::Worker::new(
        registry.engine().clone(),
        registry.slot(function),
        kfn::wasm::GuestIdentity {
            binding: "test-binding".into(),
            function: function.into(),
        },
        std::collections::BTreeMap::from([("tag".to_string(), "blue".to_string())]),
        limits,
        world,
    )
}

/// A record with key `k` and the given value, as if read from `in`[0]@7.
pub fn record(value: &str) -> kfn::record::Record {
    kfn::record::Record {
        key: Some(b"k".to_vec()),
        value: value.as_bytes().to_vec(),
        headers: vec![],
        timestamp_ms: 0,
        topic: "in".into(),
        partition: 0,
        offset: 7,
        lease: 0,
    }
}

pub fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap()
}

/// Replaces `<dir>/functions/NAME.wasm` the way a build does (write aside, rename).
pub fn replace_function(dir: &Path, name: &str, from: &Path) {
    let tmp = dir.join("functions").join(format!(".{name}.tmp"));
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("functions").join(format!("{name}.wasm"))).unwrap();
}

/// Writes `yaml` as `<dir>/kfn.yaml`, copies the given `.wasm` files into
/// `<dir>/functions/`, and starts kfn there (HTTP on a free port, the shared cache).
pub async fn start_app(dir: &Path, yaml: &str, functions: &[(&str, PathBuf)]) -> kfn::app::App {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    for (name, wasm) in functions {
        std::fs::copy(wasm, dir.join("functions").join(format!("{name}.wasm"))).unwrap();
    }
    let path = dir.join("kfn.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config =
        kfn::config::Config::load(&path).unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
    kfn::app::App::start(
        config,
        kfn::app::Options {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            watch: true,
            config_path: Some(path),
            cache_dir: Some(cache_dir()),
            ..Default::default()
        },
    )
    .await
    .expect("kfn starts")
}

/// The host imports seen from a probe guest: config values (set and unset) and logging.
pub fn assert_host_imports(w: &mut kfn::wasm::Worker) {
    let one = |w: &mut kfn::wasm::Worker, input: &str| {
        let out = w
            .process(&record(input))
            .unwrap_or_else(|e| panic!("{input}: {e}"));
        String::from_utf8(out[0].value.clone()).unwrap()
    };
    assert_eq!(one(w, "config:tag"), "blue");
    assert_eq!(one(w, "config:nope"), "<unset>");
    assert_eq!(one(w, "log:hi from the guest"), "logged");
}

/// Compiles guest `name` into an empty cache, then again with a second engine on the
/// same cache (as after a restart), checking the second came from the cache.
pub fn compile_cold_and_warm(
    name: &str,
) -> (kfn::wasm::Compiled, kfn::wasm::Compiled, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let path = guest(name);
    let bytes = std::fs::read(&path).unwrap();
    let compile = || {
        kfn::wasm::WasmEngine::new(Some(cache.path().to_path_buf()))
            .unwrap()
            .compile(&path, &bytes)
            .unwrap()
    };
    let cold = compile();
    assert!(!cold.from_cache, "{name}: the empty cache had an artifact");
    let warm = compile();
    assert!(
        warm.from_cache,
        "{name}: the second engine did not use the cache"
    );
    (cold, warm, cache)
}

/// A window's (key, start, end) in a stage's result on `out`.
pub fn window_id(v: &serde_json::Value) -> (String, i64, i64) {
    (
        v["key"].as_str().unwrap().to_string(),
        v["start"].as_i64().unwrap(),
        v["end"].as_i64().unwrap(),
    )
}

/// The final values among a stage's results on `out`, by (key, start, end).
pub fn finals_of(
    records: &[Read],
) -> std::collections::BTreeMap<(String, i64, i64), serde_json::Value> {
    records
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.value)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.value))
        })
        .filter(|v| v["final"] == true)
        .map(|v| (window_id(&v), v["value"].clone()))
        .collect()
}

/// `kfn new WORLD <prefix>-<lang> --lang <lang>` for each of `langs`, in a project
/// under `root`, built as `kfn build` builds them (each build must succeed); the
/// functions' names and `.wasm` files.
pub fn build_templates(
    root: &Path,
    world: &str,
    prefix: &str,
    langs: &[&str],
) -> Vec<(String, PathBuf)> {
    let functions = root.join("functions");
    let built: Vec<(String, PathBuf)> = langs
        .iter()
        .map(|lang| {
            let name = format!("{prefix}-{lang}");
            kfn::scaffold::new_function(&functions, world, &name, lang)
                .unwrap_or_else(|e| panic!("kfn new {world} {name} --lang {lang}: {e}"));
            let wasm = functions.join(format!("{name}.wasm"));
            (name, wasm)
        })
        .collect();
    for (name, result) in kfn::builder::build_dir(&functions, false, None).unwrap() {
        assert!(
            !matches!(result, kfn::builder::Built::Failed { .. }),
            "{name}: {result:?}"
        );
    }
    built
}

/// The input records (`kfn-origin` topic:partition:offset) that `repartition` holds
/// more than once among its committed records, each with where its copies are
/// (partition@offset): for a stage under exactly-once there should be none. Reads
/// until the topic is quiet for `quiet`.
pub async fn repeated_origins(
    bootstrap: &str,
    repartition: &str,
    quiet: Duration,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let c = reader(bootstrap, repartition);
    let mut at: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in read_until_quiet(&c, quiet).await {
        if let Some(origin) = r.header("kfn-origin") {
            at.entry(origin.to_string())
                .or_default()
                .push(format!("{}@{}", r.partition, r.offset));
        }
    }
    at.retain(|_, copies| copies.len() > 1);
    at
}
