//! Live configuration on the embedded broker: saving kfn.yaml under load starts,
//! stops and restarts what changed, and nothing else (see `common/live.rs`; the same
//! scenario runs on a real Kafka in `real_kafka.rs`).

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_kfn_yaml_applies_the_difference_under_load() {
    common::live::scenario("{ brokers: embedded }", &|name| name.to_string()).await;
}
