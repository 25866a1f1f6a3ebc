//! `kfn bench --brokers HOST:PORT`: records/s, CPU and memory of kfn against a raw
//! rdkafka passthrough and Kafka Streams on a real Apache Kafka, every contender a
//! process of its own, side by side in one run.
//!
//! The input is preloaded once (N PageEvents, 6 partitions, timestamps partly out of
//! order). Each round then starts every contender in turn, as a child process with its
//! own consumer groups and output topic, and times it from spawn until its groups have
//! committed everything: the input group's committed offsets equal the input's high
//! watermarks, and for a stage with a repartition topic also the downstream group's on
//! that topic (one less per partition when the topic is written in transactions: the
//! last offset is a commit marker, which a consumer need not commit past). Just before
//! the child is stopped, its CPU time (all threads) and peak RSS are read from `/proc`,
//! and the broker's CPU time over the run too. The table shows medians over rounds.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

mod kstreams;
mod passthrough;

pub use passthrough::run as passthrough;

/// Partitions of the input and of every output.
const PARTITIONS: i32 = 6;
/// Distinct page names (record keys).
const PAGES: usize = 100;
/// How long a contender may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(600);
/// How often the consumer groups' committed offsets are read.
const POLL: Duration = Duration::from_millis(50);

/// What `kfn bench --brokers` was asked for.
pub struct Options {
    pub brokers: String,
    pub records: usize,
    pub rounds: usize,
    pub broker_pid: Option<u32>,
    pub kafka_streams: bool,
    /// Contender ids to run (empty: all).
    pub only: Vec<String>,
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Passthrough,
    /// `kfn up` with one function binding of this function (`<name>.wasm` in
    /// `functions/`, or a test guest's in `runtime/tests/guests/`), on this many
    /// instances (`None`: `limits.instances`' default).
    KfnBinding(&'static str, Option<u32>),
    KfnSeed {
        exactly_once: bool,
    },
    KsMap,
    KsSeed {
        exactly_once: bool,
    },
}

struct Contender {
    /// For `--only`.
    id: &'static str,
    label: &'static str,
    kind: Kind,
    /// The Kafka Streams contender with the same topology.
    versus: Option<&'static str>,
}

const CONTENDERS: [Contender; 14] = [
    Contender {
        id: "passthrough",
        label: "passthrough (rdkafka consume → produce)",
        kind: Kind::Passthrough,
        versus: None,
    },
    Contender {
        id: "kfn-binding",
        label: "kfn binding (page-enricher.wasm)",
        kind: Kind::KfnBinding("page-enricher", None),
        versus: Some("ks-map"),
    },
    // What instances that share each batch add: the same binding on two.
    Contender {
        id: "kfn-binding-2",
        label: "kfn binding on two instances (limits.instances: 2)",
        kind: Kind::KfnBinding("page-enricher", Some(2)),
        versus: Some("ks-map"),
    },
    // The languages whose calls cost more than Kafka, per record and in batches: the
    // same echo (the test guests of `kfn bench --languages`).
    Contender {
        id: "kfn-js",
        label: "kfn binding, JavaScript echo (js-probe.wasm)",
        kind: Kind::KfnBinding("js-probe", None),
        versus: None,
    },
    Contender {
        id: "kfn-js-2",
        label: "kfn binding, JavaScript echo on two instances",
        kind: Kind::KfnBinding("js-probe", Some(2)),
        versus: None,
    },
    Contender {
        id: "kfn-js-batch",
        label: "kfn binding, JavaScript echo, batch world (js-batch-probe.wasm)",
        kind: Kind::KfnBinding("js-batch-probe", None),
        versus: None,
    },
    Contender {
        id: "kfn-py",
        label: "kfn binding, Python echo (py-probe.wasm)",
        kind: Kind::KfnBinding("py-probe", None),
        versus: None,
    },
    Contender {
        id: "kfn-py-2",
        label: "kfn binding, Python echo on two instances",
        kind: Kind::KfnBinding("py-probe", Some(2)),
        versus: None,
    },
    Contender {
        id: "kfn-py-batch",
        label: "kfn binding, Python echo, batch world (py-batch-probe.wasm)",
        kind: Kind::KfnBinding("py-batch-probe", None),
        versus: None,
    },
    Contender {
        id: "ks-map",
        label: "kafka streams mapValues (Jackson)",
        kind: Kind::KsMap,
        versus: None,
    },
    Contender {
        id: "kfn-seed-alo",
        label: "kfn seed at-least-once",
        kind: Kind::KfnSeed {
            exactly_once: false,
        },
        versus: Some("ks-seed-alo"),
    },
    Contender {
        id: "ks-seed-alo",
        label: "kafka streams seed at-least-once",
        kind: Kind::KsSeed {
            exactly_once: false,
        },
        versus: None,
    },
    Contender {
        id: "kfn-seed-eos",
        label: "kfn seed exactly-once",
        kind: Kind::KfnSeed { exactly_once: true },
        versus: Some("ks-seed-eos"),
    },
    Contender {
        id: "ks-seed-eos",
        label: "kafka streams seed exactly-once",
        kind: Kind::KsSeed { exactly_once: true },
        versus: None,
    },
];

/// One run of one contender.
#[derive(Clone)]
struct Sample {
    seconds: f64,
    cpu: f64,
    broker_cpu: Option<f64>,
    rss_mb: f64,
}

/// What every run needs to know.
struct Bench {
    brokers: String,
    records: usize,
    input: String,
    /// Names of this invocation's topics, groups and app ids start with this.
    prefix: String,
    tmp: PathBuf,
    broker_pid: Option<u32>,
    clock_ticks: f64,
    /// `functions/` holding page-enricher.wasm and page-filter.wasm.
    functions: PathBuf,
    /// The compile cache every kfn contender shares (warmed before the first run).
    kfn_cache: PathBuf,
    jar: Option<PathBuf>,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.records > 0, "--records must be at least 1");
    anyhow::ensure!(options.rounds > 0, "--rounds must be at least 1");
    let known: Vec<&str> = CONTENDERS.iter().map(|c| c.id).collect();
    for id in &options.only {
        anyhow::ensure!(
            known.contains(&id.as_str()),
            "--only {id}: no such contender (the contenders: {})",
            known.join(", ")
        );
    }
    let contenders: Vec<&Contender> = CONTENDERS
        .iter()
        .filter(|c| options.only.is_empty() || options.only.iter().any(|o| o == c.id))
        .filter(|c| options.kafka_streams || !matches!(c.kind, Kind::KsMap | Kind::KsSeed { .. }))
        .collect();
    anyhow::ensure!(!contenders.is_empty(), "no contender left to run");

