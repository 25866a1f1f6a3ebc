//! The rules of `kafka:`: the broker list, the application id, and the librdkafka
//! properties, checked by librdkafka itself one by one (unknown keys, values it
//! rejects, features this build lacks) and then together for what makes a secure
//! connection work (a mechanism, credentials for it, files that exist).
//!
//! What librdkafka only refuses once a client is created from the whole set (e.g.
//! `acks: 1` with kfn's idempotent producer) is checked by `kfn validate` and
//! `kfn up` through [`crate::kafka::KafkaSettings::refusals`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

use crate::config::node_de::{Located, ScalarText, did_you_mean};
use crate::config::raw::RawKafka;
use crate::config::{
    Brokers, KafkaConfig, Transactions, defaults, is_secret_property, names, units,
};

use super::{Report, Section};

pub(super) fn kafka(
    section: &Section<'_>,
    base_dir: &Path,
    report: &mut Report,
) -> Option<KafkaConfig> {
    let raw: RawKafka = report.read("kafka", section.node)?;
    let brokers = match &raw.brokers {
        Some(brokers) => report.check("kafka.brokers", brokers, |b| parse_brokers(b)),
        None => {
            report.error(
                section.key,
                "kafka",
                "missing 'brokers': set it to embedded, or to a bootstrap list like localhost:9092",
            );
            None
        }
    };
    let application_id = match (&raw.application_id, &brokers) {
        (Some(id), _) => report.check("kafka.application-id", id, |id| {
            names::check_name("application-id", id).map(|()| id.clone())
        }),
        // On a shared cluster a default would make two apps share consumer groups
        // and internal topics without a word; the embedded broker is the app's own.
        (None, Some(Brokers::Bootstrap(_))) => {
            report.error(
                section.key,
                "kafka",
                "missing 'application-id': a real cluster needs one per app (its consumer groups and internal topics are named after it; two apps with one id share them). Add e.g. `application-id: shop`",
            );
            None
        }
        (None, _) => Some(defaults::APPLICATION_ID.to_owned()),
    };
    let mut properties = BTreeMap::new();
    let mut positions = BTreeMap::new();
    for (name, value) in raw.properties.unwrap_or_default() {
        let path = format!("kafka.properties.{name:?}");
        let replacement = match name.as_str() {
            "bootstrap.servers" | "metadata.broker.list" => Some("kafka.brokers"),
            "group.id" => Some("kafka.application-id (the consumer group prefix)"),
            _ => None,
        };
        if let Some(key) = replacement {
            report.error(
                value.pos,
                &path,
                format!("'{name}' is set by kfn: use {key} instead"),
            );
            continue;
        }
        let Located {
            pos,
            value: ScalarText(mut text),
        } = value;
        if FILE_PROPERTIES.contains(&name.as_str())
            && !(name == "ssl.ca.location" && text == "probe")
        {
            // librdkafka resolves paths against the process's folder; kfn.yaml's
            // paths are relative to kfn.yaml, like every other path in it.
            let resolved = base_dir.join(&text);
            if !resolved.exists() {
                report.error(
                    pos,
                    &path,
                    format!(
                        "'{}' not found (relative to this file's folder): fix the path",
                        text
                    ),
                );
                continue;
            }
            text = resolved.display().to_string();
        }
        if let Err(message) = check_property(&name, &text) {
            report.error(pos, &path, message);
            continue;
        }
        positions.insert(name.clone(), pos);
        properties.insert(name, text);
    }
    if let Some(Brokers::Embedded) = brokers {
        let protocol = properties
            .get("security.protocol")
            .map(|p| p.to_ascii_uppercase());
        if protocol.as_deref().is_some_and(|p| p != "PLAINTEXT") {
            let pos = positions["security.protocol"];
            report.error(
                pos,
                "kafka.properties.\"security.protocol\"",
                "the embedded broker speaks PLAINTEXT only: remove security.protocol, or set brokers to a real cluster",
            );
        }
    }
    for (key, message) in security_problems(&properties) {
        let (pos, path) = match positions.get(key) {
            Some(pos) => (*pos, format!("kafka.properties.{key:?}")),
            None => (section.key, "kafka.properties".to_owned()),
        };
        report.error(pos, &path, message);
    }
    let base = Transactions::default();
    let interval = raw.commit_interval.as_ref().and_then(|t| {
        report.check(
            "kafka.commit-interval",
            t,
            |t| match units::parse_duration(t)? {
                d if d.is_zero() => Err(format!(
                    "invalid commit-interval '{t}': must be longer than 0 (e.g. 100ms)"
                )),
                d => Ok(d),
            },
        )
    });
    let records =
        raw.transaction_records.as_ref().and_then(|n| {
            report.check("kafka.transaction-records", n, |n| match n.parse::<usize>() {
            Ok(n @ 1..=1_000_000) => Ok(n),
            _ => Err(format!(
                "invalid transaction-records '{n}': expected a whole number from 1 to 1000000"
            )),
        })
        });
    Some(KafkaConfig {
        brokers: brokers?,
        application_id: application_id?,
        properties,
        transactions: Transactions {
            interval: interval.unwrap_or(base.interval),
            records: records.unwrap_or(base.records),
        },
    })
}

