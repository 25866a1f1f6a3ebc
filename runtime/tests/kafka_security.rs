//! Security settings that need no broker: OAUTHBEARER with OIDC client credentials is
//! built into kfn's librdkafka (a client fetches its token from the configured
//! endpoint, here a local one), and `kfn validate` refuses what the client would
//! refuse, without printing secrets.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::producer::BaseProducer;

#[test]
fn an_oidc_client_asks_the_token_endpoint_with_its_client_credentials() {
    let endpoint = TcpListener::bind("127.0.0.1:0").unwrap();
    endpoint.set_nonblocking(true).unwrap();
    let url = format!("http://{}/oauth2/token", endpoint.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "kafka:\n  brokers: 127.0.0.1:9\n  application-id: oidc\n  properties:\n    \
         security.protocol: SASL_SSL\n    sasl.mechanism: OAUTHBEARER\n    sasl.oauthbearer.method: oidc\n    \
         sasl.oauthbearer.client.id: kfn-app\n    sasl.oauthbearer.client.secret: ${{CLIENT_SECRET}}\n    \
         sasl.oauthbearer.token.endpoint.url: {url}\n"
    );
    let config = kfn::config::Config::parse_with_env(&yaml, "kfn.yaml", dir.path(), &|n| {
        (n == "CLIENT_SECRET").then(|| "s3cret-value".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let settings = kfn::kafka::KafkaSettings {
        bootstrap: "127.0.0.1:9".into(),
        embedded: false,
        application_id: config.kafka.application_id.clone(),
        properties: config.kafka.properties.clone(),
        instance: "i".into(),
        advertise: None,
        transactions: Default::default(),
    };
    let producer: BaseProducer = settings.producer().create().expect("an OIDC client");

    let deadline = Instant::now() + Duration::from_secs(30);
    let request = loop {
        match endpoint.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut buf = vec![0; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let _ = stream.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                break String::from_utf8_lossy(&buf[..n]).into_owned();
            }
            Err(_) if Instant::now() < deadline => {
                producer.poll(Duration::from_millis(20));
            }
            Err(e) => panic!("no token request within 30 s: {e}"),
        }
    };
    assert!(request.starts_with("POST /oauth2/token"), "{request}");
    assert!(
        request.contains("grant_type=client_credentials"),
        "{request}"
    );
    // HTTP Basic with base64("kfn-app:s3cret-value").
    assert!(
        request.contains("a2ZuLWFwcDpzM2NyZXQtdmFsdWU="),
        "client credentials from the config and the environment: {request}"
    );
}

#[test]
fn validate_refuses_what_librdkafka_would_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kfn.yaml");
    let check = |yaml: &str| {
        std::fs::write(&file, yaml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_kfn"))
            .arg("validate")
            .arg(&file)
            .env("KAFKA_PASSWORD", "hunter2-secret")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let cluster = "kafka:\n  brokers: broker:9092\n  application-id: shop\n  properties:\n";

    let (ok, text) = check(&format!(
        "{cluster}    security.protocol: SASL_SSL\n    sasl.mechanism: SCRAM-SHA-512\n    sasl.username: shop\n    sasl.password: ${{KAFKA_PASSWORD}}\n"
    ));
    assert!(ok && text.contains(": ok"), "{text}");

    let (ok, text) = check(&format!(
        "{cluster}    security.protocol: SASL_SSL\n    sasl.mechanism: SCRAM-SHA-512\n    sasl.password: ${{KAFKA_PASSWORD}}\n"
    ));
    assert!(!ok && text.contains("needs sasl.username"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // Only a client made from the whole set refuses this: kfn's producer is idempotent.
    let (ok, text) = check(&format!("{cluster}    acks: 1\n"));
    assert!(
        !ok && text.contains("librdkafka refuses") && text.contains("acks"),
        "{text}"
    );

    let (ok, text) = check("kafka:\n  brokers: broker:9092\n");
    assert!(!ok && text.contains("missing 'application-id'"), "{text}");

    let (ok, text) = check("kafka:\n  brokers: ${NOT_SET_ANYWHERE}\n  application-id: a\n");
    assert!(
        !ok && text.contains("NOT_SET_ANYWHERE is not set"),
        "{text}"
    );
}
