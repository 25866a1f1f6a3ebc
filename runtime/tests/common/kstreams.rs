//! Kafka Streams as a test oracle for the windowed analytics: pushes records through
//! Kafka Streams' `TopologyTestDriver` (`stream -> groupByKey -> windowedBy(spec) ->
//! count`, record cache off) and returns the windowed counts it produced, so a test can
//! compare kfn's answer with Kafka Streams' for the same input.
//!
//! The Java program is `runtime/tests/kstreams` (Maven, Kafka Streams 4.4.0). The first
//! call in a checkout builds it into `runtime/tests/kstreams/target/oracle.jar` (with its
//! dependency jars in `target/lib/`): `mvn -o package` if `~/.m2` already has every
//! artifact, else the same online from Maven Central. Later calls reuse the jar while it
//! is newer than the pom and every source file. Each `run` starts one JVM (about half a
//! second).
//!
//! Semantics worth knowing when comparing (read from Kafka Streams' source and checked
//! by `tests/kstreams_oracle.rs`):
//! - Stream time is the largest record timestamp seen so far across all keys (one
//!   partition), including the record being processed.
//! - Window bounds are `Windowed.window().start()/end()`: `end` is exclusive for
//!   tumbling and hopping, inclusive for sliding and session windows. Time windows never
//!   start below 0 (a record at 3 with size 10 advance 5 is in `[0,10)` only); sliding
//!   records earlier than the time difference share one `[0, diff]` window instead of
//!   a left window `[t-diff, t]`.
//! - `dropped` is the task-level `dropped-records-total` metric, which counts skipped
//!   *windows*, not records: a late hopping record whose two windows are both closed
//!   counts 2, and an accepted sliding record whose own left window is closed counts 1.
//! - With the default store retention (tumbling/hopping size+grace, sliding
//!   2*diff+grace, session gap+grace) the RocksDB store hides windows that the
//!   processor would still use: with `emit_final` a window is never emitted if the
//!   first record that closes it moves stream time a whole window advance past its
//!   close; a session whose end is exactly `stream time - gap - grace` is no longer
//!   found for merging. [`run_retained`] with a long retention removes these effects.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

/// A window definition, in milliseconds, as Kafka Streams takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `TimeWindows.ofSizeAndGrace(size, grace)`.
    Tumbling { size: i64, grace: i64 },
    /// `TimeWindows.ofSizeAndGrace(size, grace).advanceBy(advance)`.
    Hopping { size: i64, advance: i64, grace: i64 },
    /// `SlidingWindows.ofTimeDifferenceAndGrace(diff, grace)`.
    Sliding { diff: i64, grace: i64 },
    /// `SessionWindows.ofInactivityGapAndGrace(gap, grace)`.
    Session { gap: i64, grace: i64 },
}

impl Spec {
    fn args(&self) -> Vec<String> {
        let (kind, nums): (&str, Vec<i64>) = match *self {
            Spec::Tumbling { size, grace } => ("tumbling", vec![size, grace]),
            Spec::Hopping {
                size,
                advance,
                grace,
            } => ("hopping", vec![size, advance, grace]),
            Spec::Sliding { diff, grace } => ("sliding", vec![diff, grace]),
            Spec::Session { gap, grace } => ("session", vec![gap, grace]),
        };
        std::iter::once(kind.to_string())
            .chain(nums.into_iter().map(|n| n.to_string()))
            .collect()
    }
}

/// What Kafka Streams produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `(key, window start, window end, count)`. Without `emit_final`: the final state
    /// of the windowed table (the last value forwarded per window, sessions merged away
    /// left out), sorted by key, start, end. With `emit_final`: every record emitted on
    /// window close, in emission order.
    pub windows: Vec<(String, i64, i64, u64)>,
    /// Task-level `dropped-records-total`: windows skipped as late (see module doc).
    pub dropped: u64,
}

/// Runs `input` (`(key, timestamp ms)`, in this order) through Kafka Streams with the
/// default store retention. Panics if Java or Maven is missing, the build fails, or
/// Kafka Streams rejects the spec.
pub fn run(spec: &Spec, emit_final: bool, input: &[(String, i64)]) -> Answer {
    run_with(spec, emit_final, None, input)
}

/// As [`run`], with the window/session store retention set to `retention` ms
/// (`Materialized.withRetention`; at least size+grace, 2*diff+grace for sliding,
/// gap+grace for session).
pub fn run_retained(
    spec: &Spec,
    emit_final: bool,
    retention: i64,
    input: &[(String, i64)],
) -> Answer {
    run_with(spec, emit_final, Some(retention), input)
}

