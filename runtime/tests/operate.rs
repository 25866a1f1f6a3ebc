//! Operating kfn: `/metrics` read by a real Prometheus text-format parser and checked
//! against a run with known counts (and against what Kafka itself holds), the
//! health routes, the API token, and JSON logs. On the embedded broker.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, get_json, http, http_with, produce, producer, read_n, reader};

const LONG: Duration = Duration::from_secs(60);

/// `/metrics`, parsed by `prometheus-parse`.
async fn scrape(addr: std::net::SocketAddr) -> prometheus_parse::Scrape {
    let (status, body) = http(addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("# EOF\n"),
        "a complete OpenMetrics exposition"
    );
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

/// The value of the sample `metric` whose labels include all of `labels`.
fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .and_then(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

fn must(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    value(s, metric, labels).unwrap_or_else(|| {
        let names: std::collections::BTreeSet<_> = s.samples.iter().map(|x| &x.metric).collect();
        panic!("no {metric}{labels:?} in /metrics (metrics: {names:?})")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let yaml = r#"
kafka: { brokers: embedded }
bindings:
  probe: { function: probe, in: F, out: G, limits: { retry-backoff: 10ms } }
analytics:
  counts:
    in: M
    key: record-key
    window: { tumbling: 10s }
    aggregate: { sum: /n }
"#;
    let dir = tempfile::tempdir().unwrap();
    let app = common::start_app(dir.path(), yaml, &[("probe", common::guest("probe"))]).await;
    let p = producer(&app.bootstrap);

    // 100 records into the stage, all one key (one partition, so in order): 97 that
    // count, 2 that are not JSON, then 1 for a window that closed an hour ago.
    let base = (kfn::record::now_ms() / 10_000 - 6) * 10_000;
    for i in 0..100i64 {
        let (value, ts) = match i {
            40 | 41 => ("not json".to_string(), base + i),
            99 => (r#"{"n": 1}"#.to_string(), base - 3_600_000),
            _ => (format!(r#"{{"n": {i}}}"#), base + i),
        };
        produce(&p, "M", Some("k"), &value, Some(ts)).await;
    }
    // 10 records into the function: 8 answered, one guest error, one trap (each
    // tried 3 times: `limits.attempts` defaults to 3).
    for i in 0..10 {
        let value = match i {
            3 => "error".to_string(),
            6 => "trap".to_string(),
            _ => format!("r{i}"),
        };
        produce(&p, "F", None, &value, None).await;
    }

    // The independent oracle: what Kafka holds.
    let dead = read_n(&reader(&app.bootstrap, "kfn.counts.dlq"), 3, LONG).await;
    let late = dead
        .iter()
        .filter(|r| {
            r.header("kfn-error")
                .is_some_and(|e| e.starts_with("late record"))
        })
        .count();
    assert_eq!(late, 1, "{dead:?}");
    let out = read_n(&reader(&app.bootstrap, "G"), 8, LONG).await;
    assert_eq!(out.len(), 8);
    read_n(&reader(&app.bootstrap, "probe.dlq"), 2, LONG).await;

    // Counters move once effects are durable: wait for them, then scrape.
    let s = eventually(LONG, "all 110 records counted", async || {
        let s = scrape(app.http_addr).await;
        let counts = value(&s, "kfn_records_in_total", &[("binding", "counts")]);
        let probe = value(&s, "kfn_records_in_total", &[("binding", "probe")]);
        (counts == Some(100.0) && probe == Some(10.0)).then_some(s)
    })
    .await;
    let counts = [("binding", "counts")];
    let kind = |k| [("binding", "counts"), ("kind", k)];
    assert_eq!(must(&s, "kfn_dead_lettered_total", &counts), 3.0);
    assert_eq!(must(&s, "kfn_errors_total", &kind("late")), 1.0);
    assert_eq!(must(&s, "kfn_errors_total", &kind("invalid")), 2.0);
    assert_eq!(must(&s, "kfn_errors_total", &kind("guest_error")), 0.0);
    assert_eq!(must(&s, "kfn_records_out_total", &counts), 0.0);
    assert_eq!(must(&s, "kfn_end_to_end_seconds_count", &counts), 100.0);
    // The late record is an hour old: the end-to-end sum holds at least that.
    assert!(must(&s, "kfn_end_to_end_seconds_sum", &counts) >= 3600.0);

    let probe = [("binding", "probe")];
    let pkind = |k| [("binding", "probe"), ("kind", k)];
    assert_eq!(must(&s, "kfn_records_out_total", &probe), 8.0);
    assert_eq!(must(&s, "kfn_dead_lettered_total", &probe), 2.0);
    assert_eq!(must(&s, "kfn_errors_total", &pkind("guest_error")), 1.0);
    assert_eq!(must(&s, "kfn_errors_total", &pkind("trap")), 1.0);
    assert_eq!(must(&s, "kfn_errors_total", &pkind("timeout")), 0.0);
    // 8 calls that answered, 3 for the error and 3 for the trap.
    assert_eq!(must(&s, "kfn_guest_call_seconds_count", &probe), 14.0);
    let buckets = s
        .samples
        .iter()
        .find(|x| x.metric == "kfn_guest_call_seconds" && x.labels.get("binding") == Some("probe"))
        .expect("guest call histogram");
    match &buckets.value {
        prometheus_parse::Value::Histogram(b) => {
            let inf = b.iter().find(|c| c.less_than.is_infinite()).expect("+Inf");
            assert_eq!(inf.count, 14.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        must(&s, "kfn_function_generation", &[("function", "probe")]),
        1.0
    );
    assert_eq!(
        must(
            &s,
            "kfn_function_status",
            &[("function", "probe"), ("status", "ready")]
        ),
        1.0
    );
    assert_eq!(
        must(
            &s,
            "kfn_binding_status",
            &[("binding", "probe"), ("status", "running")]
        ),
        1.0
    );
    // Lag is known for the partitions read: nothing left to read now (sampled at
    // most once a second, so it is awaited).
    eventually(
        LONG,
        "the lag gauge to read 0 for every partition read",
        async || {
            let s = scrape(app.http_addr).await;
            let lag: Vec<f64> = s
                .samples
                .iter()
                .filter(|x| {
                    x.metric == "kfn_consumer_lag_records"
                        && x.labels.get("binding") == Some("counts")
                })
                .map(|x| match x.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                    _ => -1.0,
                })
                .collect();
            (!lag.is_empty() && lag.iter().all(|l| *l == 0.0)).then_some(())
        },
    )
    .await;
    // The store holds the open window of the 97 counted records; the same as the API says.
    let stores = get_json(app.http_addr, "/api/stores").await;
    let open = stores[0]["open_windows"].as_f64().unwrap();
    assert_eq!(
        must(&s, "kfn_window_store_windows", &[("store", "counts")]),
        open
    );
    assert!(open >= 1.0, "{stores}");
    // And `/api/bindings` tells the same story, kind by kind.
    let bindings = get_json(app.http_addr, "/api/bindings").await;
    let by_name: BTreeMap<&str, &serde_json::Value> = bindings
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b))
        .collect();
    assert_eq!(by_name["counts"]["errors_by_kind"]["late"], 1);
    assert_eq!(by_name["counts"]["late"], 1);
    assert_eq!(by_name["counts"]["errors"], 3);
    assert_eq!(by_name["probe"]["errors_by_kind"]["trap"], 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_routes_answer_orchestrators() {
    let yaml =
        "kafka: { brokers: embedded }\nbindings:\n  probe: { function: probe, in: F, out: G }\n";
    let dir = tempfile::tempdir().unwrap();
    let app = common::start_app(dir.path(), yaml, &[("probe", common::guest("probe"))]).await;
    let (status, body) = http(app.http_addr, "GET", "/healthz", "").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // Ready once the broker probe answered and the binding runs.
    let ready = eventually(LONG, "/readyz 200", async || {
        let (status, body) = http(app.http_addr, "GET", "/readyz", "").await;
        (status == 200).then_some(body)
    })
    .await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["waiting"], serde_json::json!([]));
    app.shutdown().await;
}

/// `kfn up` as a user starts it, with its output read line by line.
struct Up {
    child: Child,
    stdout: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Up {
    fn start(dir: &std::path::Path, token: Option<&str>, args: &[&str]) -> Up {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kfn"));
        cmd.arg("up")
            .arg("--config")
            .arg(dir.join("kfn.yaml"))
            .arg("--no-build")
            .args(args)
            .env_remove("KFN_HTTP_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("KFN_HTTP_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("kfn starts");
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Up {
            child,
            stdout,
            stderr,
        }
    }

    /// The first stdout line containing `needle`.
    fn line(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => {
                    let err: Vec<String> = self.stderr.try_iter().collect();
                    panic!(
                        "no line with {needle:?} on stdout; stderr:\n{}",
                        err.join("\n")
                    )
                }
            }
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("functions")).unwrap();
    std::fs::copy(
        common::guest("probe"),
        dir.path().join("functions/probe.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kfn.yaml"),
        "kafka: { brokers: embedded }\nbindings:\n  probe: { function: probe, in: F, out: G }\n",
    )
    .unwrap();
    dir
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let dir = project();
    let out = Command::new(env!("CARGO_BIN_EXE_kfn"))
        .args(["up", "--no-build", "--listen", "0.0.0.0:0", "--config"])
        .arg(dir.path().join("kfn.yaml"))
        .env_remove("KFN_HTTP_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "refusing to listen on 0.0.0.0:0",
        "http.token",
        "KFN_HTTP_TOKEN",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    // A token too short to be one is refused too, naming where it came from.
    let out = Command::new(env!("CARGO_BIN_EXE_kfn"))
        .args(["up", "--no-build", "--listen", "0.0.0.0:0", "--config"])
        .arg(dir.path().join("kfn.yaml"))
        .env("KFN_HTTP_TOKEN", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("KFN_HTTP_TOKEN: the API token must have at least 16 characters"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_publishing_needs_it() {
    let token = "test-token-0123456789abcdef";
    let dir = project();
    let up = Up::start(
        dir.path(),
        Some(token),
        &["--listen", "0.0.0.0:0", "--log-format", "json"],
    );
    let bootstrap = up
        .line("kfn: Kafka bootstrap:", LONG)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    let line = up.line("kfn: dashboard: http://", LONG);
    let port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();

    let (status, body) = http(addr, "POST", "/api/topics/F", "hello").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let wrong = "Bearer test-token-0123456789abcdeX";
    let (status, _) = http_with(
        addr,
        "POST",
        "/api/topics/F",
        &[("Authorization", wrong)],
        "x",
    )
    .await;
    assert_eq!(status, 401);
    // Reads stay open.
    let (status, _) = http(addr, "GET", "/api/bindings", "").await;
    assert_eq!(status, 200);
    let (status, _) = http(addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);

    let bearer = format!("Bearer {token}");
    let (status, body) = http_with(
        addr,
        "POST",
        "/api/topics/F",
        &[("Authorization", &bearer)],
        "hello",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["topic"], "F");
    // It really went through the function: the probe's answer is on G.
    let out = read_n(&reader(&bootstrap, "G"), 1, LONG).await;
    assert!(out[0].value.ends_with(":hello"), "{:?}", out[0]);

    // `--log-format json`: every stderr line is one JSON object with level and fields.
    let logs: Vec<serde_json::Value> = up
        .stderr
        .try_iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["level"].is_string() && l["fields"].is_object()),
        "{logs:?}"
    );
}
