//! JavaScript (componentize-js) and Python (componentize-py) guests built by
//! `kfn build`, run through the real wasm host: calls, every host import, guest
//! errors, and the compile cache. Each test also prints what it measured (`.wasm`
//! size, cold and cached compile, first call, 1000 calls); see them with
//! `cargo test -p kfn --test polyglot_guests -- --nocapture`.

mod common;

use common::{record, text, worker};

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kfn::observe::Events;
use kfn::record::Record;
use kfn::wasm::{CallError, Limits, Registry, WasmEngine, World};

/// A registry whose engine shares `cache` with the measuring engines.
fn registry(cache: &Path) -> Arc<Registry> {
    let engine = WasmEngine::new(Some(cache.to_path_buf())).unwrap();
    Registry::new(engine, Events::new())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Compiles `name` with a fresh cache, then with a second engine on the same cache
/// (as after a restart); prints both and returns the cache directory.
fn compile_cold_and_warm(name: &str) -> tempfile::TempDir {
    let (cold, warm, cache) = common::compile_cold_and_warm(name);
    eprintln!(
        "{name}: {:.1} MB, compile cold {} ms, from cache {} ms",
        cold.size_bytes as f64 / 1e6,
        cold.compile_ms,
        warm.compile_ms
    );
    cache
}

/// Captures what guests log through `host.log` on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capturing(logs: &Logs) -> impl tracing::Subscriber + Send + Sync + use<> {
    let logs = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish()
}

/// The probe contract of `runtime/tests/guests/{js,py}-probe`.
fn check_probe(lang: &str) {
    let name = format!("{lang}-probe");
    let cache = compile_cold_and_warm(&name);
    let reg = registry(cache.path());
    reg.load_blocking(&name, &common::guest(&name)).unwrap();
    let mut w = worker(&reg, &name, World::Function, Limits::default());
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(capturing(&logs));

    let started = Instant::now();
    let out = w.process(&record("hello")).unwrap();
    let first_call = started.elapsed();
    assert_eq!(out.len(), 1);
    assert_eq!(text(&out[0].value), format!("probe-{lang}:hello"));
    assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(out[0].topic, None);

    common::assert_host_imports(&mut w);
    let logged = logs.text();
    assert!(
        logged.contains("hi from the guest") && logged.contains(&name),
        "the guest's log line (tagged with the function) is missing: {logged}"
    );

    let now: i64 = text(&w.process(&record("now")).unwrap()[0].value)
        .parse()
        .unwrap();
    assert!(
        (now - kfn::record::now_ms()).abs() < 5_000,
        "guest clock {now} is not now"
    );

    let err = w.process(&record("error")).unwrap_err();
    assert!(
        matches!(&err, CallError::Guest { message }
            if message.contains("asked to fail") && message.starts_with(&format!("{lang} probe error"))),
        "{err}"
    );
    assert!(err.is_record_failure());
    // An error is not a trap: the same instance goes on.
    assert_eq!(
        text(&w.process(&record("after")).unwrap()[0].value),
        format!("probe-{lang}:after")
    );
    assert_eq!(w.instantiations(), 1);

    let calls = 1000;
    let started = Instant::now();
    for i in 0..calls {
        let out = w.process(&record(&i.to_string())).unwrap();
        assert_eq!(out.len(), 1);
    }
    let per_call = started.elapsed() / calls;
    eprintln!(
        "{name}: first call (instantiate + call) {:.2} ms, then {:.1} µs per echo call ({calls} calls)",
        ms(first_call),
        per_call.as_secs_f64() * 1e6
    );
}

#[test]
fn the_javascript_probe_calls_the_host_and_fails_with_a_string() {
    check_probe("js");
}

#[test]
fn the_python_probe_calls_the_host_and_fails_with_a_string() {
    check_probe("py");
}