    let functions = functions_dir()?;
    let wants_ks = contenders
        .iter()
        .any(|c| matches!(c.kind, Kind::KsMap | Kind::KsSeed { .. }));
    let jar = if wants_ks {
        Some(kstreams::jar()?)
    } else {
        None
    };
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let prefix = format!("kfn-bench-{unix}");
    let tmp = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&tmp)?;
    let kfn_cache = tmp.join("kfn-cache");
    warm_cache(&functions, &contenders, &kfn_cache)?;

    let (broker_pid, broker_note) = match options.broker_pid {
        Some(pid) => (Some(pid), format!("broker pid {pid}")),
        None => match find_broker(&options.brokers) {
            Some(pid) => (Some(pid), format!("broker pid {pid}, found by its port")),
            None => (None, "broker process not found: no broker CPU".to_string()),
        },
    };
    let bench = Bench {
        brokers: options.brokers.clone(),
        records: options.records,
        input: format!("{prefix}-in"),
        prefix,
        tmp,
        broker_pid,
        clock_ticks: clock_ticks(),
        functions,
        kfn_cache,
        jar,
    };
    eprintln!(
        "kfn bench: {} on {} ({broker_note}); logs and projects under {}",
        bench.prefix,
        bench.brokers,
        bench.tmp.display()
    );
    let admin = admin(&bench.brokers)?;
    create_topics(&admin, std::slice::from_ref(&bench.input))?;
    let started = Instant::now();
    preload(&bench)?;
    eprintln!(
        "kfn bench: preloaded {} records into {} ({PARTITIONS} partitions) in {:.1} s",
        bench.records,
        bench.input,
        started.elapsed().as_secs_f64()
    );

    warm_up(&bench, &admin);

    let mut results: BTreeMap<&str, Vec<Result<Sample, String>>> = BTreeMap::new();
    for round in 1..=options.rounds {
        for c in &contenders {
            eprintln!(
                "kfn bench: round {round}/{}: {} ...",
                options.rounds, c.label
            );
            let run = Run::new(&bench, c, round);
            let outcome = bench.measure(c, &run, &admin);
            match &outcome {
                Ok(s) => eprintln!(
                    "kfn bench: round {round}: {}: {:.2} s, {:.0} records/s, CPU {:.1} s, peak RSS {:.0} MB",
                    c.label,
                    s.seconds,
                    bench.records as f64 / s.seconds,
                    s.cpu,
                    s.rss_mb
                ),
                Err(e) => eprintln!("kfn bench: round {round}: {}: FAILED: {e}", c.label),
            }
            results.entry(c.id).or_default().push(outcome);
            cleanup(&admin, &bench.brokers, &run);
        }
    }
    let _ = delete_topics(&admin, std::slice::from_ref(&bench.input));

    let table = report(
        &bench,
        &options,
        &contenders,
        &results,
        broker_version(broker_pid),
    );
    println!("{table}");
    if let Some(path) = &options.output {
        std::fs::write(path, &table).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Reads the whole input once through the passthrough and once through kfn's seed
/// stage under exactly-once, uncounted, before round 1. On a freshly started broker
/// the first contenders otherwise pay for the broker warming up (JIT, page cache,
/// the transaction coordinator): the passthrough ran at 0.4 of its later speed in a
/// first round here, and a seed-only run climbed from 96k to 136k records/s over
/// three rounds after the passthrough alone had warmed the broker.
fn warm_up(bench: &Bench, admin: &Admin) {
    let warming = [Kind::Passthrough, Kind::KfnSeed { exactly_once: true }];
    for kind in warming {
        let c = CONTENDERS
            .iter()
            .find(|c| c.kind == kind)
            .expect("a warm-up contender is a contender");
        eprintln!(
            "kfn bench: warming the broker up: one uncounted {} ...",
            c.label
        );
        let run = Run::new(bench, c, 0);
        let outcome = bench.measure(c, &run, admin);
        cleanup(admin, &bench.brokers, &run);
        match outcome {
            Ok(s) => eprintln!(
                "kfn bench: warm-up: {:.2} s, {:.0} records/s",
                s.seconds,
                bench.records as f64 / s.seconds
            ),
            // The contenders still run (each failure is its own row); the first
            // rounds may then be slow.
            Err(e) => eprintln!(
                "kfn bench: warm-up FAILED (log: {}): {e}",
                run.log.display()
            ),
        }
    }
}

/// The names one run of one contender uses.
struct Run {
    /// The contender's application id (and its group, for the plain clients).
    app: String,
    out: String,
    dir: PathBuf,
    log: PathBuf,
}

impl Run {
    fn new(bench: &Bench, c: &Contender, round: usize) -> Run {
        let app = format!("{}-{}-r{round}", bench.prefix, c.id);
        let dir = bench.tmp.join(format!("{}-r{round}", c.id));
        Run {
            out: format!("{app}-out"),
            log: dir.join("log.txt"),
            app,
            dir,
        }
    }
}

/// A consumer group whose committed offsets on a topic say when a contender is done.
struct Watch {
    group: String,
    topic: String,
    /// Written in transactions: the last offset of a partition may be a commit marker.
    transactional: bool,
}

impl Bench {
    fn watches(&self, kind: Kind, run: &Run) -> Vec<Watch> {
        let w = |group: String, topic: &str, transactional| Watch {
            group,
            topic: topic.to_string(),
            transactional,
        };
        match kind {
            Kind::Passthrough | Kind::KsMap => vec![w(run.app.clone(), &self.input, false)],
            // kafka::KafkaSettings::group_id: `<app>.<binding>`.
            Kind::KfnBinding(function, _) => {
                vec![w(format!("{}.{function}", run.app), &self.input, false)]
            }
            // pipeline::build_stage: the repartition step reads the input as
            // `<app>.<store>.repartition` and writes `<app>.<store>.repartition`, which
            // the window step reads as `<app>.<store>`.
            Kind::KfnSeed { exactly_once } => vec![
                w(
                    format!("{}.page-count.repartition", run.app),
                    &self.input,
                    false,
                ),
                w(
                    format!("{}.page-count", run.app),
                    &crate::pipeline::repartition_topic(&run.app, "page-count"),
                    exactly_once,
                ),
            ],
            // Kafka Streams: one group (the application id) reads both; the repartition
            // topic is named by `Grouped.as("rekey")`.
            Kind::KsSeed { exactly_once } => vec![
                w(run.app.clone(), &self.input, false),
                w(
                    run.app.clone(),
                    &format!("{}-rekey-repartition", run.app),
                    exactly_once,
                ),
            ],
        }
    }

    fn spawn(&self, kind: Kind, run: &Run) -> anyhow::Result<Child> {
        std::fs::create_dir_all(&run.dir)?;
        let exe = std::env::current_exe()?;
        let mut cmd = match kind {
            Kind::Passthrough => {
                let mut cmd = Command::new(exe);
                cmd.args(["bench", "--contender", "passthrough", "--brokers"])
                    .arg(&self.brokers)
                    .args([
                        "--input",
                        &self.input,
                        "--to",
                        &run.out,
                        "--group",
                        &run.app,
                    ]);
                cmd
            }
            Kind::KfnBinding(..) | Kind::KfnSeed { .. } => {
                self.kfn_project(kind, run)?;
                let mut cmd = Command::new(exe);
                cmd.args(["up", "--no-build", "--listen", "127.0.0.1:0"])
                    .current_dir(&run.dir);
                cmd
            }
            Kind::KsMap | Kind::KsSeed { .. } => {
                let jar = self.jar.as_ref().context("the Kafka Streams jar")?;
                let (mode, guarantee) = match kind {
                    Kind::KsSeed { exactly_once: true } => ("count", "exactly_once_v2"),
                    Kind::KsSeed { .. } => ("count", "at_least_once"),
                    _ => ("map", "at_least_once"),
                };
                let mut cmd = Command::new("java");
                cmd.arg("-jar")
                    .arg(jar)
                    .args([
                        mode,
                        guarantee,
                        &self.brokers,
                        &run.app,
                        &self.input,
                        &run.out,
                    ])
                    .arg(run.dir.join("state"));
                cmd
            }
        };
        let log = File::create(&run.log)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))
    }

    /// A project folder for `kfn up`: kfn.yaml, functions/ with the one function it
    /// runs, and .kfn/cache pointing at the shared, warm compile cache.
    fn kfn_project(&self, kind: Kind, run: &Run) -> anyhow::Result<()> {
        let functions = run.dir.join("functions");
        std::fs::create_dir_all(&functions)?;
        std::fs::create_dir_all(run.dir.join(".kfn"))?;
        std::os::unix::fs::symlink(&self.kfn_cache, run.dir.join(".kfn/cache"))?;
        let head = format!(
            "kafka:\n  brokers: {}\n  application-id: {}\nfunctions:\n  dir: functions\n",
            self.brokers, run.app
        );
        let (function, body) = match kind {
            Kind::KfnBinding(function, instances) => (
                function,
                format!(
                    "bindings:\n  {function}: {{ function: {function}, in: {}, out: {}, config: {{ tag: demo }}{} }}\n",
                    self.input,
                    run.out,
                    instances.map_or(String::new(), |n| format!(", limits: {{ instances: {n} }}"))
                ),
            ),
            Kind::KfnSeed { exactly_once } => (
                "page-filter",
                format!(
                    "analytics:\n  page-count:\n    in: {}\n    function: page-filter\n    key: /name\n    \
                     window: {{ tumbling: 5s, grace: 0s }}\n    aggregate: count\n    out: {}\n    guarantee: {}\n",
                    self.input,
                    run.out,
                    if exactly_once {
                        "exactly-once"
                    } else {
                        "at-least-once"
                    }
                ),
            ),
            _ => unreachable!("not a kfn contender"),
        };
        std::fs::copy(
            wasm_of(&self.functions, function),
            functions.join(format!("{function}.wasm")),
        )?;
        std::fs::write(run.dir.join("kfn.yaml"), head + &body)?;
        Ok(())
    }

    fn measure(&self, c: &Contender, run: &Run, admin: &Admin) -> Result<Sample, String> {
        let fail = |what: String| format!("{what} (log: {})", run.log.display());
        create_topics(admin, std::slice::from_ref(&run.out)).map_err(|e| format!("{e:#}"))?;
        let watches = self.watches(c.kind, run);
        let mut lags = Lags::new(&self.brokers, &watches).map_err(|e| format!("{e:#}"))?;
        let broker_before = self
            .broker_pid
            .and_then(|p| cpu_seconds(p, self.clock_ticks));
        let started = Instant::now();
        let mut child = self.spawn(c.kind, run).map_err(|e| format!("{e:#}"))?;
        let pid = child.id();
        let mut shown = Instant::now();
        let outcome = loop {
            std::thread::sleep(POLL);
            if let Ok(Some(status)) = child.try_wait() {
                break Err(fail(format!(
                    "exited ({status}) after {:.1} s before catching up",
                    started.elapsed().as_secs_f64()
                )));
            }
            let lag = lags.lag();
            if lag == Ok(0) {
                let seconds = started.elapsed().as_secs_f64();
                let cpu = cpu_seconds(pid, self.clock_ticks).unwrap_or(f64::NAN);
                let rss_mb = peak_rss_mb(pid).unwrap_or(f64::NAN);
                let broker_cpu = self
                    .broker_pid
                    .and_then(|p| Some(cpu_seconds(p, self.clock_ticks)? - broker_before?));
                break Ok(Sample {
                    seconds,
                    cpu,
                    broker_cpu,
                    rss_mb,
                });
            }
            if started.elapsed() > TIMEOUT {
                break Err(fail(format!(
                    "not done after {} s (lag {})",
                    TIMEOUT.as_secs(),
                    lag.map_or_else(|e| format!("unknown: {e}"), |l| l.to_string())
                )));
            }
            if shown.elapsed() >= Duration::from_secs(5) {
                shown = Instant::now();
                eprintln!(
                    "kfn bench:   {:.0} s, lag {}",
                    started.elapsed().as_secs_f64(),
                    lag.map_or_else(|e| format!("unknown: {e}"), |l| l.to_string())
                );
            }
        };
        stop(&mut child);
        let sample = outcome?;
        if matches!(c.kind, Kind::KfnBinding(..)) {
            let written =
                high_watermarks(&lags.metadata, &run.out).map_err(|e| format!("{e:#}"))?;
            if written < self.records as i64 {
                return Err(fail(format!(
                    "{} holds {written} records, expected {}",
                    run.out, self.records
                )));
            }
        }
        Ok(sample)
    }
}

