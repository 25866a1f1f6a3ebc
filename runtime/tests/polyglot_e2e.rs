//! Functions in every supported language, end to end on the embedded broker: a record
//! in, the expected record out, the guest's log line seen, its error dead-lettered;
//! a hot swap across languages under load; and `kfn new` + `kfn build` dropped into a
//! running app.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{eventually, produce, producer, read_n, read_until_quiet, reader};

const LONG: Duration = Duration::from_secs(60);

/// Every tracing line of this test binary, for checking guest log lines.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("info,kfn::guest=trace")
            .with_writer(move || Capture(writer.clone()))
            .init();
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(needle: &str) -> bool {
    String::from_utf8_lossy(&logs().lock().unwrap()).contains(needle)
}

/// (guest, the prefix its echo adds)
const PROBES: [(&str, &str); 5] = [
    ("probe", "probe-v1:"),
    ("js-probe", "probe-js:"),
    ("py-probe", "probe-py:"),
    ("c-probe", "probe-c:"),
    ("go-probe", "probe-go:"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_processes_logs_and_dead_letters() {
    logs();
    let mut yaml = String::from("kafka: { brokers: embedded }\nbindings:\n");
    for (guest, _) in PROBES {
        yaml += &format!(
            "  {guest}: {{ function: {guest}, in: in-{guest}, out: out-{guest}, limits: {{ attempts: 1 }} }}\n"
        );
    }
    yaml += "  js-consumer: { consumer: js-consumer, in: in-js-consumer }\n";
    yaml += "  py-supplier: { supplier: py-supplier, every: 200ms, out: out-py-supplier }\n";
    let dir = tempfile::tempdir().unwrap();
    let mut functions: Vec<(&str, PathBuf)> =
        PROBES.iter().map(|(g, _)| (*g, common::guest(g))).collect();
    functions.push(("js-consumer", common::guest("js-consumer")));
    functions.push(("py-supplier", common::guest("py-supplier")));
    let app = common::start_app(dir.path(), &yaml, &functions).await;
    let p = producer(&app.bootstrap);

    for (guest, prefix) in PROBES {
        let input = format!("in-{guest}");
        produce(&p, &input, Some("k"), "hello", None).await;
        produce(
            &p,
            &input,
            Some("k"),
            &format!("log:marker from {guest}"),
            None,
        )
        .await;
        produce(&p, &input, Some("k"), "config:missing", None).await;
        produce(&p, &input, Some("k"), "error", None).await;

        let out = read_n(&reader(&app.bootstrap, &format!("out-{guest}")), 3, LONG).await;
        // Sorted: only the echo keeps the key, so the others may use other partitions.
        let mut values: Vec<&str> = out.iter().map(|r| r.value.as_str()).collect();
        values.sort();
        let echo = format!("{prefix}hello");
        let mut expected = ["<unset>", "logged", echo.as_str()];
        expected.sort();
        assert_eq!(values, expected, "{guest}");
        let echoed = out.iter().find(|r| r.value == echo).unwrap();
        assert_eq!(echoed.key.as_deref(), Some("k"), "{guest} keeps the key");

        let dlq = read_n(&reader(&app.bootstrap, &format!("{guest}.dlq")), 1, LONG).await;
        assert_eq!(dlq[0].value, "error");
        let error = dlq[0].header("kfn-error").unwrap();
        assert!(error.contains("asked to fail"), "{guest}: {error}");

        let marker = format!("marker from {guest}");
        eventually(LONG, &format!("{guest}'s log line"), async || {
            logged(&marker).then_some(())
        })
        .await;
    }

    produce(&p, "in-js-consumer", None, "a note", None).await;
    produce(&p, "in-js-consumer", None, "error", None).await;
    eventually(LONG, "the JS consumer's log line", async || {
        logged("consumed a note").then_some(())
    })
    .await;
    let dlq = read_n(&reader(&app.bootstrap, "js-consumer.dlq"), 1, LONG).await;
    assert_eq!(dlq[0].value, "error");

    let ticks = read_n(&reader(&app.bootstrap, "out-py-supplier"), 2, LONG).await;
    assert!(
        ticks.iter().all(|r| r.value.starts_with("tick:")),
        "{ticks:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_binding_swaps_rust_to_python_to_javascript_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "kafka: { brokers: embedded }\nbindings:\n  swap: { function: fn, in: S, out: T }\n";
    let app = common::start_app(dir.path(), yaml, &[("fn", common::guest("probe"))]).await;
    let bootstrap = app.bootstrap.clone();
    let out = reader(&bootstrap, "T");

    // A steady stream of numbered records until told to stop; returns how many.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let p = producer(&bootstrap);
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                produce(&p, "S", Some("k"), &n.to_string(), None).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            n
        })
    };
    // The slow compiles (seconds for Python and JS) happen while records keep flowing.
    // Each check drains what has arrived, so the reader keeps up with the load.
    let until = async |prefix: &str| {
        eventually(LONG, &format!("{prefix} to take over"), async || {
            common::read_some(&out, 1_000, Duration::from_millis(100))
                .await
                .iter()
                .any(|r| r.value.starts_with(prefix))
                .then_some(())
        })
        .await
    };
    until("probe-v1:").await;
    common::replace_function(dir.path(), "fn", &common::guest("py-probe"));
    until("probe-py:").await;
    common::replace_function(dir.path(), "fn", &common::guest("js-probe"));
    until("probe-js:").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total = load.await.unwrap();

    let everything = read_n(&reader(&app.bootstrap, "T"), total as usize, LONG).await;
    let extra = read_until_quiet(&reader(&app.bootstrap, "T"), Duration::from_secs(1))
        .await
        .len();
    let mut seen = BTreeMap::new();
    let mut versions: Vec<String> = Vec::new();
    for r in &everything {
        let (version, n) = r.value.split_once(':').unwrap();
        *seen.entry(n.parse::<u32>().unwrap()).or_insert(0) += 1;
        if versions.last().map(String::as_str) != Some(version) {
            versions.push(version.to_string());
        }
    }
    assert_eq!(seen.len(), total as usize, "every record came out");
    assert!(
        seen.values().all(|&n| n == 1) && extra == total as usize,
        "no duplicates"
    );
    assert_eq!(
        versions,
        ["probe-v1", "probe-py", "probe-js"],
        "Rust, then Python, then JavaScript, in order"
    );
    let b = app.bindings.get("swap").unwrap().info();
    assert_eq!((b.records_in, b.records_out), (total as u64, total as u64));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kfn_new_python_then_build_drops_into_a_running_app() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    // The new function's build finds the WIT contract by walking up from its folder.
    std::os::unix::fs::symlink(common::repo_root().join("wit"), dir.path().join("wit")).unwrap();
    let yaml = "kafka: { brokers: embedded }\nbindings:\n  hello: { function: hello, in: H, out: H-out }\n";
    // `hello` does not exist yet: kfn starts, and the binding waits for it.
    std::fs::create_dir_all(dir.path().join("functions/hello")).unwrap();
    let app = common::start_app(dir.path(), yaml, &[]).await;
    std::fs::remove_dir(dir.path().join("functions/hello")).unwrap();
    produce(&producer(&app.bootstrap), "H", Some("k"), "hi", None).await;

    let kfn = env!("CARGO_BIN_EXE_kfn");
    let functions = dir.path().join("functions");
    let new = std::process::Command::new(kfn)
        .args(["new", "function", "hello", "--lang", "python", "--dir"])
        .arg(&functions)
        .output()
        .unwrap();
    assert!(
        new.status.success(),
        "kfn new: {}",
        String::from_utf8_lossy(&new.stderr)
    );
    let build = std::process::Command::new(kfn)
        .args(["build", "--dir"])
        .arg(&functions)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "kfn build: {}",
        String::from_utf8_lossy(&build.stderr)
    );

    let out = read_n(&reader(&app.bootstrap, "H-out"), 1, LONG).await;
    assert!(
        out[0].value.contains("hi"),
        "the template echoes its input: {:?}",
        out[0]
    );
    app.shutdown().await;
}
