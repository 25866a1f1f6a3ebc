//! Client configuration shared by every consumer and producer kfn creates.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Where the cluster is and how to talk to it.
#[derive(Clone)]
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
    /// When exactly-once bindings and stages commit (`kafka.commit-interval`,
    /// `kafka.transaction-records`).
    pub transactions: crate::config::Transactions,
}

/// The consumer group session timeout on a real broker (`kafka.properties` overrides
/// it; the broker accepts 6 s to 30 min by default).
const SESSION_TIMEOUT_MS: &str = "10000";
const HEARTBEAT_INTERVAL_MS: &str = "1000";

/// The client id prefix that carries an instance's HTTP address (see
/// [`KafkaSettings::advertise`]): `kfn-<application id>@<host:port>`.
pub fn advertised_in(client_id: &str) -> Option<&str> {
    client_id.split_once('@').map(|(_, addr)| addr)
}

impl std::fmt::Debug for KafkaSettings {
    /// Secret properties show as `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("bootstrap", &self.bootstrap)
            .field("embedded", &self.embedded)
            .field("application_id", &self.application_id)
            .field("properties", &crate::config::redacted(&self.properties))
            .field("instance", &self.instance)
            .field("advertise", &self.advertise)
            .field("transactions", &self.transactions)
            .finish()
    }
}

impl KafkaSettings {
    /// What librdkafka refuses when it creates kfn's clients from these settings (the
    /// user's properties together with kfn's own, e.g. `acks: 1` against kfn's
    /// idempotent producer), worded without secrets. The clients are created with
    /// no bootstrap servers, so nothing connects; with OIDC creating one would fetch a
    /// token, so that is left to the first real client.
    pub fn refusals(&self) -> Vec<String> {
        use rdkafka::consumer::BaseConsumer;
        use rdkafka::producer::BaseProducer;
        let oidc = self
            .properties
            .get("sasl.oauthbearer.method")
            .is_some_and(|m| m.eq_ignore_ascii_case("oidc"));
        if oidc {
            return Vec::new();
        }
        let offline = |mut c: ClientConfig| {
            c.remove("bootstrap.servers");
            // The warning that there are no bootstrap servers is expected here.
            c.set("log_level", "0");
            c
        };
        let mut refused = Vec::new();
        if let Err(e) = offline(self.producer()).create::<BaseProducer>() {
            refused.push(format!("the producer: {}", self.redact(&e.to_string())));
        }
        if let Err(e) = offline(self.consumer("validate")).create::<BaseConsumer>() {
            refused.push(format!("the consumers: {}", self.redact(&e.to_string())));
        }
        refused
    }