/// Reads the lag of a contender's consumer groups.
struct Lags {
    /// One consumer per group (never subscribed: it only reads committed offsets).
    groups: Vec<(BaseConsumer, Watch)>,
    metadata: BaseConsumer,
    brokers: String,
}

impl Lags {
    fn new(brokers: &str, watches: &[Watch]) -> anyhow::Result<Lags> {
        let consumer = |group: &str| -> anyhow::Result<BaseConsumer> {
            Ok(ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .create()?)
        };
        let mut groups = Vec::new();
        for w in watches {
            groups.push((
                consumer(&w.group)?,
                Watch {
                    group: w.group.clone(),
                    topic: w.topic.clone(),
                    transactional: w.transactional,
                },
            ));
        }
        Ok(Lags {
            groups,
            metadata: consumer("kfn-bench-metadata")?,
            brokers: brokers.to_string(),
        })
    }

    /// Records not yet committed, summed over every watched group and partition, or
    /// why that is not known yet (e.g. a topic the contender creates is not there).
    fn lag(&mut self) -> Result<i64, String> {
        let timeout = Duration::from_secs(5);
        let mut total = 0;
        for (consumer, w) in &self.groups {
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                tpl.add_partition(&w.topic, p);
            }
            let committed = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| format!("committed offsets of {} on {}: {e}", w.group, w.topic))?;
            for p in 0..PARTITIONS {
                let (_, high) = match self.metadata.fetch_watermarks(&w.topic, p, timeout) {
                    Ok(w) => w,
                    Err(e) => {
                        // librdkafka remembers a topic it found missing: a new client
                        // sees the topic once the contender created it.
                        if let Ok(fresh) = ClientConfig::new()
                            .set("bootstrap.servers", &self.brokers)
                            .create()
                        {
                            self.metadata = fresh;
                        }
                        return Err(format!("high watermark of {}/{p}: {e}", w.topic));
                    }
                };
                let at = match committed.find_partition(&w.topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(n)) => n,
                    _ => 0,
                };
                let slack = i64::from(w.transactional && high > 0);
                total += (high - slack - at).max(0);
            }
        }
        Ok(total)
    }
}