/// `embedded`, or a comma-separated list of `host:port`.
fn parse_brokers(text: &str) -> Result<Brokers, String> {
    if text == "embedded" {
        return Ok(Brokers::Embedded);
    }
    let valid = |broker: &str| {
        broker.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        })
    };
    match text.split(',').map(str::trim).find(|b| !valid(b)) {
        None => Ok(Brokers::Bootstrap(text.to_owned())),
        Some(bad) => Err(format!(
            "invalid broker '{bad}': expected embedded, or host:port[,host:port...] (e.g. localhost:9092)"
        )),
    }
}

/// Properties naming files, resolved against kfn.yaml's folder and checked to exist.
const FILE_PROPERTIES: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.keystore.location",
    "ssl.crl.location",
    "sasl.kerberos.keytab",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.jwt.template.file",
];

/// Sets one property on a fresh librdkafka configuration: librdkafka's own verdict on
/// the name and the value, worded without the value when it is a secret.
fn check_property(name: &str, value: &str) -> Result<(), String> {
    let mut config = ClientConfig::new();
    config.set(name, value);
    match config.create_native_config() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientConfig(_, description, _, _)) => {
            let description = if is_secret_property(name) && !value.is_empty() {
                description.replace(value, "***")
            } else {
                description
            };
            let hint = if description.starts_with("No such configuration property") {
                let known: Vec<&str> = known_properties().iter().map(String::as_str).collect();
                match did_you_mean(name, &known) {
                    Some(close) => format!(": did you mean '{close}'? (the properties are librdkafka's: https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md)"),
                    None => " (the properties are librdkafka's: https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md)".to_owned(),
                }
            } else {
                String::new()
            };
            Err(format!("librdkafka: {description}{hint}"))
        }
        Err(other) => Err(format!("librdkafka: {other}")),
    }
}

/// Every property librdkafka knows (client and topic level), for suggestions.
fn known_properties() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        use rdkafka_sys as rd;
        use std::ffi::CStr;
        let mut names = Vec::new();
        // SAFETY: each configuration is created, dumped, and destroyed here; the dump
        // is an array of `count` C strings (name, value, name, value, ...) that lives
        // until `rd_kafka_conf_dump_free`.
        unsafe {
            let read =
                |dump: *mut *const std::ffi::c_char, count: usize, names: &mut Vec<String>| {
                    for i in (0..count).step_by(2) {
                        let name = *dump.add(i);
                        if !name.is_null() {
                            names.push(CStr::from_ptr(name).to_string_lossy().into_owned());
                        }
                    }
                    rd::rd_kafka_conf_dump_free(dump, count);
                };
            let conf = rd::rd_kafka_conf_new();
            let mut count = 0;
            let dump = rd::rd_kafka_conf_dump(conf, &mut count);
            read(dump, count, &mut names);
            rd::rd_kafka_conf_destroy(conf);
            let topic = rd::rd_kafka_topic_conf_new();
            let mut count = 0;
            let dump = rd::rd_kafka_topic_conf_dump(topic, &mut count);
            read(dump, count, &mut names);
            rd::rd_kafka_topic_conf_destroy(topic);
        }
        names.sort();
        names.dedup();
        names
    })
}

