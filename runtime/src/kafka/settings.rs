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
    /// This instance's name among those running the same application: part of its
    /// transactional ids, so instances never fence each other while a restarted
    /// instance fences its own predecessor.
    pub instance: String,
    /// Where this instance's HTTP API is reachable by the others; put in every
    /// client id, so the consumer group tells which instance owns which partition.
    pub advertise: Option<String>,
}

/// The client id prefix that carries an instance's HTTP address (see
/// [`KafkaSettings::advertise`]): `kfn-<application id>@<host:port>`.
pub fn advertised_in(client_id: &str) -> Option<&str> {
    client_id.split_once('@').map(|(_, addr)| addr)
}

impl KafkaSettings {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        let id = match &self.advertise {
            Some(addr) => format!("kfn-{}@{addr}", self.application_id),
            None => format!("kfn-{}", self.application_id),
        };
        c.set("client.id", id);
        c
    }

    /// Adds the user's properties, except those meant only for the other kind of
    /// client (librdkafka warns about each of those on every client it creates).
    fn with_user(&self, mut c: ClientConfig, kind: Kind) -> ClientConfig {
        for (k, v) in &self.properties {
            if Kind::of(k).is_none_or(|only| only == kind) {
                c.set(k, v);
            }
        }
        c
    }

    pub fn group_id(&self, binding: &str) -> String {
        format!("{}.{binding}", self.application_id)
    }

    /// The transactional id of `binding` on this instance.
    pub fn transactional_id(&self, binding: &str) -> String {
        format!("{}@{}", self.group_id(binding), self.instance)
    }

    /// Whether the user set `property` in `kafka.properties`.
    pub fn user_sets(&self, property: &str) -> bool {
        self.properties.contains_key(property)
    }

    /// A consumer for an exactly-once binding: it reads only committed records and
    /// never commits by itself (offsets are committed inside transactions).
    pub fn transactional_consumer(&self, binding: &str) -> ClientConfig {
        let mut c = self.consumer(binding);
        c.set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false");
        c
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
            .set("enable.partition.eof", "false")
            // When an instance joins or leaves, only the partitions that move are
            // revoked: the others keep their window state instead of restoring it.
            .set("partition.assignment.strategy", "cooperative-sticky");
        if self.embedded {
            c.set("session.timeout.ms", "1500")
                .set("heartbeat.interval.ms", "150");
        }
        self.with_user(c, Kind::Consumer)
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
        self.with_user(c, Kind::Producer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Consumer,
    Producer,
}

impl Kind {
    /// Which kind of client a librdkafka property is only for, if it is.
    fn of(property: &str) -> Option<Kind> {
        const CONSUMER: &[&str] = &[
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "max.poll.interval.ms",
            "auto.offset.reset",
            "isolation.level",
            "enable.auto.commit",
            "auto.commit.interval.ms",
            "enable.auto.offset.store",
            "partition.assignment.strategy",
            "group.instance.id",
            "group.protocol",
            "group.remote.assignor",
            "queued.min.messages",
            "queued.max.messages.kbytes",
            "enable.partition.eof",
            "check.crcs",
            "fetch.wait.max.ms",
            "fetch.min.bytes",
            "fetch.max.bytes",
            "fetch.message.max.bytes",
            "max.partition.fetch.bytes",
            "fetch.error.backoff.ms",
            "coordinator.query.interval.ms",
        ];
        const PRODUCER: &[&str] = &[
            "acks",
            "request.required.acks",
            "linger.ms",
            "queue.buffering.max.ms",
            "queue.buffering.max.messages",
            "queue.buffering.max.kbytes",
            "batch.num.messages",
            "batch.size",
            "compression.type",
            "compression.codec",
            "compression.level",
            "enable.idempotence",
            "transactional.id",
            "transaction.timeout.ms",
            "message.timeout.ms",
            "delivery.timeout.ms",
            "partitioner",
            "sticky.partitioning.linger.ms",
            "message.send.max.retries",
            "retries",
            "request.timeout.ms",
            "enable.gapless.guarantee",
        ];
        if CONSUMER.contains(&property) {
            Some(Kind::Consumer)
        } else if PRODUCER.contains(&property) {
            Some(Kind::Producer)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_reach_only_the_clients_they_are_for() {
        let settings = KafkaSettings {
            bootstrap: "b:9092".into(),
            embedded: false,
            application_id: "app".into(),
            properties: [
                ("session.timeout.ms", "6000"),
                ("linger.ms", "20"),
                ("security.protocol", "ssl"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            instance: "i1".into(),
            advertise: Some("10.0.0.1:8080".into()),
        };
        let consumer = settings.consumer("b");
        let producer = settings.producer();
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(
            producer.get("linger.ms"),
            Some("20"),
            "the user's value wins over kfn's"
        );
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(
            (
                consumer.get("security.protocol"),
                producer.get("security.protocol")
            ),
            (Some("ssl"), Some("ssl"))
        );
        assert_eq!(consumer.get("group.id"), Some("app.b"));
        assert_eq!(settings.transactional_id("b"), "app.b@i1");
        let client_id = producer.get("client.id").unwrap();
        assert_eq!(advertised_in(client_id), Some("10.0.0.1:8080"));
    }
}