fn high_watermarks(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<i64> {
    let mut sum = 0;
    for p in 0..PARTITIONS {
        sum += consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))?
            .1;
    }
    Ok(sum)
}

/// SIGTERM, up to 15 s to exit, then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

type Admin = AdminClient<DefaultClientContext>;

fn admin(brokers: &str) -> anyhow::Result<Admin> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .with_context(|| format!("connecting to {brokers}"))
}

fn create_topics(admin: &Admin, topics: &[String]) -> anyhow::Result<()> {
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(-1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in futures::executor::block_on(admin.create_topics(&new, &opts))? {
        if let Err((topic, e)) = r {
            anyhow::ensure!(
                e == RDKafkaErrorCode::TopicAlreadyExists,
                "creating topic {topic}: {e}"
            );
        }
    }
    Ok(())
}

fn delete_topics(admin: &Admin, topics: &[String]) -> anyhow::Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    futures::executor::block_on(admin.delete_topics(&names, &opts))?;
    Ok(())
}

/// Deletes a run's topics (its output and the internal topics named after its app id)
/// and consumer groups, so a long benchmark does not fill the broker's disk.
fn cleanup(admin: &Admin, brokers: &str, run: &Run) {
    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create::<BaseConsumer>()
    else {
        return;
    };
    let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(10)) else {
        return;
    };
    let mine: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|t| {
            t.strip_prefix(&run.app)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-']))
        })
        .collect();
    if let Err(e) = delete_topics(admin, &mine) {
        eprintln!("kfn bench: deleting {}: {e:#}", mine.join(", "));
    }
    let groups = [
        run.app.clone(),
        format!("{}.page-enricher", run.app),
        format!("{}.page-count", run.app),
        format!("{}.page-count.repartition", run.app),
    ];
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let _ = futures::executor::block_on(admin.delete_groups(&names, &opts));
}