fn run_with(
    spec: &Spec,
    emit_final: bool,
    retention: Option<i64>,
    input: &[(String, i64)],
) -> Answer {
    let mut stdin = String::new();
    for (key, ts) in input {
        assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()),
            "kstreams oracle: keys must be non-empty ASCII words, got {key:?}"
        );
        assert!(
            *ts >= 0,
            "kstreams oracle: Kafka rejects negative timestamps, got {ts}"
        );
        stdin.push_str(&format!("{key} {ts}\n"));
    }
    let mut args = Vec::new();
    if let Some(r) = retention {
        args.push("--retention".to_string());
        args.push(r.to_string());
    }
    args.extend(spec.args());
    args.push(if emit_final { "final" } else { "changes" }.to_string());

    let mut child = command()
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("kstreams oracle: cannot start java: {e}. {INSTALL}"));
    let mut pipe = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // The program reads all of stdin before it writes anything; a broken pipe
        // means it exited early, which its exit status reports.
        let _ = pipe.write_all(stdin.as_bytes());
    });
    let out = child
        .wait_with_output()
        .expect("kstreams oracle: wait for java");
    writer.join().expect("stdin writer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kstreams oracle `java -jar oracle.jar {}` failed ({}):\n{stderr}",
        args.join(" "),
        out.status
    );
    parse(&stdout).unwrap_or_else(|e| {
        panic!("kstreams oracle: unexpected output ({e}):\n{stdout}\nstderr:\n{stderr}")
    })
}

/// `java -jar oracle.jar` (built if needed), for calling the program directly.
pub fn command() -> Command {
    let mut cmd = Command::new("java");
    // C1 only and the serial collector: a short run starts about twice as fast.
    cmd.args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar"])
        .arg(jar());
    cmd
}

fn parse(stdout: &str) -> Result<Answer, String> {
    let mut windows = Vec::new();
    let mut dropped = None;
    for line in stdout.lines() {
        if dropped.is_some() {
            return Err(format!("line after `dropped`: {line:?}"));
        }
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["dropped", n] => dropped = Some(n.parse().map_err(|e| format!("{line:?}: {e}"))?),
            [key, start, end, count] => {
                let num = |s: &str| s.parse::<i64>().map_err(|e| format!("{line:?}: {e}"));
                windows.push((
                    key.to_string(),
                    num(start)?,
                    num(end)?,
                    count.parse().map_err(|e| format!("{line:?}: {e}"))?,
                ));
            }
            _ => return Err(format!("bad line {line:?}")),
        }
    }
    let dropped = dropped.ok_or("no `dropped` line")?;
    Ok(Answer { windows, dropped })
}

const INSTALL: &str = "The Kafka Streams oracle needs Java 17+ and Maven: \
                       apt-get install -y openjdk-17-jdk-headless maven";

fn project() -> PathBuf {
    super::repo_root().join("runtime/tests/kstreams")
}

/// The built jar, building it first if it is missing or older than its sources. One
/// build per checkout: a `OnceLock` within this test binary and a lock file across
/// test binaries running at the same time.
fn jar() -> &'static Path {
    static JAR: OnceLock<PathBuf> = OnceLock::new();
    JAR.get_or_init(|| {
        need("java", &["-version"]);
        let project = project();
        let target = project.join("target");
        let jar = target.join("oracle.jar");
        fs::create_dir_all(&target).expect("create runtime/tests/kstreams/target");
        let lock = File::create(target.join(".build.lock")).expect("oracle build lock file");
        lock.lock().expect("lock the oracle build");
        if !fresh(&project, &jar) {
            build(&project);
            assert!(
                fresh(&project, &jar),
                "kstreams oracle: mvn succeeded but {} is missing or stale",
                jar.display()
            );
        }
        // The lock is released when `lock` is dropped here.
        jar
    })
}

fn need(tool: &str, version_args: &[&str]) {
    let ok = Command::new(tool)
        .args(version_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kstreams oracle: `{tool}` not found. {INSTALL}");
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of `pom.xml` and everything under `src/`.
fn newest_source(project: &Path) -> SystemTime {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Some(t) = mtime(&path) {
                *newest = (*newest).max(t);
            }
        }
    }
    let mut newest = mtime(&project.join("pom.xml")).expect("runtime/tests/kstreams/pom.xml");
    walk(&project.join("src"), &mut newest);
    newest
}

fn fresh(project: &Path, jar: &Path) -> bool {
    let lib_ok = fs::read_dir(project.join("target/lib")).is_ok_and(|mut d| d.next().is_some());
    lib_ok && mtime(jar).is_some_and(|t| t > newest_source(project))
}

fn build(project: &Path) {
    need("mvn", &["-v"]);
    let log = project.join("target/mvn.log");
    let started = Instant::now();
    // Offline first: it succeeds without the network when ~/.m2 has every artifact, and
    // fails at once when it does not.
    for offline in [true, false] {
        let mut cmd = Command::new("mvn");
        cmd.args(["-q", "-B", "-Dstyle.color=never"]);
        if offline {
            cmd.arg("-o");
        }
        let out = cmd
            .args(["package"])
            .current_dir(project)
            .output()
            .unwrap_or_else(|e| panic!("kstreams oracle: cannot run mvn: {e}. {INSTALL}"));
        let mut text = out.stdout;
        text.extend_from_slice(&out.stderr);
        let _ = fs::write(&log, &text);
        if out.status.success() {
            eprintln!(
                "kstreams oracle: built {} in {:.1} s (mvn{} package)",
                project.join("target/oracle.jar").display(),
                started.elapsed().as_secs_f64(),
                if offline { " -o" } else { "" }
            );
            return;
        }
        if !offline {
            let text = String::from_utf8_lossy(&text);
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "kstreams oracle: `mvn -q -B package` in {} failed (full log: {}):\n{}",
                project.display(),
                log.display(),
                tail.join("\n")
            );
        }
    }
}
