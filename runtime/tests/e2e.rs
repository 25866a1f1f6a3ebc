//! End to end on the embedded broker: the whole app (config → Kafka → wasm → windows
//! → HTTP), driven and checked from outside through Kafka and HTTP.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{
    eventually, get_json, http, produce, producer, read_n, read_until_quiet, reader, sse,
};
use kfn::app::App;

const LONG: Duration = Duration::from_secs(30);

/// Starts kfn in a temp dir with `yaml` and the given `.wasm` files.
async fn start(yaml: &str, functions: &[(&str, PathBuf)]) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = common::start_app(dir.path(), yaml, functions).await;
    (app, dir)
}

fn binding(app: &App, name: &str) -> kfn::observe::BindingInfo {
    app.bindings.get(name).expect("binding").info()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplier_to_topic_to_function_to_topic() {
    let yaml = r#"
kafka: { brokers: embedded }
bindings:
  page-supplier: { supplier: page-supplier, every: 50ms, out: R2 }
  page-enricher: { function: page-enricher, in: R2, out: R3, config: { tag: e2e } }
"#;
    let (app, _dir) = start(
        yaml,
        &[
            ("page-supplier", common::example("page-supplier")),
            ("page-enricher", common::example("page-enricher")),
        ],
    )
    .await;

    for r in read_n(&reader(&app.bootstrap, "R2"), 5, LONG).await {
        let e = json(&r.value);
        assert!(["P1", "P2"].contains(&e["name"].as_str().unwrap()), "{e}");
        assert!(["U1", "U2"].contains(&e["user"].as_str().unwrap()), "{e}");
        assert!(e["duration"].as_u64().unwrap() < 9000, "{e}");
        assert!(e["date"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    for r in read_n(&reader(&app.bootstrap, "R3"), 5, LONG).await {
        let e = json(&r.value);
        assert_eq!(e["enriched_by"], "page-enricher v1");
        assert_eq!(e["tag"], "e2e");
        assert_eq!(e["slow"], e["duration"].as_u64().unwrap() > 5000);
        assert_eq!(r.key.as_deref(), e["name"].as_str());
    }
    let enricher = binding(&app, "page-enricher");
    assert_eq!(enricher.errors, 0);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_counts_equal_an_independent_count() {
    let yaml = r#"
kafka: { brokers: embedded }
analytics:
  page-count:
    in: A
    function: page-filter
    key: /name
    window: { tumbling: 1s, grace: 3s }
    aggregate: count
    out: A-out
"#;
    let (app, _dir) = start(yaml, &[("page-filter", common::example("page-filter"))]).await;
    let p = producer(&app.bootstrap);

    // 400 events over 4 s of event time, a minute ago, in one partition (one key),
    // so stream time only moves forward; the windows then close on idle wall-clock.
    // The grace keeps a window open through a stall of a loaded machine mid-stream
    // (idle time advances the watermark too); all sends are in flight at once.
    let base = (kfn::record::now_ms() / 1000 - 60) * 1000;
    let mut expected: BTreeMap<(i64, String), u64> = BTreeMap::new();
    let mut sends = Vec::new();
    let sender = &p;
    for i in 0..400i64 {
        let name = ["P1", "P2", "P3"][(i * 7 % 3) as usize];
        let duration = (i * 37) % 300; // about a third are <= 100 and filtered out
        let ts = base + i * 10;
        if duration > 100 {
            *expected
                .entry((ts - ts % 1000, name.to_string()))
                .or_default() += 1;
        }
        let value = format!(r#"{{"name":"{name}","user":"U1","date":"x","duration":{duration}}}"#);
        sends.push(async move { produce(sender, "A", Some("k"), &value, Some(ts)).await });
    }
    futures::future::join_all(sends).await;

    let out = read_n(&reader(&app.bootstrap, "A-out"), expected.len(), LONG).await;
    let got: BTreeMap<(i64, String), u64> = out
        .iter()
        .map(|r| {
            let v = json(&r.value);
            assert_eq!(
                v["end"].as_i64().unwrap() - v["start"].as_i64().unwrap(),
                1000
            );
            (
                (
                    v["start"].as_i64().unwrap(),
                    v["key"].as_str().unwrap().to_string(),
                ),
                v["value"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected, "closed windows on A-out");

    // The store answers the same, through the API.
    let windows = get_json(
        app.http_addr,
        &format!("/api/stores/page-count?from={base}&to={}", base + 4000),
    )
    .await;
    let from_api: BTreeMap<(i64, String), u64> = windows["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                (
                    w["start"].as_i64().unwrap(),
                    w["key"].as_str().unwrap().to_string(),
                ),
                w["value"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        from_api, expected,
        "windows from GET /api/stores/page-count"
    );
    // One instance holds every partition of what the stage aggregates: complete.
    assert_eq!(windows["complete"], true, "{windows}");
    assert_eq!(windows["partitions"], 3);
    assert_eq!(
        windows["instances"][0]["partitions"],
        serde_json::json!([0, 1, 2])
    );

    // A record for a window that has closed is late: dead-lettered with a reason, not lost.
    produce(
        &p,
        "A",
        Some("k"),
        r#"{"name":"P1","user":"U1","date":"x","duration":500}"#,
        Some(base),
    )
    .await;
    let late = read_n(&reader(&app.bootstrap, "kfn.page-count.dlq"), 1, LONG).await;
    assert!(
        late[0]
            .header("kfn-error")
            .unwrap()
            .starts_with("late record"),
        "{late:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hopping_updates_and_session_finals_through_the_app() {
    let yaml = r#"
kafka: { brokers: embedded }
analytics:
  hops:
    in: W
    key: record-key
    window: { hopping: { size: 2s, advance: 1s }, idle: 1s }
    aggregate: { views: count, total: { sum: /n } }
    emit: changes
    emit-every: 100ms
    out: W-hops
  sessions:
    in: W
    key: /user
    window: { session: { gap: 300ms }, idle: 1s }
    aggregate: count
    out: W-sessions
"#;
    let (app, _dir) = start(yaml, &[]).await;
    let p = producer(&app.bootstrap);
    // 80 records over 4 s of event time a minute ago, in one partition (key "k"),
    // in order; users take turns in bursts, so sessions end and begin. The windows
    // close once the input has been idle for 1 s.
    let base = (kfn::record::now_ms() / 1000 - 60) * 1000;
    let mut hops: BTreeMap<(i64, i64), (u64, f64)> = BTreeMap::new();
    let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for i in 0..80i64 {
        let ts = base + i * 50;
        let user = if (i / 10) % 2 == 0 { "u1" } else { "u2" };
        let value = format!(r#"{{"user":"{user}","n":{i}}}"#);
        produce(&p, "W", Some("k"), &value, Some(ts)).await;
        let mut start = ts - ts % 1000;
        while start > ts - 2000 {
            let e = hops.entry((start, start + 2000)).or_default();
            e.0 += 1;
            e.1 += i as f64;
            start -= 1000;
        }
        times.entry(user.to_string()).or_default().push(ts);
    }
    // Sessions, independently: a user's records closer than the gap belong together.
    let mut sessions: BTreeMap<(String, i64, i64), u64> = BTreeMap::new();
    for (user, ts) in &times {
        let (mut first, mut last, mut n) = (ts[0], ts[0], 0);
        for &t in ts {
            if t - last > 300 {
                sessions.insert((user.clone(), first, last), n);
                (first, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        sessions.insert((user.clone(), first, last), n);
    }

    let finals = common::finals_of;
    let got = eventually(LONG, "every hopping window's final value", async || {
        let all = read_until_quiet(
            &reader(&app.bootstrap, "W-hops"),
            Duration::from_millis(500),
        )
        .await;
        let f = finals(&all);
        (f.len() == hops.len()).then_some((f, all))
    })
    .await;
    let expected: BTreeMap<_, _> = hops
        .iter()
        .map(|((s, e), (n, total))| {
            (
                ("k".to_string(), *s, *e),
                serde_json::json!({"views": n, "total": total}),
            )
        })
        .collect();
    assert_eq!(got.0, expected, "hopping finals on W-hops");
    let updates = got
        .1
        .iter()
        .filter(|r| json(&r.value)["final"] == false)
        .count();
    assert!(updates > 0, "emit: changes sent updates before the finals");
    let finals_n = got
        .1
        .iter()
        .filter(|r| json(&r.value)["final"] == true)
        .count();
    assert_eq!(finals_n, hops.len(), "one final per window");

    let got = eventually(LONG, "every session's final value", async || {
        let all = read_until_quiet(
            &reader(&app.bootstrap, "W-sessions"),
            Duration::from_millis(500),
        )
        .await;
        let f = finals(&all);
        (f.len() == sessions.len()).then_some(f)
    })
    .await;
    let expected: BTreeMap<_, _> = sessions
        .iter()
        .map(|(k, n)| (k.clone(), serde_json::json!(n)))
        .collect();
    assert_eq!(got, expected, "session finals on W-sessions");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_records_are_dead_lettered_and_the_binding_keeps_going() {
    let yaml = r#"
kafka: { brokers: embedded }
bindings:
  probe: { function: probe, in: F, out: G }
"#;
    let (app, _dir) = start(yaml, &[("probe", common::guest("probe"))]).await;
    let p = producer(&app.bootstrap);
    for v in ["flaky", "a", "error", "trap", "b"] {
        produce(&p, "F", Some("k"), v, None).await;
    }
    let out = read_n(&reader(&app.bootstrap, "G"), 3, LONG).await;
    // Sorted: the flaky output has no key, so it may land in another partition of G.
    let mut values: Vec<&str> = out.iter().map(|r| r.value.as_str()).collect();
    values.sort();
    assert_eq!(
        values,
        ["flaky ok on call 2", "probe-v1:a", "probe-v1:b"],
        "a failing call is retried; a record that keeps failing does not hold up the next"
    );

    let dlq = read_n(&reader(&app.bootstrap, "probe.dlq"), 2, LONG).await;
    let mut by_value: BTreeMap<&str, &common::Read> =
        dlq.iter().map(|r| (r.value.as_str(), r)).collect();
    let error = by_value.remove("error").expect("the erroring record");
    assert!(
        error.header("kfn-error").unwrap().contains("asked to fail"),
        "{error:?}"
    );
    let trap = by_value.remove("trap").expect("the trapping record");
    assert!(
        trap.header("kfn-error").unwrap().contains("trapped"),
        "{trap:?}"
    );
    for r in [error, trap] {
        assert_eq!(r.header("kfn-binding"), Some("probe"));
        assert_eq!(r.header("kfn-function"), Some("probe"));
        assert_eq!(r.header("kfn-source-topic"), Some("F"));
        assert!(
            r.header("kfn-source-offset")
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        assert_eq!(r.key.as_deref(), Some("k"));
        assert_eq!(
            r.header("kfn-attempts"),
            Some("3"),
            "tried 3 times (the default) first"
        );
    }

    let info = eventually(LONG, "counters to settle", async || {
        let b = binding(&app, "probe");
        (b.dead_lettered == 2).then_some(b)
    })
    .await;
    assert_eq!((info.records_in, info.records_out, info.errors), (5, 3, 2));
    let (history, _) = app.events.subscribe();
    assert_eq!(
        history
            .iter()
            .filter(|e| e.kind == kfn::observe::EventKind::RecordFailed)
            .count(),
        2
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_and_sse_with_a_real_client() {
    let root = common::repo_root();
    let yaml = std::fs::read_to_string(root.join("kfn.yaml")).unwrap();
    let names = [
        "page-supplier",
        "page-enricher",
        "page-filter",
        "page-logger",
    ];
    let functions: Vec<(&str, PathBuf)> = names.iter().map(|n| (*n, common::example(n))).collect();
    let (app, _dir) = start(&yaml, &functions).await;
    let addr = app.http_addr;

    let info = get_json(addr, "/api/info").await;
    assert_eq!(info["bootstrap"], app.bootstrap.as_str());
    assert_eq!(info["broker"], "embedded");

    let functions = get_json(addr, "/api/functions").await;
    for name in names {
        let f = functions
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .expect(name);
        assert_eq!(f["status"], "ready", "{f}");
        assert_eq!(f["hash"].as_str().unwrap().len(), 64);
    }
    let bindings = get_json(addr, "/api/bindings").await;
    let mut kinds: Vec<&str> = bindings
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "analytics",
            "consumer",
            "function",
            "repartition",
            "supplier"
        ],
        "3 bindings + 1 analytics stage grouping by a value field (two steps)"
    );
    let of_kind = |kind: &str| {
        bindings
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["kind"] == kind)
            .unwrap()
            .clone()
    };
    let (step1, step2) = (of_kind("repartition"), of_kind("analytics"));
    assert_eq!(step1["output"], "kfn.page-count.repartition", "{step1}");
    assert_eq!(step2["input"], "kfn.page-count.repartition", "{step2}");
    let stores = get_json(addr, "/api/stores").await;
    assert_eq!(stores[0]["name"], "page-count");
    assert_eq!(stores[0]["serve"], "/analytics");
    assert_eq!(stores[0]["window_ms"], 5000);

    // The original app's publish endpoint, feeding the consumer binding.
    let (status, body) = http(
        addr,
        "POST",
        "/api/topics/R1?key=k1",
        r#"{"name":"P1","user":"U1","date":"d","duration":5}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(json(&body)["offset"].as_i64().unwrap() >= 0);
    eventually(
        LONG,
        "page-logger to consume the published record",
        async || (binding(&app, "page-logger").records_in == 1).then_some(()),
    )
    .await;
    let (status, body) = http(addr, "POST", "/api/topics/bad%20topic", "x").await;
    assert_eq!(status, 400, "{body}");

    // The original app's SSE endpoint: a JSON object of page counts every second.
    let events = sse(addr, "/analytics", 3, LONG).await;
    for e in &events {
        assert!(json(e).is_object(), "{e}");
    }
    let counted = eventually(LONG, "page counts on /analytics", async || {
        let e = sse(addr, "/analytics", 1, LONG).await;
        let v = json(&e[0]);
        v.as_object()
            .unwrap()
            .values()
            .any(|n| n.as_u64().unwrap_or(0) > 0)
            .then_some(v)
    })
    .await;
    assert!(
        counted
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k == "P1" || k == "P2"),
        "{counted}"
    );

    // Runtime events: history first.
    let feed = sse(addr, "/api/events", 1, LONG).await;
    assert!(json(&feed[0])["kind"].is_string());

    let (status, body) = http(addr, "GET", "/", "").await;
    assert_eq!(status, 200);
    assert!(body.contains("kfn"), "dashboard page");
    let (status, body) = http(addr, "GET", "/api/stores/nope", "").await;
    assert_eq!(status, 404);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("page-count")
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_versions_under_load_without_losing_records() {
    let yaml = r#"
kafka: { brokers: embedded }
bindings:
  swap: { function: fn, in: S, out: T }
"#;
    let (app, dir) = start(yaml, &[("fn", common::guest("probe"))]).await;
    let bootstrap = app.bootstrap.clone();
    let out = reader(&bootstrap, "T");

    // A steady stream of numbered records while the function is swapped.
    let load = tokio::spawn(async move {
        let p = producer(&bootstrap);
        for i in 0..600 {
            produce(&p, "S", Some("k"), &i.to_string(), None).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    read_n(&out, 50, LONG).await; // running on v1
    common::replace_function(dir.path(), "fn", &common::guest("probe-v2"));
    load.await.unwrap();
    let mut all = read_n(&out, 550, LONG).await;
    all.extend(read_until_quiet(&out, Duration::from_millis(500)).await);

    let mut seen = BTreeMap::new();
    let mut versions = Vec::new();
    for r in &all {
        let (version, n) = r.value.split_once(':').unwrap();
        *seen.entry(n.parse::<u32>().unwrap()).or_insert(0) += 1;
        if versions.last() != Some(&version) {
            versions.push(version);
        }
    }
    assert_eq!(all.len() + 50, 600, "every record out exactly once");
    assert!(seen.values().all(|&n| n == 1), "no duplicates");
    assert_eq!(
        versions,
        ["probe-v1", "probe-v2"],
        "one clean switch, in order"
    );
    let b = binding(&app, "swap");
    assert_eq!((b.records_in, b.records_out), (600, 600));

    // Garbage is rejected, visibly, and v2 keeps running.
    std::fs::write(dir.path().join("functions/fn.wasm"), b"not wasm at all").unwrap();
    let f = eventually(LONG, "the bad file to be reported", async || {
        let fs = get_json(app.http_addr, "/api/functions").await;
        let f = fs
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "fn")
            .cloned()
            .unwrap();
        (f["status"] == "error").then_some(f)
    })
    .await;
    assert!(
        f["last_error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{f}"
    );
    produce(
        &producer(&app.bootstrap),
        "S",
        Some("k"),
        "after-garbage",
        None,
    )
    .await;
    assert_eq!(
        read_n(&out, 1, LONG).await[0].value,
        "probe-v2:after-garbage"
    );

    // Deleting the function pauses the binding on its next record; restoring resumes it.
    std::fs::remove_file(dir.path().join("functions/fn.wasm")).unwrap();
    eventually(LONG, "the function to be unloaded", async || {
        (app.registry.slot("fn").current().is_none()).then_some(())
    })
    .await;
    produce(
        &producer(&app.bootstrap),
        "S",
        Some("k"),
        "while-gone",
        None,
    )
    .await;
    let paused = eventually(LONG, "the binding to pause", async || {
        let b = binding(&app, "swap");
        (b.status == kfn::observe::BindingState::Paused).then_some(b)
    })
    .await;
    assert!(paused.status_reason.unwrap().contains("not loaded"));
    common::replace_function(dir.path(), "fn", &common::guest("probe"));
    assert_eq!(read_n(&out, 1, LONG).await[0].value, "probe-v1:while-gone");
    assert_eq!(
        binding(&app, "swap").status,
        kfn::observe::BindingState::Running
    );
    app.shutdown().await;
}

#[test]
fn validate_prints_every_mistake_with_its_line() {
    let fixture =
        common::repo_root().join("runtime/tests/fixtures/config/invalid/three-mistakes.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kfn"))
        .arg("validate")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        ":5:",
        ":11:",
        ":12:",
        "unknown key 'colour'",
        "invalid duration '5x'",
        "'page-taggr' not found",
        "3 errors",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_is_revalidated_and_reported() {
    let yaml =
        "kafka: { brokers: embedded }\nbindings:\n  probe: { function: probe, in: F, out: G }\n";
    let (app, dir) = start(yaml, &[("probe", common::guest("probe"))]).await;
    let (_, mut live) = app.events.subscribe();
    std::fs::write(
        dir.path().join("kfn.yaml"),
        format!("{yaml}  oops: {{ function: nope, in: F }}\n"),
    )
    .unwrap();
    let event = eventually(LONG, "a config event", async || match live.try_recv() {
        Ok(e) if e.kind == kfn::observe::EventKind::Config => Some(e),
        _ => None,
    })
    .await;
    assert!(event.message.contains("INVALID"), "{event:?}");
    assert!(
        event.message.contains("kfn.yaml:4:"),
        "the error names its line: {event:?}"
    );
    assert!(event.message.contains("'nope' not found"), "{event:?}");
    // The running app is unchanged.
    assert_eq!(
        binding(&app, "probe").status,
        kfn::observe::BindingState::Running
    );
    app.shutdown().await;
}