/// Writes the input: PageEvents keyed by page name, 1 ms of event time apart and
/// ending about now, one in ten moved up to 200 ms back (out of order), durations
/// 0..9000 ms (the seed's filter keeps those above 100: about 99%).
/// Queues `record`, waiting out a full local queue.
fn send_waiting<C, K, P>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
) -> Result<(), KafkaError>
where
    C: rdkafka::producer::ProducerContext + 'static,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

fn preload(bench: &Bench) -> anyhow::Result<()> {
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &bench.brokers)
        .set("linger.ms", "20")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let base = now - bench.records as i64 - 60_000;
    let mut rng = rand::rng();
    let dates = ["2026-11-25T06:00:00.000Z", "2026-11-25T06:00:01.000Z"];
    for i in 0..bench.records {
        let page = format!("P{}", rng.random_range(0..PAGES));
        let value = format!(
            r#"{{"name":"{page}","user":"U{}","date":"{}","duration":{}}}"#,
            rng.random_range(1..=1000),
            dates[i % 2],
            rng.random_range(0..9000)
        );
        let jitter = if rng.random_ratio(1, 10) {
            rng.random_range(0..200)
        } else {
            0
        };
        let record = BaseRecord::to(&bench.input)
            .key(&page)
            .payload(&value)
            .timestamp(base + i as i64 - jitter);
        send_waiting(&producer, record).context("preloading the input")?;
    }
    producer.flush(Duration::from_secs(120))?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bench.brokers)
        .create()?;
    let written = high_watermarks(&consumer, &bench.input)?;
    anyhow::ensure!(
        written == bench.records as i64,
        "{} holds {written} of {} records after the preload",
        bench.input,
        bench.records
    );
    Ok(())
}

