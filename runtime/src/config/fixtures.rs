//! Fixture tests: every `tests/fixtures/config/valid/*.yaml` must load, and every
//! `invalid/*.yaml` must fail with exactly the text of its `.expected` file.
//! `KFN_BLESS=1 cargo test` rewrites the `.expected` files: review every change, they
//! are the specification of the error messages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("readable fixture folder").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn parse_fixture(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).expect("readable fixture");
    let name = path.file_name().expect("file name").to_string_lossy();
    Config::parse(&text, &name, path.parent().expect("fixture folder"))
}

#[test]
fn valid_fixtures_load() {
    let failures: Vec<String> = fixtures("valid")
        .iter()
        .filter_map(|path| {
            parse_fixture(path)
                .err()
                .map(|err| format!("{}:\n{err}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn invalid_fixtures_fail_with_the_expected_errors() {
    let bless = std::env::var_os("KFN_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let actual = match parse_fixture(&path) {
            Ok(_) => "(loaded without errors)\n".to_owned(),
            Err(errors) => format!("{errors}\n"),
        };
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable fixture");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{}\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(KFN_BLESS=1 rewrites the .expected files; review them)",
        failures.join("\n")
    );
}

#[test]
fn the_example_app_resolves_every_value() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let config = parse_fixture(&dir.join("example-app.yaml")).expect("valid");
    assert_eq!(config.kafka.brokers, Brokers::Embedded);
    assert_eq!(config.kafka.application_id, "kfn");
    assert_eq!(config.kafka.properties["linger.ms"], "5");
    assert_eq!(config.functions.dir, dir.join("../functions"));
    let default_limits = Limits {
        memory_bytes: 64 << 20,
        cpu_time: Duration::from_secs(1),
        attempts: 3,
        retry_backoff: Duration::from_millis(100),
        state_bytes: 512 << 10,
        instances: crate::config::defaults::instances(),
    };
    assert_eq!(config.functions.limits, default_limits);

    let supplier = &config.bindings["page-supplier"];
    assert_eq!(supplier.kind, BindingKind::Supplier);
    assert_eq!(supplier.every, Some(Duration::from_secs(1)));
    assert_eq!(
        (supplier.input.as_deref(), supplier.output.as_deref()),
        (None, Some("R2"))
    );
    assert_eq!(supplier.dlq, "page-supplier.dlq");

    let enricher = &config.bindings["page-enricher"];
    assert_eq!(enricher.kind, BindingKind::Function);
    assert_eq!(enricher.config["tag"], "demo");
    assert_eq!(
        enricher.limits,
        Limits {
            memory_bytes: 32 << 20,
            ..default_limits.clone()
        }
    );
    assert_eq!(enricher.dlq, "my-dlq");

    let logger = &config.bindings["page-logger"];
    assert_eq!(
        (logger.kind, logger.input.as_deref()),
        (BindingKind::Consumer, Some("R1"))
    );

    let store = &config.analytics["page-count"];
    assert_eq!(store.input, "R2");
    assert_eq!(store.function.as_deref(), Some("page-filter"));
    assert_eq!(store.key, KeySelector::JsonPointer("/name".into()));
    assert_eq!(
        store.window,
        WindowConfig {
            kind: WindowKind::Tumbling(Duration::from_secs(5)),
            grace: Duration::ZERO,
            idle: Some(Duration::from_secs(5)),
        }
    );
    assert_eq!(store.aggregate, Aggregates::One(Aggregate::Count));
    assert_eq!(store.emit, EmitConfig::Final);
    assert_eq!(store.output.as_deref(), Some("R4"));
    assert_eq!(store.serve.as_deref(), Some("/analytics"));
    assert_eq!(store.dlq, "kfn.page-count.dlq", "with the application id");
    assert_eq!(store.limits, default_limits);

    assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        config
            .referenced_functions()
            .into_iter()
            .collect::<Vec<_>>(),
        [
            "page-enricher",
            "page-filter",
            "page-logger",
            "page-supplier"
        ]
    );
}

#[test]
fn every_aggregate_kind() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let config = parse_fixture(&dir.join("every-aggregate.yaml")).expect("valid");
    let aggregates: Vec<_> = config
        .analytics
        .values()
        .map(|a| a.aggregate.clone())
        .collect();
    assert_eq!(
        aggregates,
        [
            Aggregates::One(Aggregate::Avg("/duration".into())),
            Aggregates::One(Aggregate::Count),
            Aggregates::One(Aggregate::Max("/duration".into())),
            Aggregates::One(Aggregate::Min("/duration".into())),
            Aggregates::Named(vec![
                ("views".to_string(), Aggregate::Count),
                ("avg_ms".to_string(), Aggregate::Avg("/duration".into())),
                ("max_ms".to_string(), Aggregate::Max("/duration".into())),
            ]),
            Aggregates::One(Aggregate::Sum("/a~1b".into())),
        ]
    );
    assert_eq!(config.analytics["avg"].key, KeySelector::RecordKey);
    assert_eq!(
        config.analytics["max"].window.grace,
        Duration::from_millis(500)
    );
}