    /// Why the cluster cannot be reached, as librdkafka reports it to a client's error
    /// callback (e.g. `SASL authentication error: Authentication failed during
    /// authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512`),
    /// which a failed request does not carry: a short-lived client asks for metadata and
    /// keeps the first such report. Blocking, up to `timeout`.
    pub fn diagnose(&self, timeout: std::time::Duration) -> Option<String> {
        use rdkafka::client::ClientContext;
        use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

        #[derive(Default)]
        struct FirstError(std::sync::Mutex<Option<String>>);
        impl ClientContext for FirstError {
            fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
                let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| format!("{reason} ({error})"));
            }
            fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
        }
        impl ProducerContext for FirstError {
            type DeliveryOpaque = ();
            fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
        }

        let mut config = self.producer();
        config.set("log_level", "3");
        let producer: BaseProducer<FirstError> =
            config.create_with_context(FirstError::default()).ok()?;
        let failed = producer
            .client()
            .fetch_metadata(None, rdkafka::util::Timeout::After(timeout))
            .is_err();
        // Error events wait on the client's queue until it is polled.
        for _ in 0..5 {
            producer.poll(std::time::Duration::from_millis(20));
        }
        let first = producer.context().0.lock().ok()?.take();
        failed
            .then_some(first)
            .flatten()
            .map(|e: String| self.redact(&e))
    }

    /// `text` with the value of every secret property replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.properties
            .iter()
            .filter(|(k, v)| crate::config::is_secret_property(k) && !v.is_empty())
            .fold(text.to_string(), |t, (_, v)| t.replace(v.as_str(), "***"))
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", self.client_id());
        c
    }

    /// The client id of every client of this instance (see [`advertised_in`]).
    pub fn client_id(&self) -> String {
        match &self.advertise {
            Some(addr) => format!("kfn-{}@{addr}", self.application_id),
            None => format!("kfn-{}", self.application_id),
        }
    }

    /// Adds the user's properties, except those meant only for the other kind of
    /// client (librdkafka warns about each of those on every client it creates).
    fn with_user(&self, mut c: ClientConfig, kind: Kind) -> ClientConfig {
        // TLS without a CA of the user's: the system's CAs. kfn's OpenSSL is vendored
        // (runtime/Cargo.toml) and does not know where this system keeps them;
        // `probe` makes librdkafka look in the usual places (what managed clusters'
        // publicly signed certificates need).
        let tls = self
            .properties
            .get("security.protocol")
            .is_some_and(|p| p.to_ascii_uppercase().ends_with("SSL"));
        if tls && !self.user_sets("ssl.ca.location") && !self.user_sets("ssl.ca.pem") {
            c.set("ssl.ca.location", "probe");
        }
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
        self.transactional_id_of(binding, &self.instance)
    }

    /// The transactional id of `binding` on the instance named `instance`.
    pub fn transactional_id_of(&self, binding: &str, instance: &str) -> String {
        format!("{}@{instance}", self.group_id(binding))
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
            // librdkafka stops fetching a partition for this long once its local queue
            // is full (default 1 s); a consumer that drains the queue quickly then sits
            // idle for most of that second: 9.4 s instead of 5.4 s for a million
            // records through a function binding on a real broker.
            .set("fetch.queue.backoff.ms", "20")
            // When an instance joins or leaves, only the partitions that move are
            // revoked: the others keep their window state instead of restoring it.
            .set("partition.assignment.strategy", "cooperative-sticky");
        if self.embedded {
            c.set("session.timeout.ms", "1500")
                .set("heartbeat.interval.ms", "150");
        } else if !self.user_sets("group.protocol") {
            // How long the group takes to notice a member that died without leaving
            // (kill -9, a lost machine) and give its partitions to the others:
            // librdkafka's 45 s default is most of a takeover. Heartbeats come from a
            // background thread, so a slow function does not count against it.
            c.set("session.timeout.ms", SESSION_TIMEOUT_MS)
                .set("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS);
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
            "fetch.queue.backoff.ms",
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
            transactions: Default::default(),
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
        assert_eq!(consumer.get("ssl.ca.location"), Some("probe"));
    }

    #[test]
    fn refusals_come_from_librdkafka_and_hide_secrets() {
        let settings = |pairs: &[(&str, &str)]| KafkaSettings {
            bootstrap: "b:9092".into(),
            embedded: false,
            application_id: "app".into(),
            properties: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            instance: "i1".into(),
            advertise: None,
            transactions: Default::default(),
        };
        let scram = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "kfn"),
            ("sasl.password", "hunter2-secret"),
        ];
        assert_eq!(settings(&scram).refusals(), Vec::<String>::new());
        assert!(!format!("{:?}", settings(&scram)).contains("hunter2"));
        // kfn's producer is idempotent on a real cluster, which needs acks=all.
        let refused = settings(&[("acks", "1")]).refusals();
        assert!(
            refused.len() == 1 && refused[0].contains("acks"),
            "{refused:?}"
        );
        let s = settings(&scram);
        assert_eq!(
            s.redact("password hunter2-secret rejected"),
            "password *** rejected"
        );
    }
}