/// `functions/` with page-enricher.wasm and page-filter.wasm, built if missing.
fn functions_dir() -> anyhow::Result<PathBuf> {
    let mut dir = PathBuf::from("functions");
    if !dir.join("page-enricher").exists() {
        dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    }
    let wanted = ["page-enricher", "page-filter"];
    if wanted
        .iter()
        .any(|f| !dir.join(format!("{f}.wasm")).exists())
    {
        let needed = wanted.iter().map(|s| s.to_string()).collect();
        crate::builder::build_dir(&dir, false, Some(&needed))?;
    }
    for f in wanted {
        let wasm = dir.join(format!("{f}.wasm"));
        anyhow::ensure!(
            wasm.exists(),
            "{} is missing: run `cargo kfn build` from the repository root",
            wasm.display()
        );
    }
    Ok(std::fs::canonicalize(dir)?)
}

/// Compiles both functions into `cache` once, so no kfn contender's time includes a
/// cold compile (kfn up reuses the cache, as it would on a second start).
fn warm_cache(functions: &Path, contenders: &[&Contender], cache: &Path) -> anyhow::Result<()> {
    let engine = crate::wasm::WasmEngine::new(Some(cache.to_path_buf()))?;
    let registry = crate::wasm::Registry::new(engine, crate::observe::Events::new());
    let bound = contenders.iter().filter_map(|c| match c.kind {
        Kind::KfnBinding(f, _) => Some(f),
        _ => None,
    });
    let wanted: Vec<&str> = bound.chain(["page-filter"]).collect();
    // A test guest (the JavaScript and Python echoes) not built yet is built here,
    // as `cargo kfn build --dir runtime/tests/guests` would.
    let missing: std::collections::BTreeSet<String> = wanted
        .iter()
        .filter(|f| !wasm_of(functions, f).exists())
        .map(|f| f.to_string())
        .collect();
    if !missing.is_empty() {
        crate::builder::build_dir(&test_guests(), false, Some(&missing))?;
    }
    for f in wanted {
        let wasm = wasm_of(functions, f);
        registry.load_blocking(f, &wasm).with_context(|| {
            format!(
                "compiling {} (the test guests are built by `cargo kfn build --dir runtime/tests/guests`)",
                wasm.display()
            )
        })?;
    }
    Ok(())
}