/// What a secure connection needs that the properties lack: `(property, message)`.
fn security_problems(properties: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let get = |k: &str| {
        properties
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let protocol = get("security.protocol")
        .unwrap_or("plaintext")
        .to_ascii_uppercase();
    let sasl = protocol.starts_with("SASL");
    let mechanism_key = if get("sasl.mechanism").is_some() {
        "sasl.mechanism"
    } else {
        "sasl.mechanisms"
    };
    let mechanism = get(mechanism_key).map(str::to_ascii_uppercase);
    let mut problems = Vec::new();
    if !sasl {
        if let Some(key) = [
            "sasl.username",
            "sasl.password",
            "sasl.mechanism",
            "sasl.mechanisms",
        ]
        .into_iter()
        .find(|k| get(k).is_some())
        {
            problems.push((
                key,
                format!(
                    "'{key}' is set but security.protocol is {protocol}, which does not use SASL: set security.protocol to SASL_SSL (or SASL_PLAINTEXT)"
                ),
            ));
        }
        return problems;
    }
    match mechanism.as_deref() {
        None => problems.push((
            "security.protocol",
            format!(
                "security.protocol {protocol} needs sasl.mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (librdkafka's default, GSSAPI, needs a kfn built with `--features gssapi`)"
            ),
        )),
        Some("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {
            for key in ["sasl.username", "sasl.password"] {
                if get(key).is_none() {
                    problems.push((
                        mechanism_key,
                        format!(
                            "{} needs {key}: add it (a secret can come from the environment: `{key}: ${{KAFKA_{}}}`)",
                            mechanism.as_deref().unwrap_or_default(),
                            key.trim_start_matches("sasl.").to_ascii_uppercase()
                        ),
                    ));
                }
            }
        }
        Some("OAUTHBEARER") => {
            let oidc = get("sasl.oauthbearer.method").is_some_and(|m| m.eq_ignore_ascii_case("oidc"));
            if oidc {
                for key in [
                    "sasl.oauthbearer.client.id",
                    "sasl.oauthbearer.token.endpoint.url",
                ] {
                    if get(key).is_none() {
                        problems.push((
                            "sasl.oauthbearer.method",
                            format!("OIDC (sasl.oauthbearer.method: oidc) needs {key}: add it"),
                        ));
                    }
                }
                let assertion = get("sasl.oauthbearer.assertion.algorithm").is_some();
                if !assertion && get("sasl.oauthbearer.client.secret").is_none() {
                    problems.push((
                        "sasl.oauthbearer.method",
                        "OIDC client credentials need sasl.oauthbearer.client.secret: add it (e.g. `sasl.oauthbearer.client.secret: ${KAFKA_CLIENT_SECRET}`)".to_owned(),
                    ));
                }
            } else if get("enable.sasl.oauthbearer.unsecure.jwt") != Some("true") {
                problems.push((
                    mechanism_key,
                    "OAUTHBEARER needs a token source: set sasl.oauthbearer.method: oidc with sasl.oauthbearer.client.id, .client.secret and .token.endpoint.url (kfn has no token callback; enable.sasl.oauthbearer.unsecure.jwt: true is for testing only)".to_owned(),
                ));
            }
        }
        // GSSAPI or another mechanism: librdkafka already accepted or refused it.
        Some(_) => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn librdkafka_judges_each_property() {
        assert_eq!(check_property("security.protocol", "SASL_SSL"), Ok(()));
        assert_eq!(check_property("sasl.mechanism", "SCRAM-SHA-512"), Ok(()));
        assert_eq!(check_property("sasl.oauthbearer.method", "oidc"), Ok(()));
        let unknown = check_property("batch.sizes", "5").unwrap_err();
        assert!(unknown.contains("did you mean 'batch.size'"), "{unknown}");
        let invalid = check_property("linger.ms", "soon").unwrap_err();
        assert!(invalid.contains("Invalid value"), "{invalid}");
        let invalid = check_property("security.protocol", "TLS").unwrap_err();
        assert!(
            invalid.contains("\"TLS\""),
            "non-secret values are quoted: {invalid}"
        );
        assert_eq!(check_property("sasl.password", "anything"), Ok(()));
    }

    #[test]
    fn a_secure_connection_needs_a_mechanism_and_its_credentials() {
        let problems = |pairs| {
            security_problems(&props(pairs))
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
        };
        assert!(problems(&[]).is_empty());
        assert!(problems(&[("security.protocol", "SSL")]).is_empty());
        let scram = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ];
        assert!(problems(&scram).is_empty());
        assert!(problems(&scram[..3])[0].contains("needs sasl.password"));
        assert!(problems(&scram[..1])[0].contains("needs sasl.mechanism"));
        assert!(problems(&[("sasl.username", "u")])[0].contains("does not use SASL"));
        let oauth = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
        ];
        assert!(problems(&oauth)[0].contains("needs a token source"));
        let oidc = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.client.id", "id"),
            ("sasl.oauthbearer.client.secret", "s"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
        ];
        assert!(problems(&oidc).is_empty());
        assert_eq!(problems(&oidc[..5]).len(), 1);
    }
}
