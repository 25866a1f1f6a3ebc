//! The `batch-function` world end to end on the embedded broker: the guest gets many
//! records per call and answers each once, in order; a record's error dead-letters
//! that record (after its retries), and a call that traps or returns the wrong number
//! of results is made again record by record, so only the records that fail on their
//! own are dead-lettered. Two instances of each function share every read batch
//! (`limits.instances`), and none of that changes: every record is answered once, in
//! input order, and only the failing ones are dead-lettered. And `kfn new batch-function` in every language builds into
//! a function that does what its template says.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{eventually, produce, producer, read_n, reader};

const LONG: Duration = Duration::from_secs(90);

/// Records per probe, besides the failing ones.
const RECORDS: usize = 400;

/// (guest, the prefix its echo adds, whether it knows `short`)
const PROBES: [(&str, &str, bool); 3] = [
    ("probe-batch", "batch-of-", true),
    ("js-batch-probe", "probe-js:", false),
    ("py-batch-probe", "probe-py:", false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_functions_answer_every_record_once_and_dead_letter_only_the_failing_ones() {
    let mut yaml = String::from("kafka: { brokers: embedded }\nbindings:\n");
    for (guest, ..) in PROBES {
        yaml += &format!(
            "  {guest}: {{ function: {guest}, in: in-{guest}, out: out-{guest}, limits: {{ instances: 2 }} }}\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let functions: Vec<(&str, PathBuf)> = PROBES
        .iter()
        .map(|(g, ..)| (*g, common::guest(g)))
        .collect();
    let app = common::start_app(dir.path(), &yaml, &functions).await;
    let bindings = common::get_json(app.http_addr, "/api/bindings").await;
    for b in bindings.as_array().expect("a list of bindings") {
        assert_eq!(
            b["instances"], 2,
            "{}: limits.instances reaches the binding",
            b["name"]
        );
    }
    // The functions go away: each binding waits on its first record, so that the
    // records below are there, all of them, when the function is back, and go in
    // batches.
    for (guest, ..) in PROBES {
        std::fs::remove_file(dir.path().join(format!("functions/{guest}.wasm"))).unwrap();
    }
    eventually(LONG, "the functions to be missing", async || {
        let functions = common::get_json(app.http_addr, "/api/functions").await;
        let missing = functions
            .as_array()?
            .iter()
            .filter(|f| f["status"] == "missing")
            .count();
        (missing == PROBES.len()).then_some(())
    })
    .await;
    let p = producer(&app.bootstrap);
    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut failing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (guest, _, short) in PROBES {
        let topic = format!("in-{guest}");
        let mut values = Vec::new();
        for i in 0..RECORDS {
            let value = format!("r{i}");
            produce(&p, &topic, Some("k"), &value, None).await;
            values.push(value);
            // Failures in the middle of a batch: the records around them still count.
            // (The first read batch, 256 records, holds only the error.)
            let fail = match i {
                100 => Some("error"),
                300 => Some("trap"),
                350 if short => Some("short"),
                _ => None,
            };
            if let Some(fail) = fail {
                produce(&p, &topic, Some("k"), fail, None).await;
                failing.entry(guest).or_default().push(fail);
            }
        }
        expected.insert(guest, values);
    }
    for (guest, path) in &functions {
        common::replace_function(dir.path(), guest, path);
    }

    for (guest, prefix, _) in PROBES {
        let out = read_n(
            &reader(&app.bootstrap, &format!("out-{guest}")),
            RECORDS,
            LONG,
        )
        .await;
        let echoed: Vec<String> = out
            .iter()
            .map(|r| {
                let rest = r.value.strip_prefix(prefix).unwrap_or_else(|| {
                    panic!("{guest}: {:?} lacks the echo prefix {prefix}", r.value)
                });
                // probe-batch says how many records its call had: "batch-of-N:value".
                match rest.split_once(':') {
                    Some((_, value)) if prefix == "batch-of-" => value.to_string(),
                    _ => rest.to_string(),
                }
            })
            .collect();
        assert_eq!(
            echoed, expected[guest],
            "{guest}: every record answered once, in order (one key, one partition)"
        );
        assert_eq!(
            common::records_in(&app.bootstrap, &format!("out-{guest}")),
            RECORDS as i64,
            "{guest}: nothing answered twice"
        );
        if prefix == "batch-of-" {
            let largest = out
                .iter()
                .filter_map(|r| r.value.strip_prefix(prefix)?.split_once(':'))
                .filter_map(|(n, _)| n.parse::<usize>().ok())
                .max();
            assert!(
                largest > Some(50),
                "{guest}: the backlog went in batches (largest call: {largest:?} records)"
            );
        }

        let dlq = read_n(
            &reader(&app.bootstrap, &format!("{guest}.dlq")),
            failing[guest].len(),
            LONG,
        )
        .await;
        let mut values: Vec<&str> = dlq.iter().map(|r| r.value.as_str()).collect();
        values.sort();
        let mut want = failing[guest].clone();
        want.sort();
        assert_eq!(
            values, want,
            "{guest}: only the failing records dead-lettered"
        );
        for r in &dlq {
            let error = r.header("kfn-error").unwrap_or_default();
            let (why, attempts) = match r.value.as_str() {
                // A record's own error is retried alone, like `process`'s.
                "error" => ("asked to fail", "3"),
                "trap" => ("trapped", "3"),
                "short" => ("returned 0 results for 1 records", "3"),
                other => panic!("{guest}: unexpected dead letter {other}"),
            };
            assert!(error.contains(why), "{guest}: {error:?} should say {why:?}");
            assert_eq!(r.header("kfn-attempts"), Some(attempts), "{guest}: {r:?}");
            assert_eq!(r.header("kfn-binding"), Some(guest));
            assert_eq!(r.key.as_deref(), Some("k"));
        }
        let info = eventually(LONG, "counters to settle", async || {
            let b = app.bindings.get(guest).expect("binding").info();
            (b.dead_lettered == failing[guest].len() as u64).then_some(b)
        })
        .await;
        assert_eq!(
            (info.records_in, info.records_out),
            ((RECORDS + failing[guest].len()) as u64, RECORDS as u64),
            "{guest}"
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_function_templates_in_every_language_pass_records_on_and_refuse_empty_ones() {
    // Rust's template is built by the installed-kfn test (`cargo install` + `kfn new`).
    let projects = tempfile::tempdir().unwrap();
    let functions = common::build_templates(
        projects.path(),
        "batch-function",
        "batch",
        &["js", "python", "c", "go"],
    );

    let mut yaml = String::from("kafka: { brokers: embedded }\nbindings:\n");
    for (f, _) in &functions {
        yaml += &format!("  {f}: {{ function: {f}, in: in-{f}, out: out-{f} }}\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let wasm: Vec<(&str, PathBuf)> = functions
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let app = common::start_app(dir.path(), &yaml, &wasm).await;
    let p = producer(&app.bootstrap);
    for (f, _) in &functions {
        for v in ["a", "", "b"] {
            produce(&p, &format!("in-{f}"), Some("k"), v, None).await;
        }
    }
    for (f, _) in &functions {
        let out = read_n(&reader(&app.bootstrap, &format!("out-{f}")), 2, LONG).await;
        let values: Vec<&str> = out.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["a", "b"], "{f}: records passed on as they came");
        assert!(out.iter().all(|r| r.key.as_deref() == Some("k")), "{f}");
        let dlq = read_n(&reader(&app.bootstrap, &format!("{f}.dlq")), 1, LONG).await;
        let error = dlq[0].header("kfn-error").unwrap_or_default();
        assert!(
            dlq[0].value.is_empty() && error.contains(&format!("{f}: empty value")),
            "{f}: the empty record refused with the template's message: {:?}",
            dlq[0]
        );
        assert_eq!(
            common::records_in(&app.bootstrap, &format!("out-{f}")),
            2,
            "{f}: nothing more on out"
        );
    }
    app.shutdown().await;
}