/// The test guests' sources (each folder builds `<name>.wasm` beside it).
fn test_guests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests")
}

/// Where `function`'s `.wasm` is: in `functions/`, else among the test guests.
fn wasm_of(functions: &Path, function: &str) -> PathBuf {
    let wasm = functions.join(format!("{function}.wasm"));
    if wasm.exists() {
        return wasm;
    }
    test_guests().join(format!("{function}.wasm"))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process (all its threads), in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// VmHWM: the process's peak resident memory, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1000.0)
}

/// The local Kafka broker serving `brokers`: a java process running `kafka.Kafka`,
/// the only one, or the one whose properties file lists the port.
fn find_broker(brokers: &str) -> Option<u32> {
    let port = brokers.split(',').next()?.rsplit(':').next()?.to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(i) = args.iter().position(|a| a == "kafka.Kafka") {
            found.push((pid, args.get(i + 1).cloned()));
        }
    }
    if let [(pid, _)] = found.as_slice() {
        return Some(*pid);
    }
    found.into_iter().find_map(|(pid, props)| {
        let text = std::fs::read_to_string(props?).ok()?;
        text.lines()
            .filter_map(|l| l.strip_prefix("listeners="))
            .flat_map(|l| l.split(','))
            .any(|l| l.trim().rsplit(':').next() == Some(port.as_str()))
            .then_some(pid)
    })
}

