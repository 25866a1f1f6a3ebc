//! The live-configuration scenario, on whichever broker `kafka` names: kfn.yaml is
//! saved while records flow, and the bindings it changes start, stop or restart while
//! the others run on.
//!
//! - `steady` is untouched: its outputs keep coming throughout (no gap longer than a
//!   rebalance would cause) and it is the same running binding afterwards;
//! - `moved` is changed (its CPU-time limit), so it restarts under load: every input
//!   record has exactly one output (nothing lost, nothing duplicated);
//! - `values` changes only its `config:` values: its function reads the new ones
//!   from the next call on, and it is not restarted;
//! - `gone` is removed and `added` starts;
//! - then an invalid file is rejected with its errors and nothing changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use tokio::time::Instant;

use super::{eventually, produce, producer, read_n, reader};

const LONG: Duration = Duration::from_secs(120);
/// Longer than a gap in a busy binding's output can be without a pause (inputs
/// arrive every few ms), shorter than a restart or a rebalance takes.
const MAX_GAP: Duration = Duration::from_millis(1500);

fn yaml(kafka: &str, topic: &dyn Fn(&str) -> String, after: bool) -> String {
    let t = topic;
    let mut y = format!(
        "kafka: {kafka}\nbindings:\n  steady: {{ function: probe, in: {}, out: {} }}\n",
        t("f1"),
        t("g1")
    );
    let (cpu, tag) = if after { ("2s", "two") } else { ("1s", "one") };
    y += &format!(
        "  moved: {{ function: probe, in: {}, out: {}, limits: {{ cpu-time: {cpu} }} }}\n",
        t("f2"),
        t("g2")
    );
    y += &format!(
        "  values: {{ function: probe, in: {}, out: {}, config: {{ tag: {tag} }} }}\n",
        t("f3"),
        t("g3")
    );
    if after {
        y += &format!(
            "  added: {{ function: probe, in: {}, out: {} }}\n",
            t("f5"),
            t("g5")
        );
    } else {
        y += &format!(
            "  gone: {{ function: probe, in: {}, out: {} }}\n",
            t("f4"),
            t("g4")
        );
    }
    y
}

/// Sends `n:0`, `n:1`, ... to `topic` every few ms until `stop`; returns how many.
async fn feed(bootstrap: String, topic: String, stop: Arc<AtomicBool>) -> u32 {
    let p = producer(&bootstrap);
    let sent = AtomicU32::new(0);
    while !stop.load(Ordering::Relaxed) {
        let i = sent.fetch_add(1, Ordering::Relaxed);
        produce(&p, &topic, Some(&i.to_string()), &format!("n:{i}"), None).await;
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    sent.load(Ordering::Relaxed)
}

/// Reads `topic` until it holds `n` distinct numbered outputs, then a little longer
/// for any duplicate; returns how often each number came, and the times outputs
/// were written (ms).
async fn numbered(c: &StreamConsumer, n: u32) -> (BTreeMap<u32, u32>, Vec<i64>) {
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    let mut stamps = Vec::new();
    let deadline = Instant::now() + LONG;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let left = match quiet_until {
            Some(q) => q.saturating_duration_since(Instant::now()),
            None => deadline.saturating_duration_since(Instant::now()),
        };
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, c.recv()).await {
            Ok(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                if let Some(i) = v.rsplit("n:").next().and_then(|i| i.parse().ok()) {
                    *seen.entry(i).or_default() += 1;
                    stamps.push(m.timestamp().to_millis().unwrap_or(0));
                }
                if quiet_until.is_none() && seen.len() as u32 >= n {
                    quiet_until = Some(Instant::now() + Duration::from_secs(2));
                }
            }
            Ok(Err(e)) => panic!("reading outputs: {e}"),
            Err(_) => break,
        }
    }
    (seen, stamps)
}

/// The longest gap between consecutive output times within `from..to`.
fn longest_gap(stamps: &[i64], from: i64, to: i64) -> Duration {
    let mut s: Vec<i64> = stamps
        .iter()
        .copied()
        .filter(|t| (from..=to).contains(t))
        .collect();
    s.sort_unstable();
    let gap = s.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(i64::MAX);
    Duration::from_millis(gap.max(0) as u64)
}

/// The next `config` event on the feed (the answer to a save), within [`LONG`].
async fn config_event(
    events: &mut tokio::sync::broadcast::Receiver<kfn::observe::Event>,
    what: &str,
) -> kfn::observe::Event {
    eventually(LONG, what, async || {
        loop {
            match events.try_recv() {
                Ok(e) if e.kind == kfn::observe::EventKind::Config => break Some(e),
                Ok(_) => continue,
                Err(_) => break None,
            }
        }
    })
    .await
}

