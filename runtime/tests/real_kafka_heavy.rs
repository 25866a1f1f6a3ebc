//! A heavy measurement on a real Apache Kafka, run by hand (not in CI):
//!
//! `KFN_TEST_KAFKA=127.0.0.1:19092 cargo test -p kfn --test real_kafka_heavy -- --include-ignored --nocapture`
//!
//! One million preloaded PageEvents on six partitions, stamped in order of production
//! but spread over the partitions at random, so that however the partitions are read
//! the records reach the repartition topic out of order. Through the example app's
//! stage (page-filter → count per page, 5 s tumbling windows, no grace), every final
//! count must equal an independent count and nothing may be dead-lettered as late:
//! no record is late within its own partition.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, read_until_quiet, reader};
use rdkafka::producer::FutureRecord;

fn bootstrap() -> String {
    std::env::var("KFN_TEST_KAFKA")
        .expect("KFN_TEST_KAFKA is not set: this test needs a real broker")
}

fn create_topic(topic: &str, partitions: i32) {
    common::create_topic(&bootstrap(), topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy (a million records): run by hand, see the module docs"]
async fn a_million_preloaded_records_count_exactly() {
    let total: u64 = std::env::var("KFN_TEST_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let id = format!("{}-{}", std::process::id(), kfn::record::now_ms());
    let (input, output) = (format!("heavy-in-{id}"), format!("heavy-out-{id}"));
    create_topic(&input, 6);
    create_topic(&output, 6);

    // 600 s of event time, a record every 0.6 ms, in production order.
    let base = (kfn::record::now_ms() / 5_000 - 1_000) * 5_000;
    let started = std::time::Instant::now();
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut expected: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut rng = 0x9e3779b97f4a7c15u64;
    for i in 0..total {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let page = if rng.is_multiple_of(2) { "P1" } else { "P2" };
        let duration = (rng >> 8) % 9_000;
        let ts = base + (i as i64 * 6) / 10;
        if duration > 100 {
            *expected
                .entry((page.to_string(), ts - ts % 5_000))
                .or_default() += 1;
        }
        let value = format!(
            r#"{{"name":"{page}","user":"U{}","date":"2026-12-01","duration":{duration}}}"#,
            rng % 2 + 1
        );
        let partition = ((rng >> 32) % 6) as i32;
        let (p, topic) = (producer.clone(), input.clone());
        pending.push(async move {
            p.send(
                FutureRecord::to(&topic)
                    .key("k")
                    .partition(partition)
                    .payload(&value)
                    .timestamp(ts),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
        });
        if pending.len() >= 10_000 {
            futures::StreamExt::next(&mut pending).await;
        }
    }
    while futures::StreamExt::next(&mut pending).await.is_some() {}
    eprintln!(
        "heavy: {total} records preloaded in {:?}",
        started.elapsed()
    );

    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "kafka:\n  brokers: {}\n  application-id: heavy-{id}\n\
         analytics:\n  page-count: {{ in: {input}, function: page-filter, key: /name, window: {{ tumbling: 5s }}, aggregate: count, out: {output} }}\n",
        bootstrap()
    );
    let started = std::time::Instant::now();
    let app = common::start_app(
        dir.path(),
        &yaml,
        &[("page-filter", common::example("page-filter"))],
    )
    .await;
    let got = eventually(
        Duration::from_secs(600),
        "every window's final count",
        async || {
            let mut got: BTreeMap<(String, i64), u64> = BTreeMap::new();
            for r in read_until_quiet(&reader(&bootstrap(), &output), Duration::from_secs(2)).await
            {
                let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
                got.insert(
                    (
                        v["key"].as_str().unwrap().to_string(),
                        v["start"].as_i64().unwrap(),
                    ),
                    v["value"].as_u64().unwrap(),
                );
            }
            (got.len() >= expected.len()).then_some(got)
        },
    )
    .await;
    eprintln!(
        "heavy: every window final {:?} after kfn started",
        started.elapsed()
    );
    let wrong = common::differences(&expected, &got);
    assert!(
        wrong.is_empty(),
        "{} of {} windows differ: {wrong:?}",
        wrong.len(),
        expected.len()
    );
    let late = read_until_quiet(
        &reader(&bootstrap(), &format!("heavy-{id}.page-count.dlq")),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        late.is_empty(),
        "{} records dead-lettered: {:?}",
        late.len(),
        &late[..late.len().min(3)]
    );
    eprintln!(
        "heavy: {} windows, all equal to the independent count; nothing late",
        expected.len()
    );
    app.shutdown().await;
}