/// The broker's Kafka version, from the jars on its command line.
fn broker_version(pid: Option<u32>) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid?)).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    for marker in ["kafka_2.13-", "kafka-clients-", "kafka-"] {
        for (i, _) in cmdline.match_indices(marker) {
            let rest = &cmdline[i + marker.len()..];
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let version = version.trim_end_matches('.');
            if version.matches('.').count() >= 1
                && version.starts_with(|c: char| c.is_ascii_digit())
            {
                return Some(version.to_string());
            }
        }
    }
    None
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The medians of a contender's successful runs, or why it has none.
fn medians(runs: &[Result<Sample, String>]) -> Result<Sample, String> {
    let ok: Vec<&Sample> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
    if ok.is_empty() {
        return Err(runs
            .iter()
            .find_map(|r| r.as_ref().err().cloned())
            .unwrap_or_default());
    }
    let broker: Vec<f64> = ok.iter().filter_map(|s| s.broker_cpu).collect();
    Ok(Sample {
        seconds: median(ok.iter().map(|s| s.seconds).collect()),
        cpu: median(ok.iter().map(|s| s.cpu).collect()),
        broker_cpu: (!broker.is_empty()).then(|| median(broker)),
        rss_mb: median(ok.iter().map(|s| s.rss_mb).collect()),
    })
}

fn report(
    bench: &Bench,
    options: &Options,
    contenders: &[&Contender],
    results: &BTreeMap<&str, Vec<Result<Sample, String>>>,
    version: Option<String>,
) -> String {
    let rate = |s: &Sample| bench.records as f64 / s.seconds;
    let med: BTreeMap<&str, Result<Sample, String>> = results
        .iter()
        .map(|(id, runs)| (*id, medians(runs)))
        .collect();
    let ok_rate = |id: &str| med.get(id).and_then(|r| r.as_ref().ok()).map(rate);
    let passthrough = ok_rate("passthrough");
    let ratio = |a: f64, b: Option<f64>| b.map_or("–".to_string(), |b| format!("{:.2}", a / b));
    let mut t = String::from(
        "| contender | records/s | seconds | CPU s | broker CPU s | peak RSS MB | × passthrough | × Kafka Streams |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in contenders {
        let failed_runs = results[c.id].iter().filter(|r| r.is_err()).count();
        match &med[c.id] {
            Ok(s) => {
                let r = rate(s);
                let label = if failed_runs > 0 {
                    format!(
                        "{} ({failed_runs} of {} runs failed)",
                        c.label, options.rounds
                    )
                } else {
                    c.label.to_string()
                };
                t += &format!(
                    "| {label} | {r:.0} | {:.2} | {:.1} | {} | {:.0} | {} | {} |\n",
                    s.seconds,
                    s.cpu,
                    s.broker_cpu.map_or("–".into(), |b| format!("{b:.1}")),
                    s.rss_mb,
                    ratio(r, passthrough),
                    c.versus.map_or("".into(), |v| ratio(r, ok_rate(v))),
                );
            }
            Err(e) => {
                t += &format!(
                    "| {} | failed: {} | | | | | | |\n",
                    c.label,
                    e.replace('|', "\\|").replace('\n', " ")
                );
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    for (language, one, batch) in [
        ("JavaScript", "kfn-js", "kfn-js-batch"),
        ("Python", "kfn-py", "kfn-py-batch"),
    ] {
        if let (Some(one), Some(batch)) = (ok_rate(one), ok_rate(batch)) {
            t += &format!(
                "\n{language}, the batch world × one call per record: {:.2}.\n",
                batch / one
            );
        }
    }
    if let (Some(eos), Some(alo)) = (ok_rate("kfn-seed-eos"), ok_rate("kfn-seed-alo")) {
        t += &format!(
            "\nkfn seed exactly-once × kfn seed at-least-once: {:.2}.\n",
            eos / alo
        );
    }
    t += &format!(
        "\n{} records (~80 B JSON PageEvents, {PAGES} page keys, one in ten up to 200 ms out \
         of order), {PARTITIONS} partitions, on {} (Apache Kafka {}); {cores} cores shared by \
         the broker, the contender and the bench; median of {} round(s) after an uncounted \
         passthrough and kfn seed (exactly-once) to warm the broker up, each contender a \
         process of its own, timed from its start until its consumer groups committed \
         everything. CPU s: the contender's user + system time; peak RSS: its VmHWM.\n",
        bench.records,
        bench.brokers,
        version.as_deref().unwrap_or("version unknown"),
        options.rounds,
    );
    t
}
