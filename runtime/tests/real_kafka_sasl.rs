//! kfn on a cluster as managed Kafka has it: TLS with a certificate from a CA of its
//! own and SCRAM-SHA-512 logins. `scripts/kafka.sh start` gives its broker such a
//! listener (next to the plaintext one) and makes the CA; run with
//! `env $(scripts/kafka.sh sasl-env) cargo test --test real_kafka_sasl -- --include-ignored`
//! (`.ci/run` does this). Ignored otherwise, like `real_kafka.rs`.
//!
//! - records move through a kfn binding over SASL_SSL, the password coming from the
//!   environment (`${...}` in kfn.yaml) and shown nowhere;
//! - a wrong password starts kfn anyway and `/api/health` says the login failed.

mod common;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;

use common::{eventually, read_n};

const NEEDS_KAFKA: &str = "needs a real Kafka broker with a SASL_SSL listener: scripts/kafka.sh start, then `env $(scripts/kafka.sh sasl-env) cargo test --test real_kafka_sasl -- --include-ignored`";
/// The test user scripts/kafka.sh creates.
const USER: &str = "kfn";
const PASSWORD: &str = "kfn-test-secret";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: this test {NEEDS_KAFKA}"))
}

/// librdkafka properties of a SASL_SSL client of the test broker.
fn secure(password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "SASL_SSL".into()),
        ("sasl.mechanism", "SCRAM-SHA-512".into()),
        ("sasl.username", USER.into()),
        ("sasl.password", password.into()),
        ("ssl.ca.location", env("KFN_TEST_KAFKA_CA")),
    ]
}

fn client(password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", env("KFN_TEST_KAFKA_SASL"));
    for (k, v) in secure(password) {
        c.set(k, v);
    }
    c
}

fn unique() -> String {
    format!("{}-{}", std::process::id(), kfn::record::now_ms())
}

/// kfn with one function binding (the probe guest) over SASL_SSL; the password is
/// `${KAFKA_PASSWORD}` in the file, read from `password` as the environment.
async fn start(dir: &std::path::Path, id: &str, password: &str) -> kfn::app::App {
    let functions = dir.join("functions");
    std::fs::create_dir_all(&functions).unwrap();
    std::fs::copy(common::guest("probe"), functions.join("probe.wasm")).unwrap();
    let yaml = format!(
        "kafka:\n  brokers: ${{KAFKA_BOOTSTRAP}}\n  application-id: sasl-{id}\n  properties:\n    \
         security.protocol: SASL_SSL\n    sasl.mechanism: SCRAM-SHA-512\n    sasl.username: {USER}\n    \
         sasl.password: ${{KAFKA_PASSWORD}}\n    ssl.ca.location: {}\n\
         bindings:\n  secure: {{ function: probe, in: sasl-in-{id}, out: sasl-out-{id} }}\n",
        env("KFN_TEST_KAFKA_CA")
    );
    let bootstrap = env("KFN_TEST_KAFKA_SASL");
    let password = password.to_string();
    let lookup = move |name: &str| match name {
        "KAFKA_BOOTSTRAP" => Some(bootstrap.clone()),
        "KAFKA_PASSWORD" => Some(password.clone()),
        _ => None,
    };
    let config = kfn::config::Config::parse_with_env(&yaml, "kfn.yaml", dir, &lookup)
        .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
    assert!(
        !format!("{config:?}").contains(PASSWORD),
        "the password shows in a debug print"
    );
    kfn::app::App::start(
        config,
        kfn::app::Options {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            cache_dir: Some(common::cache_dir()),
            ..Default::default()
        },
    )
    .await
    .expect("kfn starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker with a SASL_SSL listener (see the module doc)"]
async fn records_move_through_kfn_over_sasl_ssl() {
    let id = unique();
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &id, PASSWORD).await;

    let producer: FutureProducer = client(PASSWORD).create().unwrap();
    let input = format!("sasl-in-{id}");
    for i in 0..20 {
        let value = format!("secure-{i}");
        let record = rdkafka::producer::FutureRecord::to(&input)
            .key("k")
            .payload(&value);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .expect("the test producer reaches the SASL_SSL listener");
    }
    let mut reader = client(PASSWORD);
    reader
        .set("group.id", format!("reader-{id}"))
        .set("auto.offset.reset", "earliest");
    let reader: rdkafka::consumer::StreamConsumer = reader.create().unwrap();
    rdkafka::consumer::Consumer::subscribe(&reader, &[&format!("sasl-out-{id}")]).unwrap();
    let out = read_n(&reader, 20, Duration::from_secs(60)).await;
    let mut values: Vec<String> = out.iter().map(|r| r.value.clone()).collect();
    values.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("probe-v1:secure-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "every record, once, through the probe");

    let health = common::get_json(app.http_addr, "/api/health").await;
    assert!(!health.to_string().contains(PASSWORD), "{health}");
    let info = common::get_json(app.http_addr, "/api/info").await;
    assert!(!info.to_string().contains(PASSWORD), "{info}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker with a SASL_SSL listener (see the module doc)"]
async fn a_wrong_password_is_reported_on_the_health_endpoint() {
    let id = unique();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-password";
    let app = start(dir.path(), &id, wrong).await;
    let health = eventually(
        Duration::from_secs(60),
        "the login failure on /api/health",
        async || {
            let (status, health) = common::http(app.http_addr, "GET", "/api/health", "").await;
            (status == 503 && health.contains("Authentication failed")).then_some(health)
        },
    )
    .await;
    let text = health;
    assert!(
        text.contains("SCRAM-SHA-512") && text.contains("invalid credentials"),
        "says what failed: {text}"
    );
    assert!(!text.contains(wrong), "the password is not shown: {text}");
    app.shutdown().await;
}