/// Runs the scenario. `kafka` is the `kafka:` value; `topic` names the topics (a
/// real broker gets unique ones per run).
pub async fn scenario(kafka: &str, topic: &dyn Fn(&str) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let app = super::start_app(
        dir.path(),
        &yaml(kafka, topic, false),
        &[("probe", super::guest("probe"))],
    )
    .await;
    let bootstrap = app.bootstrap.clone();
    let p = producer(&bootstrap);

    // Records flow into steady and moved from now on.
    let stop = Arc::new(AtomicBool::new(false));
    let feeds =
        [topic("f1"), topic("f2")].map(|t| tokio::spawn(feed(bootstrap.clone(), t, stop.clone())));
    let g1 = reader(&bootstrap, &topic("g1"));
    let g2 = reader(&bootstrap, &topic("g2"));
    read_n(&reader(&bootstrap, &topic("g2")), 20, LONG).await;
    produce(&p, &topic("f3"), None, "config:tag", None).await;
    let g3 = reader(&bootstrap, &topic("g3"));
    let before = read_n(&g3, 1, LONG).await;
    assert_eq!(before[0].value, "one");
    let steady = app.bindings.get("steady").expect("steady runs");
    let values = app.bindings.get("values").expect("values runs");
    let moved = app.bindings.get("moved").expect("moved runs");

    // Save the new file while records flow.
    let (_, mut events) = app.events.subscribe();
    let saved_at = kfn::record::now_ms();
    std::fs::write(dir.path().join("kfn.yaml"), yaml(kafka, topic, true)).unwrap();
    let applied = config_event(&mut events, "the change applied").await;
    let applied_at = kfn::record::now_ms();
    for part in [
        "applied:",
        "started added",
        "stopped gone",
        "restarted moved",
        "bindings.values",
    ] {
        assert!(applied.message.contains(part), "{part:?} in {applied:?}");
    }
    // The dashboard's feed says the same (`/api/events` replays history).
    let history = app.events.subscribe().0.len();
    let feed_text = super::sse(
        app.http_addr,
        "/api/events",
        history,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        feed_text.iter().any(|e| e.contains("restarted moved")),
        "{feed_text:?}"
    );

    // Keep the load on a while after the change, then stop it and count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let [sent1, sent2] = futures::future::join_all(feeds)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();

    // moved restarted under load: each record exactly once.
    let (seen2, _) = numbered(&g2, sent2).await;
    let missing: Vec<u32> = (0..sent2).filter(|i| !seen2.contains_key(i)).collect();
    let twice: Vec<(&u32, &u32)> = seen2.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "moved lost {} of {sent2}: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        twice.is_empty(),
        "moved duplicated {}: {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    let moved_now = app.bindings.get("moved").expect("moved runs again");
    assert!(!Arc::ptr_eq(&moved, &moved_now), "moved was restarted");

    // steady ran on: all its records, once, and no gap in its output around the save.
    let (seen1, stamps1) = numbered(&g1, sent1).await;
    assert_eq!(seen1.len() as u32, sent1, "steady lost records");
    assert!(seen1.values().all(|n| *n == 1), "steady duplicated records");
    let gap = longest_gap(&stamps1, saved_at - 1000, applied_at + 1000);
    eprintln!(
        "live config: {sent1} records through steady, {sent2} through moved; applied {} ms after the save; steady's longest output gap around it {gap:?}",
        applied_at - saved_at
    );
    assert!(gap < MAX_GAP, "steady paused for {gap:?} around the change");
    let steady_now = app.bindings.get("steady").expect("steady runs");
    assert!(
        Arc::ptr_eq(&steady, &steady_now),
        "steady was not restarted"
    );
    assert_eq!(steady_now.state().0, kfn::observe::BindingState::Running);

    // values: new config values, same running binding.
    produce(&p, &topic("f3"), None, "config:tag", None).await;
    let after = read_n(&g3, 1, LONG).await;
    assert_eq!(after[0].value, "two");
    assert!(Arc::ptr_eq(&values, &app.bindings.get("values").unwrap()));

    // gone stopped, added runs.
    assert!(app.bindings.get("gone").is_none());
    produce(&p, &topic("f5"), None, "hello", None).await;
    let out = read_n(&reader(&bootstrap, &topic("g5")), 1, LONG).await;
    assert!(out[0].value.ends_with(":hello"), "{out:?}");

    // An invalid file: rejected with its errors, nothing changes.
    let names = |app: &kfn::app::App| -> Vec<String> {
        app.bindings.list().iter().map(|b| b.name.clone()).collect()
    };
    let running = names(&app);
    std::fs::write(
        dir.path().join("kfn.yaml"),
        format!(
            "{}  broken: {{ function: probe, in: {} }}\n  worse: {{ every: 1x }}\n",
            yaml(kafka, topic, true),
            topic("f1")
        ),
    )
    .unwrap();
    let rejected = config_event(&mut events, "the invalid file reported").await;
    assert!(rejected.message.contains("INVALID"), "{rejected:?}");
    assert!(
        rejected.message.contains("kfn.yaml:"),
        "names the line: {rejected:?}"
    );
    assert_eq!(names(&app), running);
    produce(&p, &topic("f1"), Some("x"), "n:999999", None).await;
    let (seen, _) = numbered(&g1, 1).await;
    assert_eq!(seen.get(&999_999), Some(&1), "steady still runs");
    app.shutdown().await;
}
