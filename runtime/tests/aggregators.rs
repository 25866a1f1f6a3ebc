//! Aggregator functions (world `aggregator`) in an `analytics:` stage, end to end on
//! the embedded broker: the final values on `out` against an oracle computed here
//! from the same input, for every language (the templates, as `kfn new aggregator`
//! makes them, and the examples) on tumbling, hopping and session windows (sessions
//! merge, so `merge` runs); a refused or trapping record; a failing `finish`; the
//! state limit; and a hot swap under load.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{eventually, get_json, produce, producer, read_until_quiet, reader};
use kfn::app::App;

const LONG: Duration = Duration::from_secs(60);

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// One input record: key (the page), timestamp, value.
#[derive(Debug, Clone)]
struct Event {
    key: String,
    ts: i64,
    value: String,
}

#[derive(Debug, Clone, Copy)]
enum Window {
    Tumbling(i64),
    Hopping(i64, i64),
    Session(i64),
}

impl Window {
    fn yaml(self) -> String {
        match self {
            Window::Tumbling(s) => format!("{{ tumbling: {s}ms, idle: 1s }}"),
            Window::Hopping(s, a) => {
                format!("{{ hopping: {{ size: {s}ms, advance: {a}ms }}, idle: 1s }}")
            }
            Window::Session(g) => format!("{{ session: {{ gap: {g}ms }}, idle: 1s }}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Window::Tumbling(_) => "tumbling",
            Window::Hopping(..) => "hopping",
            Window::Session(_) => "session",
        }
    }

    /// Every (key, start, end) window and the records in it, by brute force.
    fn assign(self, events: &[Event]) -> BTreeMap<(String, i64, i64), Vec<&Event>> {
        let mut out: BTreeMap<(String, i64, i64), Vec<&Event>> = BTreeMap::new();
        match self {
            Window::Tumbling(size) => {
                for e in events {
                    let start = e.ts - e.ts % size;
                    out.entry((e.key.clone(), start, start + size))
                        .or_default()
                        .push(e);
                }
            }
            Window::Hopping(size, advance) => {
                for e in events {
                    let mut start = e.ts - e.ts % advance;
                    while start > e.ts - size {
                        out.entry((e.key.clone(), start, start + size))
                            .or_default()
                            .push(e);
                        start -= advance;
                    }
                }
            }
            Window::Session(gap) => {
                let mut by_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
                for e in events {
                    by_key.entry(&e.key).or_default().push(e);
                }
                for (key, mut list) in by_key {
                    list.sort_by_key(|e| e.ts);
                    let mut session: Vec<&Event> = Vec::new();
                    for e in list {
                        if let Some(last) = session.last()
                            && e.ts - last.ts > gap
                        {
                            let (first, last) = (session[0].ts, last.ts);
                            out.insert(
                                (key.to_string(), first, last),
                                std::mem::take(&mut session),
                            );
                        }
                        session.push(e);
                    }
                    let (first, last) = (session[0].ts, session.last().unwrap().ts);
                    out.insert((key.to_string(), first, last), session);
                }
            }
        }
        out
    }
}

/// What each aggregator reports for a window holding `records`.
fn oracle(function: &str, records: &[&Event]) -> serde_json::Value {
    let events: Vec<serde_json::Value> = records.iter().map(|e| json(&e.value)).collect();
    match function {
        "duration-p95" => {
            let mut d: Vec<u64> = events
                .iter()
                .map(|e| e["duration"].as_u64().unwrap())
                .collect();
            d.sort();
            let rank = (d.len() * 95).div_ceil(100);
            let p95 = d[rank - 1];
            serde_json::json!({"p95": (p95 / 10 + 1) * 10, "count": d.len(), "max": d.last()})
        }
        "distinct-users-py" => {
            let users: std::collections::BTreeSet<&str> =
                events.iter().map(|e| e["user"].as_str().unwrap()).collect();
            serde_json::json!({"distinct": users.len(), "users": users})
        }
        "top-users-js" => {
            let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
            for e in &events {
                *totals.entry(e["user"].as_str().unwrap()).or_default() +=
                    e["duration"].as_u64().unwrap();
            }
            let mut top: Vec<(&str, u64)> = totals.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            top.truncate(3);
            serde_json::json!({ "top": top })
        }
        // The templates of every language: records and the bytes of their values.
        other => {
            let bytes: usize = records.iter().map(|e| e.value.len()).sum();
            let mut v = serde_json::json!({"records": records.len(), "bytes": bytes});
            if other == "agg-probe" {
                v["version"] = 1.into();
            }
            v
        }
    }
}

/// 600 PageEvents over three pages, in order per page, a minute ago: bursts 30 ms
/// apart with a 700 ms pause every 25 records, so sessions (gap 300 ms) end and
/// begin, and their windows can merge only through records that bridge them.
fn page_events() -> Vec<Event> {
    let base = (kfn::record::now_ms() / 1000 - 60) * 1000;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ts = base;
    (0..600)
        .map(|i| {
            ts += if i % 25 == 24 { 700 } else { 30 };
            let r = next();
            let page = format!("P{}", r % 3 + 1);
            let user = format!("U{}", (r >> 8) % 5 + 1);
            let duration = (r >> 16) % 9000;
            Event {
                value: format!(
                    r#"{{"name":"{page}","user":"{user}","date":"x","duration":{duration}}}"#
                ),
                key: page,
                ts,
            }
        })
        .collect()
}

/// Final values on `topic`, by (key, start, end), once `n` of them are there.
async fn finals(
    app: &App,
    topic: &str,
    n: usize,
) -> BTreeMap<(String, i64, i64), serde_json::Value> {
    eventually(LONG, &format!("{n} final windows on {topic}"), async || {
        let all =
            read_until_quiet(&reader(&app.bootstrap, topic), Duration::from_millis(500)).await;
        let finals = common::finals_of(&all);
        (finals.len() >= n).then_some(finals)
    })
    .await
}

const WINDOWS: [Window; 3] = [
    Window::Tumbling(1000),
    Window::Hopping(2000, 1000),
    Window::Session(300),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregators_in_every_language_equal_the_oracle_on_every_window_kind() {
    // The templates of the languages kfn builds in-process or with fetched tools,
    // built from the templates inside kfn; Rust's is the probe's aggregate.
    let projects = tempfile::tempdir().unwrap();
    let mut functions = common::build_templates(
        projects.path(),
        "aggregator",
        "agg",
        &["js", "python", "c", "go"],
    );
    functions.push(("agg-probe".into(), common::guest("agg-probe")));
    for example in ["duration-p95", "distinct-users-py", "top-users-js"] {
        functions.push((example.into(), common::example(example)));
    }

    let mut yaml = String::from("kafka: { brokers: embedded }\nanalytics:\n");
    for (f, _) in &functions {
        for w in WINDOWS {
            yaml.push_str(&format!(
                "  {f}-{kind}: {{ in: pages, key: record-key, window: {window}, aggregate: {{ function: {f} }}, out: {f}-{kind} }}\n",
                kind = w.name(),
                window = w.yaml(),
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let wasm: Vec<(&str, PathBuf)> = functions
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let app = common::start_app(dir.path(), &yaml, &wasm).await;

    let events = page_events();
    let p = producer(&app.bootstrap);
    for e in &events {
        produce(&p, "pages", Some(&e.key), &e.value, Some(e.ts)).await;
    }
    for (f, _) in &functions {
        for w in WINDOWS {
            let expected: BTreeMap<_, _> = w
                .assign(&events)
                .into_iter()
                .map(|(id, records)| (id, oracle(f, &records)))
                .collect();
            let got = finals(&app, &format!("{f}-{}", w.name()), expected.len()).await;
            let diff = common::differences(&expected, &got);
            assert!(diff.is_empty(), "{f} on {} windows: {diff:#?}", w.name());
        }
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_dead_lettered_and_its_window_keeps_its_value() {
    let yaml = r#"
kafka: { brokers: embedded }
analytics:
  probe:
    in: R
    key: record-key
    window: { tumbling: 1s, idle: 10s }
    aggregate: { n: count, agg: { function: agg-probe } }
    limits: { state: 64KiB }
    out: R-out
"#;
    let (_dir, app) = with_agg_probe(yaml).await;
    let p = producer(&app.bootstrap);
    let base = (kfn::record::now_ms() / 1000 - 60) * 1000;
    // One window: three good records around three the aggregator refuses.
    for (i, v) in ["a", "trap", "bb", "refuse", "grow:100000", "ccc"]
        .iter()
        .enumerate()
    {
        produce(&p, "R", Some("k"), v, Some(base + i as i64)).await;
    }
    // The next window: `finish` fails on it until a `heal` record comes (it stays
    // open until the input has been idle for 10 s: time enough to look and heal).
    produce(&p, "R", Some("k"), "finish-trap", Some(base + 1000)).await;
    let row = eventually(LONG, "the failing finish shown on the window", async || {
        let rows = get_json(app.http_addr, "/api/stores/probe").await;
        rows["windows"]
            .as_array()?
            .iter()
            .find(|w| w["start"] == base + 1000 && w["error"].is_string())
            .cloned()
    })
    .await;
    assert!(
        row["error"].as_str().unwrap().contains("guest trapped"),
        "{row}"
    );
    assert_eq!(
        row["value"]["agg"],
        serde_json::Value::Null,
        "no value was ever finished: {row}"
    );
    produce(&p, "R", Some("k"), "heal", Some(base + 1001)).await;

    let got = finals(&app, "R-out", 2).await;
    assert_eq!(
        got[&("k".to_string(), base, base + 1000)],
        serde_json::json!({"n": 3, "agg": {"records": 3, "bytes": 6, "version": 1}}),
        "the refused records changed nothing, not even the built-in count"
    );
    assert_eq!(
        got[&("k".to_string(), base + 1000, base + 2000)],
        serde_json::json!({"n": 2, "agg": {"records": 2, "bytes": 15, "version": 1}}),
        "finish works again once the state is healed"
    );

    let dlq = common::read_n(&reader(&app.bootstrap, "kfn.probe.dlq"), 3, LONG).await;
    let errors: BTreeMap<&str, &str> = dlq
        .iter()
        .map(|r| (r.value.as_str(), r.header("kfn-error").unwrap_or("")))
        .collect();
    assert_eq!(errors.len(), 3, "{dlq:#?}");
    assert!(errors["trap"].contains("trapped"), "{errors:?}");
    assert!(errors["refuse"].contains("agg-probe refuses"), "{errors:?}");
    assert!(errors["grow:100000"].contains("limits.state"), "{errors:?}");
    for r in &dlq {
        assert_eq!(
            r.header("kfn-attempts"),
            Some("1"),
            "a pure function is not retried"
        );
        assert_eq!(r.header("kfn-source-topic"), Some("R"));
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_under_load_hands_the_state_on_without_loss_or_double_counting() {
    let yaml = r#"
kafka: { brokers: embedded }
analytics:
  swap:
    in: S
    key: record-key
    window: { tumbling: 1s, idle: 1s }
    aggregate: { function: agg }
    out: S-out
"#;
    let dir = tempfile::tempdir().unwrap();
    let app = common::start_app(dir.path(), yaml, &[("agg", common::guest("agg-probe"))]).await;
    let p = producer(&app.bootstrap);
    let base = (kfn::record::now_ms() / 1000 - 60) * 1000;
    let events: Vec<Event> = (0..3000i64)
        .map(|i| Event {
            key: format!("k{}", i % 3),
            ts: base + i * 3,
            value: "x".repeat(1 + (i % 7) as usize),
        })
        .collect();
    let mut swapped = false;
    for (i, e) in events.iter().enumerate() {
        produce(&p, "S", Some(&e.key), &e.value, Some(e.ts)).await;
        if i == 1500 {
            common::replace_function(dir.path(), "agg", &common::guest("agg-probe-v2"));
            swapped = true;
        }
    }
    assert!(swapped);
    let expected = Window::Tumbling(1000).assign(&events);
    let got = finals(&app, "S-out", expected.len()).await;
    let mut versions = BTreeMap::new();
    for (id, records) in &expected {
        let value = &got[id];
        let bytes: usize = records.iter().map(|e| e.value.len()).sum();
        assert_eq!(
            (&value["records"], &value["bytes"]),
            (&records.len().into(), &bytes.into()),
            "{id:?}: every record counted once across the swap"
        );
        *versions
            .entry(value["version"].as_u64().unwrap())
            .or_insert(0) += 1;
    }
    assert!(
        versions.get(&2).is_some_and(|n| *n > 0),
        "windows finished after the swap report the new version: {versions:?}"
    );
    app.shutdown().await;
}

/// Every result on `topic` (updates and finals) once `n` finals are there.
async fn results(app: &App, topic: &str, n: usize) -> Vec<serde_json::Value> {
    eventually(LONG, &format!("{n} final windows on {topic}"), async || {
        let all: Vec<serde_json::Value> =
            read_until_quiet(&reader(&app.bootstrap, topic), Duration::from_millis(500))
                .await
                .iter()
                .map(|r| json(&r.value))
                .collect();
        (all.iter().filter(|v| v["final"] == true).count() >= n).then_some(all)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_change_nothing_on_any_window_kind() {
    // Beside the built-in count, on every kind, with one record in eight refused: a
    // refused record must leave no trace (not in the count, the guest's state, the
    // windows it would have made or merged, or stream time), so both aggregates
    // agree everywhere, and equal the oracle of the records that were accepted.
    let mut yaml = String::from("kafka: { brokers: embedded }\nanalytics:\n");
    let kinds = [
        ("tumbling", "{ tumbling: 1000ms, idle: 1s }", "final"),
        (
            "hopping",
            "{ hopping: { size: 2000ms, advance: 1000ms }, idle: 1s }",
            "changes",
        ),
        ("sliding", "{ sliding: 500ms, idle: 1s }", "final"),
        (
            "session",
            "{ session: { gap: 300ms }, idle: 1s }",
            "changes",
        ),
    ];
    for (kind, window, emit) in kinds {
        yaml.push_str(&format!(
            "  {kind}: {{ in: mixed, key: record-key, window: {window}, aggregate: {{ n: count, agg: {{ function: agg-probe }} }}, emit: {emit}, out: {kind}-out }}\n"
        ));
    }
    let (_dir, app) = with_agg_probe(&yaml).await;
    let p = producer(&app.bootstrap);
    let mut events = page_events();
    let mut refused = 0;
    for (i, e) in events.iter_mut().enumerate() {
        e.value = if i % 8 == 3 {
            refused += 1;
            "refuse".into()
        } else {
            "v".repeat(1 + i % 5)
        };
        produce(&p, "mixed", Some(&e.key), &e.value, Some(e.ts)).await;
    }
    let accepted: Vec<Event> = events
        .iter()
        .filter(|e| e.value != "refuse")
        .cloned()
        .collect();
    for (kind, _, emit) in kinds {
        let oracle: Option<BTreeMap<_, _>> = match kind {
            "tumbling" => Some(Window::Tumbling(1000)),
            "hopping" => Some(Window::Hopping(2000, 1000)),
            "session" => Some(Window::Session(300)),
            _ => None,
        }
        .map(|w| {
            w.assign(&accepted)
                .into_iter()
                .map(|(id, records)| {
                    let bytes: usize = records.iter().map(|e| e.value.len()).sum();
                    let value = serde_json::json!({"n": records.len(), "agg": {"records": records.len(), "bytes": bytes, "version": 1}});
                    (id, value)
                })
                .collect()
        });
        let n = oracle.as_ref().map_or(1, BTreeMap::len);
        let all = results(&app, &format!("{kind}-out"), n).await;
        let finals: BTreeMap<_, _> = all
            .iter()
            .filter(|v| v["final"] == true)
            .map(|v| (common::window_id(v), v["value"].clone()))
            .collect();
        for (id, value) in &finals {
            assert_eq!(
                value["n"], value["agg"]["records"],
                "{kind} {id:?}: the count and the aggregator agree: {value}"
            );
        }
        if let Some(oracle) = oracle {
            let diff = common::differences(&oracle, &finals);
            assert!(diff.is_empty(), "{kind}: {diff:#?}");
        }
        if emit == "changes" && kind != "session" {
            // No window appears and vanishes: a refused record's window was never there.
            let vanished: Vec<_> = all.iter().filter(|v| v["value"].is_null()).collect();
            assert!(vanished.is_empty(), "{kind}: {vanished:?}");
        }
        let dead = reader(&app.bootstrap, &format!("kfn.{kind}.dlq"));
        let dlq = common::read_n(&dead, refused, LONG).await;
        let more = read_until_quiet(&dead, Duration::from_secs(1)).await;
        assert_eq!(
            (dlq.len(), more.len()),
            (refused, 0),
            "{kind}: each refused record dead-lettered once"
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_wait_for_a_missing_aggregator_and_none_is_lost_or_late() {
    let yaml = r#"
kafka: { brokers: embedded }
analytics:
  waits:
    in: P
    key: record-key
    window: { tumbling: 1s, idle: 1s }
    aggregate: { function: agg }
    out: P-out
"#;
    let dir = tempfile::tempdir().unwrap();
    let app = common::start_app(dir.path(), yaml, &[("agg", common::guest("agg-probe"))]).await;
    let p = producer(&app.bootstrap);
    // Stamped as they are produced: idle close moves the watermark with the wall
    // clock, so records from the past would be late after a pause, function or not.
    let mut events: Vec<Event> = Vec::new();
    let event = |i: usize| Event {
        key: "k".into(),
        ts: kfn::record::now_ms(),
        value: "x".repeat(1 + i % 3),
    };
    for i in 0..100 {
        events.push(event(i));
        let e = events.last().unwrap();
        produce(&p, "P", Some(&e.key), &e.value, Some(e.ts)).await;
    }
    // The function goes away; the rest of the records come and must wait for it,
    // longer than `idle`: the windows they are in stay open.
    std::fs::remove_file(dir.path().join("functions/agg.wasm")).unwrap();
    eventually(LONG, "the function to be missing", async || {
        let functions = get_json(app.http_addr, "/api/functions").await;
        functions
            .as_array()?
            .iter()
            .any(|f| f["name"] == "agg" && f["status"] == "missing")
            .then_some(())
    })
    .await;
    for i in 100..300 {
        events.push(event(i));
        let e = events.last().unwrap();
        produce(&p, "P", Some(&e.key), &e.value, Some(e.ts)).await;
    }
    eventually(LONG, "the stage to pause for its function", async || {
        let b = app.bindings.get("waits")?.info();
        (b.status == kfn::observe::BindingState::Paused).then_some(())
    })
    .await;
    // Counted from the broker's watermarks, not by a reader that may not have joined
    // its group yet.
    let first = common::records_in(&app.bootstrap, "P-out");
    let paused_at = std::time::Instant::now();
    // Three times `idle`, paused: nothing may close meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = common::records_in(&app.bootstrap, "P-out");
    assert_eq!(
        during, first,
        "nothing closed while the function was missing"
    );
    common::replace_function(dir.path(), "agg", &common::guest("agg-probe"));

    let expected = Window::Tumbling(1000).assign(&events);
    let got = finals(&app, "P-out", expected.len()).await;
    for (id, records) in &expected {
        let bytes: usize = records.iter().map(|e| e.value.len()).sum();
        assert_eq!(
            got[id],
            serde_json::json!({"records": records.len(), "bytes": bytes, "version": 1}),
            "{id:?}, after a pause of {:?}",
            paused_at.elapsed()
        );
    }
    assert_eq!(
        common::records_in(&app.bootstrap, "kfn.waits.dlq"),
        0,
        "nothing late or refused"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_with_one_source_seconds_behind_the_other_makes_nothing_late() {
    // A repartitioned stage catching up (here: its aggregator arrives after the
    // records): in the repartition topic, input partition 1's records sit behind all
    // of partition 0's, and the step before has committed both. Reading partition 0's
    // share takes longer than `idle`, so partition 1 looks silent; but its records
    // are still to be read, so it must keep holding stream time back.
    let yaml = r#"
kafka: { brokers: embedded }
analytics:
  s: { in: I, key: /k, window: { tumbling: 1s, idle: 100ms }, aggregate: { function: agg-probe }, out: O }
"#;
    let (dir, app) = with_agg_probe(yaml).await;
    // The aggregator goes away before any record: the window step pauses on the
    // first one, and the rest pile up behind it.
    let wasm = dir.path().join("functions/agg-probe.wasm");
    std::fs::remove_file(&wasm).unwrap();
    let slot = app.registry.slot("agg-probe");
    eventually(LONG, "the aggregator unloaded", async || {
        slot.current().is_none().then_some(())
    })
    .await;
    let repartition = kfn::pipeline::repartition_topic("kfn", "s");
    let p = producer(&app.bootstrap);
    let base = (kfn::record::now_ms() / 1000 - 3600) * 1000;
    const N: i64 = 50_000;
    let mut stamps = vec![base];
    send_to(&p, 1, &[base]).await;
    let share: Vec<i64> = (0..N).map(|i| base + i).collect();
    let mut sent = 1;
    for partition in [0, 1] {
        // Each share reaches the repartition topic before the next is sent.
        send_to(&p, partition, &share).await;
        stamps.extend(&share);
        sent += N;
        eventually(LONG, "the share repartitioned", async || {
            (common::records_in(&app.bootstrap, &repartition) == sent).then_some(())
        })
        .await;
    }
    eventually(LONG, "the step before to commit what it read", async || {
        (committed(&app.bootstrap, "kfn.s.repartition", "I") == [N, N + 1, 0]).then_some(())
    })
    .await;
    std::fs::copy(common::guest("agg-probe"), &wasm).unwrap();

    let mut expected: BTreeMap<(String, i64, i64), serde_json::Value> = BTreeMap::new();
    let mut per_window: BTreeMap<i64, u64> = BTreeMap::new();
    for ts in &stamps {
        *per_window.entry(ts - ts % 1000).or_default() += 1;
    }
    for (start, n) in per_window {
        expected.insert(
            ("k".to_string(), start, start + 1000),
            serde_json::json!({"records": n, "bytes": n * 9, "version": 1}),
        );
    }
    let got = finals(&app, "O", expected.len()).await;
    let late = read_until_quiet(&reader(&app.bootstrap, "kfn.s.dlq"), Duration::from_secs(1)).await;
    let diff = common::differences(&expected, &got);
    assert!(
        diff.is_empty() && late.is_empty(),
        "{} records dead-lettered (first: {:?}); wrong: {diff:?}",
        late.len(),
        late.first()
    );
    app.shutdown().await;
}

/// kfn running `yaml` in a folder of its own, with `agg-probe` in `functions/`.
async fn with_agg_probe(yaml: &str) -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let app = common::start_app(
        dir.path(),
        yaml,
        &[("agg-probe", common::guest("agg-probe"))],
    )
    .await;
    (dir, app)
}

/// Sends a `{"k":"k"}` record stamped `ts` to partition `partition` of `I` for each of
/// `stamps`, all in flight at once.
async fn send_to(p: &rdkafka::producer::FutureProducer, partition: i32, stamps: &[i64]) {
    use rdkafka::producer::FutureRecord;
    let sends: Vec<_> = stamps
        .iter()
        .map(|ts| {
            p.send_result(
                FutureRecord::<str, str>::to("I")
                    .partition(partition)
                    .payload(r#"{"k":"k"}"#)
                    .timestamp(*ts),
            )
            .expect("queued")
        })
        .collect();
    for s in futures::future::join_all(sends).await {
        s.expect("delivery").map_err(|(e, _)| e).expect("produce");
    }
}

/// The offsets `group` has committed on each partition of `topic` (0 for none).
fn committed(bootstrap: &str, group: &str, topic: &str) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("offsets client");
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        list.add_partition(topic, p);
    }
    tokio::task::block_in_place(|| {
        let got = c
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        (0..3)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => o,
                _ => 0,
            })
            .collect()
    })
}