#[test]
fn a_python_supplier_supplies() {
    let cache = compile_cold_and_warm("py-supplier");
    let reg = registry(cache.path());
    reg.load_blocking("py-supplier", &common::guest("py-supplier"))
        .unwrap();
    let mut s = worker(&reg, "py-supplier", World::Supplier, Limits::default());
    for n in 1..=3 {
        let out = s.supply().unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(text(&out[0].value), format!("tick:{n}"));
        assert_eq!(out[0].topic, None);
    }
    // Loaded as the wrong world, it says so instead of failing records.
    let mut wrong = worker(&reg, "py-supplier", World::Function, Limits::default());
    let err = wrong.process(&record("x")).unwrap_err();
    assert!(
        matches!(
            err,
            CallError::WrongWorld {
                actual: World::Supplier,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_javascript_consumer_logs_and_fails_with_a_string() {
    let cache = compile_cold_and_warm("js-consumer");
    let reg = registry(cache.path());
    reg.load_blocking("js-consumer", &common::guest("js-consumer"))
        .unwrap();
    let mut c = worker(&reg, "js-consumer", World::Consumer, Limits::default());
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(capturing(&logs));

    c.consume(&record("page P1")).unwrap();
    let logged = logs.text();
    assert!(logged.contains("consumed page P1"), "{logged}");

    let err = c.consume(&record("error")).unwrap_err();
    assert!(
        matches!(&err, CallError::Guest { message } if message.contains("asked to fail")),
        "{err}"
    );
    c.consume(&record("still fine")).unwrap();
    assert!(logs.text().contains("consumed still fine"));
    assert_eq!(c.instantiations(), 1);
}

#[test]
fn the_polyglot_examples_behave_like_their_rust_twins() {
    let cache = tempfile::tempdir().unwrap();
    let reg = registry(cache.path());
    for name in ["page-enricher", "page-enricher-js", "page-supplier-py"] {
        reg.load_blocking(name, &common::example(name)).unwrap();
    }

    // page-enricher-js: the same output as page-enricher, but for `enriched_by`.
    let event = r#"{"name":"P2","user":"U1","date":"2026-11-25T06:01:02.345Z","duration":6000}"#;
    let mut input = record(event);
    input.headers = vec![("trace".into(), b"t1".to_vec())];
    let enrich = |name: &str, input: &Record| {
        let mut w = worker(&reg, name, World::Function, Limits::default());
        let out = w.process(input).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out[0].headers, input.headers);
        assert_eq!(out[0].topic, None);
        let mut value: serde_json::Value = serde_json::from_slice(&out[0].value).unwrap();
        let by = value["enriched_by"].take();
        (value, by)
    };
    let (rust, rust_by) = enrich("page-enricher", &input);
    let (js, js_by) = enrich("page-enricher-js", &input);
    assert_eq!(js, rust);
    assert_eq!(
        (rust_by.as_str(), js_by.as_str()),
        (Some("page-enricher v1"), Some("page-enricher-js v1"))
    );
    assert_eq!(js["slow"], true);
    assert_eq!(js["tag"], "blue");
    let mut w = worker(&reg, "page-enricher-js", World::Function, Limits::default());
    let mut keyless = record(event);
    keyless.key = None;
    assert_eq!(
        w.process(&keyless).unwrap()[0].key.as_deref(),
        Some(&b"P2"[..])
    );
    for bad in [
        "not json",
        r#"{"name":"P1"}"#,
        r#"{"name":"P1","user":"U1","date":"d","duration":-1}"#,
    ] {
        let err = w.process(&record(bad)).unwrap_err();
        assert!(
            matches!(&err, CallError::Guest { message } if message.starts_with("not a PageEvent")),
            "{bad}: {err}"
        );
    }

    // page-supplier-py: valid random PageEvents keyed by page, different per instance.
    let mut seen = std::collections::BTreeSet::new();
    for _instance in 0..2 {
        let mut s = worker(&reg, "page-supplier-py", World::Supplier, Limits::default());
        for _ in 0..3 {
            let out = s.supply().unwrap();
            assert_eq!(out.len(), 1);
            let page: serde_json::Value = serde_json::from_slice(&out[0].value).unwrap();
            let name = page["name"].as_str().unwrap();
            assert!(["P1", "P2"].contains(&name), "{page}");
            assert!(
                ["U1", "U2"].contains(&page["user"].as_str().unwrap()),
                "{page}"
            );
            assert!(page["duration"].as_u64().unwrap() < 9000, "{page}");
            let date = page["date"].as_str().unwrap();
            assert!(
                date.len() == 24 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
                "{page}"
            );
            assert_eq!(out[0].key.as_deref(), Some(name.as_bytes()));
            assert_eq!(page.as_object().unwrap().len(), 4, "{page}");
            seen.insert(out[0].value.clone());
        }
    }
    assert!(
        seen.len() > 1,
        "every call supplied the same event: {seen:?}"
    );
}
