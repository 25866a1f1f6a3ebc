//! The wasm host against real guest components: calls, host imports, failures and
//! limits, trap recovery, rejection of bad files, and hot swap under load.

mod common;

use common::{record, registry, text, worker};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kfn::wasm::{CallError, FunctionStatus, Limits, World};

#[test]
fn calls_a_function_and_its_host_imports() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe", &common::guest("probe")).unwrap();
    let mut w = worker(&reg, "probe", World::Function, Limits::default());

    let out = w.process(&record("hello")).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(text(&out[0].value), "probe-v1:hello");
    assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
    assert!(
        out[0]
            .headers
            .contains(&("probe-version".into(), b"1".to_vec()))
    );

    let fan = w.process(&record("fanout:3")).unwrap();
    assert_eq!(
        fan.iter().map(|o| text(&o.value)).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );

    let routed = w.process(&record("route:elsewhere")).unwrap();
    assert_eq!(routed[0].topic.as_deref(), Some("elsewhere"));

    common::assert_host_imports(&mut w);

    let now: i64 = text(&w.process(&record("now")).unwrap()[0].value)
        .parse()
        .unwrap();
    assert!(
        (now - kfn::record::now_ms()).abs() < 5_000,
        "guest clock {now} is not now"
    );
}

#[test]
fn a_guest_error_fails_the_record_and_keeps_the_instance() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe", &common::guest("probe")).unwrap();
    let mut w = worker(&reg, "probe", World::Function, Limits::default());
    w.process(&record("count")).unwrap();
    let err = w.process(&record("error")).unwrap_err();
    assert!(
        matches!(&err, CallError::Guest { message } if message.contains("asked to fail")),
        "{err}"
    );
    assert!(err.is_record_failure());
    // Same instance: the counter went on (it counts every call).
    assert_eq!(text(&w.process(&record("count")).unwrap()[0].value), "3");
    assert_eq!(w.instantiations(), 1);
}

#[test]
fn a_trap_fails_the_record_and_the_next_call_gets_a_fresh_instance() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe", &common::guest("probe")).unwrap();
    let mut w = worker(&reg, "probe", World::Function, Limits::default());
    assert_eq!(text(&w.process(&record("count")).unwrap()[0].value), "1");
    assert_eq!(text(&w.process(&record("count")).unwrap()[0].value), "2");
    let err = w.process(&record("trap")).unwrap_err();
    assert!(matches!(&err, CallError::Trap { .. }), "{err}");
    assert!(err.is_record_failure());
    // Re-instantiated from the cached InstancePre: state starts over.
    assert_eq!(text(&w.process(&record("count")).unwrap()[0].value), "1");
    assert_eq!(w.instantiations(), 2);
}

#[test]
fn an_endless_loop_is_stopped_at_the_cpu_time_limit() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe", &common::guest("probe")).unwrap();
    let limits = Limits {
        cpu_time: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut w = worker(&reg, "probe", World::Function, limits);
    let started = Instant::now();
    let err = w.process(&record("loop")).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, CallError::Trap { message } if message.contains("CPU-time limit")),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(3),
        "interrupted after {took:?}"
    );
    assert_eq!(
        text(&w.process(&record("ok")).unwrap()[0].value),
        "probe-v1:ok"
    );
}

#[test]
fn memory_beyond_the_limit_traps_with_a_clear_message() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe", &common::guest("probe")).unwrap();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let mut w = worker(&reg, "probe", World::Function, limits);
    let err = w.process(&record("oom")).unwrap_err();
    assert!(
        matches!(&err, CallError::Trap { message } if message.contains("memory limit of 16 MiB")),
        "{err}"
    );
    assert_eq!(
        text(&w.process(&record("ok")).unwrap()[0].value),
        "probe-v1:ok"
    );
}

