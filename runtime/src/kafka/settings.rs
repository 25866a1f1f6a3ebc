//! Client configuration shared by every consumer and producer kfn creates.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Where the cluster is and how to talk to it.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub bootstrap: String,
    /// The embedded broker gets faster group timings (it waits out the full session
    /// timeout on every membership change) that a real broker would reject.
    pub embedded: bool,
    /// Consumer groups are `<application_id>.<binding>`.
    pub application_id: String,
    /// User librdkafka properties from `kafka.properties`; they win over kfn's.
    pub properties: BTreeMap<String, String>,
}

impl KafkaSettings {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c.set("client.id", format!("kfn-{}", self.application_id));
        c
    }

    fn with_user(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub fn group_id(&self, binding: &str) -> String {
        format!("{}.{binding}", self.application_id)
    }

    pub fn consumer(&self, binding: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", self.group_id(binding))
            // Offsets are stored by hand once a record's effects are acknowledged and
            // committed in the background from that store: at-least-once.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        if self.embedded {
            c.set("session.timeout.ms", "1500")
                .set("heartbeat.interval.ms", "150");
        }
        self.with_user(c)
    }

    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("linger.ms", "5")
            .set(
                "enable.idempotence",
                if self.embedded { "false" } else { "true" },
            )
            .set("acks", "all")
            .set("message.timeout.ms", "30000");
        self.with_user(c)
    }
}
