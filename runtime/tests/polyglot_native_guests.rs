//! Guests written in C and Go, built by `kfn build` (clang + wasi-libc, and standard Go
//! for wasip1, each made a component with the preview1 reactor adapter), run through
//! the real wasm host: echo, the host imports (config, log, now), a guest error, and
//! the numbers (size, cold/warm compile, time per call) printed for the record.
//!
//! Build the guests first: `cargo kfn build --dir runtime/tests/guests`.

mod common;

use common::{record, text};

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kfn::wasm::{CallError, Limits, Registry, Worker, World};

fn worker(guest: &str) -> (Worker, Arc<Registry>, tempfile::TempDir) {
    let (registry, cache) = common::registry();
    registry
        .load_blocking(guest, &common::guest(guest))
        .unwrap();
    let worker = common::worker(&registry, guest, World::Function, Limits::default());
    (worker, registry, cache)
}

/// One output, and its value as text.
fn only(w: &mut Worker, input: &str) -> String {
    let out = w.process(&record(input)).unwrap();
    assert_eq!(out.len(), 1, "{input}: {out:?}");
    text(&out[0].value).to_string()
}

/// Captures what the guest logs through the host (`tracing`, target `kfn::guest`).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn the_probe_behaves(lang: &str) {
    let guest = format!("{lang}-probe");
    let (mut w, _registry, _cache) = worker(&guest);

    // Echo: same key, no topic, no headers.
    let out = w.process(&record("hello")).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(text(&out[0].value), format!("probe-{lang}:hello"));
    assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(out[0].topic, None);
    assert!(out[0].headers.is_empty());
    // Non-ASCII and empty inputs survive the round trip.
    assert_eq!(only(&mut w, "héllo ✓"), format!("probe-{lang}:héllo ✓"));
    assert_eq!(only(&mut w, ""), format!("probe-{lang}:"));

    assert_eq!(only(&mut w, "config:tag"), "blue");
    assert_eq!(only(&mut w, "config:nope"), "<unset>");

    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .finish();
    let logged = tracing::subscriber::with_default(subscriber, || {
        only(&mut w, &format!("log:hi from {lang}"))
    });
    assert_eq!(logged, "logged");
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("INFO")
            && logs.contains("kfn::guest")
            && logs.contains(&format!("hi from {lang}"))
            && logs.contains(&guest),
        "{logs}"
    );

    let now: i64 = only(&mut w, "now").parse().unwrap();
    assert!(
        (now - kfn::record::now_ms()).abs() < 5_000,
        "guest clock {now} is not now"
    );

    let err = w.process(&record("error")).unwrap_err();
    assert!(
        matches!(&err, CallError::Guest { message }
            if message == &format!("{lang} probe error: asked to fail")),
        "{err}"
    );
    assert!(err.is_record_failure());
    // An error is not a trap: the same instance answers the next call.
    assert_eq!(only(&mut w, "after"), format!("probe-{lang}:after"));
    assert_eq!(w.instantiations(), 1);
}

/// Prints size, cold and warm compile, the first call (instantiation included) and the
/// time per call over 1000 calls.
fn measure(lang: &str) {
    let guest = format!("{lang}-probe");
    let (cold, warm, _cache) = common::compile_cold_and_warm(&guest);
    assert_eq!(cold.world, World::Function);

    let (mut w, _registry, _cache) = worker(&guest);
    let value = "x".repeat(200);
    let started = Instant::now();
    w.process(&record(&value)).unwrap(); // instantiates
    let first = started.elapsed();
    let calls = 1000;
    let started = Instant::now();
    for _ in 0..calls {
        let out = w.process(&record(&value)).unwrap();
        assert_eq!(
            out[0].value.len(),
            value.len() + format!("probe-{lang}:").len()
        );
    }
    let per_call = started.elapsed() / calls;
    assert_eq!(w.instantiations(), 1, "no call trapped");
    println!(
        "{guest}: {} KB, compile cold {} ms, warm (cache) {} ms, first call (instantiate) {:.2} ms, \
         {:.1} µs per call (200 B, {calls} calls)",
        cold.size_bytes / 1024,
        cold.compile_ms,
        warm.compile_ms,
        first.as_secs_f64() * 1e3,
        per_call.as_secs_f64() * 1e6,
    );
}

#[test]
fn c_probe_echoes_calls_the_host_and_fails_on_request() {
    the_probe_behaves("c");
}

#[test]
fn go_probe_echoes_calls_the_host_and_fails_on_request() {
    the_probe_behaves("go");
}

/// Go's allocator reads the clock when the heap grows; the host's arguments are copied
/// in through `cabi_realloc`, where calling an import traps ("cannot leave component
/// instance"). The bindings pause the adapter's clock around it: many large records
/// (heap growth and garbage collections inside `cabi_realloc`) must all succeed on
/// one instance.
#[test]
fn go_probe_survives_heap_growth_and_gc_inside_cabi_realloc() {
    let (mut w, _registry, _cache) = worker("go-probe");
    for i in 0..3000 {
        let value = format!("{i}:{}", "y".repeat(1 + (i * 7919) % 100_000));
        assert_eq!(only(&mut w, &value), format!("probe-go:{value}"));
        if i % 100 == 0 {
            assert_eq!(only(&mut w, "config:tag"), "blue");
        }
    }
    assert_eq!(w.instantiations(), 1, "a call trapped");
}

#[test]
fn c_probe_numbers() {
    measure("c");
}

#[test]
fn go_probe_numbers() {
    measure("go");
}