#[test]
fn every_window_kind() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let config = parse_fixture(&dir.join("every-window-kind.yaml")).expect("valid");
    let s = Duration::from_secs;
    let a = &config.analytics;
    assert_eq!(a["tumbling"].window.kind, WindowKind::Tumbling(s(5)));
    assert_eq!(
        a["hopping"].window.kind,
        WindowKind::Hopping {
            size: s(60),
            advance: s(10)
        }
    );
    assert_eq!(a["hopping"].window.grace, s(2));
    assert_eq!(a["sliding"].window.kind, WindowKind::Sliding(s(30)));
    assert_eq!(a["sliding"].window.idle, None, "idle: off");
    assert_eq!(a["session"].window.kind, WindowKind::Session { gap: s(30) });
    assert_eq!(a["session"].window.idle, Some(s(2)));
    assert_eq!(a["session"].emit, EmitConfig::Changes { every: s(1) });
    assert_eq!(
        a["hopping"].emit,
        EmitConfig::Changes {
            every: Duration::from_millis(250)
        }
    );
    assert_eq!(a["session"].dlq, "sessions-late");
    assert_eq!(a["tumbling"].dlq, "shop.tumbling.dlq");
}

#[test]
fn real_broker_with_properties() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let config = parse_fixture(&dir.join("real-broker.yaml")).expect("valid");
    assert_eq!(
        config.kafka.brokers,
        Brokers::Bootstrap("kafka-1:9092,kafka-2:9092".into())
    );
    assert_eq!(config.kafka.application_id, "shop");
    let properties: Vec<(&str, &str)> = config
        .kafka
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        properties,
        [
            ("compression.type", "zstd"),
            ("enable.idempotence", "true"),
            ("linger.ms", "0.10"),
            ("queue.buffering.max.kbytes", "1024"),
        ]
    );
    assert_eq!(config.http.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.functions.limits.cpu_time, Duration::from_millis(250));
    assert_eq!(
        config.functions.limits.instances, 3,
        "set for every function"
    );
    assert_eq!(
        config.bindings["enrich"].limits.instances,
        crate::config::defaults::instances(),
        "auto: one per core but one, from 1 to 4"
    );
    assert_eq!(
        config.kafka.transactions,
        crate::config::Transactions {
            interval: Duration::from_millis(250),
            records: 50_000,
        }
    );
}

#[test]
fn minimal_uses_every_default() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let config = parse_fixture(&dir.join("minimal.yaml")).expect("valid");
    assert!(config.bindings.is_empty() && config.analytics.is_empty());
    assert_eq!(config.http.listen, defaults::LISTEN);
    assert_eq!(
        config.kafka.transactions.interval,
        defaults::COMMIT_INTERVAL
    );
    assert_eq!(
        config.kafka.transactions.records,
        defaults::TRANSACTION_RECORDS
    );
}

#[test]
fn unreadable_file_is_one_error_at_zero() {
    let err = Config::load(Path::new("/nonexistent/kfn.yaml")).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!((err.0[0].line, err.0[0].column), (0, 0));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/kfn.yaml:0:0: cannot read"),
        "{err}"
    );
}