#[test]
fn consumers_and_suppliers_run_in_their_worlds() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe-consumer", &common::guest("probe-consumer"))
        .unwrap();
    reg.load_blocking("probe-supplier", &common::guest("probe-supplier"))
        .unwrap();
    let mut c = worker(&reg, "probe-consumer", World::Consumer, Limits::default());
    c.consume(&record("fine")).unwrap();
    assert!(matches!(
        c.consume(&record("error")),
        Err(CallError::Guest { .. })
    ));

    let mut s = worker(&reg, "probe-supplier", World::Supplier, Limits::default());
    assert_eq!(text(&s.supply().unwrap()[0].value), "tick:1");
    assert_eq!(text(&s.supply().unwrap()[0].value), "tick:2");

    // A binding that needs a function cannot run a consumer: it says so, not a record error.
    let mut wrong = worker(&reg, "probe-consumer", World::Function, Limits::default());
    let err = wrong.process(&record("x")).unwrap_err();
    assert!(
        matches!(
            err,
            CallError::WrongWorld {
                expected: World::Function,
                actual: World::Consumer,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_record_failure());
}

#[test]
fn bad_files_are_rejected_and_the_running_version_stays() {
    let (reg, _cache) = registry();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.wasm");
    std::fs::copy(common::guest("probe"), &path).unwrap();
    let first = reg.load_blocking("f", &path).unwrap();

    for (bytes, expect) in [
        (b"this is not wasm".to_vec(), "not a WebAssembly file"),
        (
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module, not a component",
        ),
        (b"\0asm\x0d\0\x01\0garbage".to_vec(), "does not compile"),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let err = reg.load_blocking("f", &path).unwrap_err().to_string();
        assert!(err.contains(expect), "{err}");
        let info = reg.slot("f").info();
        assert_eq!(info.status, FunctionStatus::Error);
        assert!(
            info.last_error
                .as_deref()
                .unwrap()
                .contains("still running version"),
            "{info:?}"
        );
        assert_eq!(
            reg.slot("f").current().unwrap().generation,
            first.generation
        );
    }
    let mut w = worker(&reg, "f", World::Function, Limits::default());
    assert_eq!(
        text(&w.process(&record("x")).unwrap()[0].value),
        "probe-v1:x"
    );

    // Removing the function pauses callers (not a record failure).
    reg.remove("f", "deleted");
    let err = w.process(&record("x")).unwrap_err();
    assert!(matches!(err, CallError::NotLoaded { .. }) && !err.is_record_failure());
}

#[test]
fn the_compile_cache_makes_a_restart_cheap() {
    let (cold, warm, cache) = common::compile_cold_and_warm("probe");
    assert_eq!(cold.hash, warm.hash);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
}

#[test]
fn hot_swap_under_load_loses_and_duplicates_nothing() {
    let (reg, _cache) = registry();
    let v1 = common::guest("probe");
    let v2 = common::guest("probe-v2");
    reg.load_blocking("probe", &v1).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let mut w = worker(&reg, "probe", World::Function, Limits::default());
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut calls, mut seen) = (0u64, BTreeMap::<String, u64>::new());
            while !stop.load(Ordering::Relaxed) || calls < 1_000 {
                let out = w
                    .process(&record(&calls.to_string()))
                    .expect("no call may fail across swaps");
                assert_eq!(out.len(), 1, "exactly one output per call");
                let value = text(&out[0].value).to_string();
                let (version, echoed) = value.split_once(':').unwrap();
                assert_eq!(
                    echoed,
                    calls.to_string(),
                    "each call answers its own record"
                );
                *seen.entry(version.to_string()).or_default() += 1;
                calls += 1;
            }
            (calls, seen, w.instantiations())
        })
    };
    let mut swaps = 0;
    for path in [&v2, &v1, &v2, &v1] {
        std::thread::sleep(Duration::from_millis(30));
        reg.load_blocking("probe", path).unwrap();
        swaps += 1;
    }
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    let (calls, seen, instantiations) = caller.join().unwrap();

    assert_eq!(seen.values().sum::<u64>(), calls, "every call counted once");
    assert!(
        seen.contains_key("probe-v1") && seen.contains_key("probe-v2"),
        "{seen:?}"
    );
    assert!(
        instantiations >= 2 && instantiations <= swaps + 1,
        "{instantiations} instantiations for {swaps} swaps"
    );
}

#[test]
fn a_growing_heap_gets_a_fresh_instance_before_it_hits_the_cap() {
    let (reg, _cache) = registry();
    reg.load_blocking("probe", &common::guest("probe")).unwrap();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let mut w = worker(&reg, "probe", World::Function, limits);
    // 40 MiB kept over 40 calls under a 16 MiB cap: no call traps, because the
    // instance is recycled between calls once it is three quarters full.
    for i in 0..40 {
        let out = w
            .process(&record("grow"))
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert!(text(&out[0].value).ends_with("MiB kept"));
    }
    assert!(
        w.instantiations() >= 3,
        "recycled {} times",
        w.instantiations()
    );
}

#[test]
fn a_guest_built_against_the_0_1_0_contract_loads_and_runs_unchanged() {
    // probe-v010 imports kfn:component/host@0.1.0; this kfn provides 0.1.1, which
    // the linker accepts as semver-compatible.
    let (reg, _cache) = registry();
    let loaded = reg
        .load_blocking("old", &common::guest("probe-v010"))
        .expect("a 0.1.0 guest loads");
    assert_eq!(loaded.world, World::Function);
    let mut w = worker(&reg, "old", World::Function, Limits::default());
    let out = w.process(&record("x")).unwrap();
    assert_eq!(text(&out[0].value), "v0.1.0:x:blue", "host.config answered");
}

#[test]
fn an_aggregator_is_called_through_its_own_world() {
    let (reg, _cache) = registry();
    let loaded = reg
        .load_blocking("agg", &common::guest("agg-probe"))
        .unwrap();
    assert_eq!(loaded.world, World::Aggregator);
    let mut w = worker(&reg, "agg", World::Aggregator, Limits::default());
    let msg = |v: &str| kfn::wasm::lend_message(&mut record(v), |m| m.clone());
    let empty = w.init().unwrap();
    let a = w.add(&empty, &msg("abc")).unwrap();
    let a = w.add(&a, &msg("de")).unwrap();
    let b = w.add(&empty, &msg("f")).unwrap();
    let merged = w.merge(&a, &b).unwrap();
    assert_eq!(
        text(&w.finish(&merged).unwrap()),
        r#"{"records":3,"bytes":6,"version":1}"#
    );
    assert_eq!(w.merge(&empty, &b).unwrap(), b, "merge(init(), s) == s");
    let refused = w.add(&a, &msg("refuse")).unwrap_err();
    assert!(
        matches!(&refused, CallError::Guest { message } if message.contains("refuses")),
        "{refused}"
    );
    assert!(matches!(
        w.add(&a, &msg("trap")),
        Err(CallError::Trap { .. })
    ));
    assert!(
        w.finish(b"not a state").is_err(),
        "an unreadable state is the guest's error"
    );
    assert_eq!(
        text(&w.finish(&a).unwrap()),
        r#"{"records":2,"bytes":5,"version":1}"#,
        "after a trap, a fresh instance"
    );

    // A binding that needs a function does not run an aggregator, and says why.
    let mut f = worker(&reg, "agg", World::Function, Limits::default());
    let err = f.process(&record("x")).unwrap_err();
    assert!(
        matches!(
            err,
            CallError::WrongWorld {
                expected: World::Function,
                actual: World::Aggregator,
                ..
            }
        ),
        "{err}"
    );
}
