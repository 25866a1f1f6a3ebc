//! The `kfn` command line.
//!
//! An installed `kfn` carries everything it needs (the contract, the templates, the
//! dashboard: see `kfn::assets`) and works in any project folder; in this repository
//! `cargo kfn ...` runs the same commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kfn::app::{App, Options};
use kfn::config::Config;

#[derive(Parser)]
#[command(
    name = "kfn",
    version,
    about = "Bind Kafka topics to WebAssembly functions, with windowed analytics, hot reload and a live dashboard"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How the log (stderr) is written: `text` for people, `json` (one object per
    /// line, fields and span included) for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a project: a commented kfn.yaml, functions/, the wit/ contract,
    /// kfn.schema.json (editor completion) and a .gitignore.
    Init {
        /// The project folder (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only (re)write the project's wit/kfn.wit with the contract this kfn runs.
        #[arg(long)]
        wit: bool,
    },
    /// Build stale functions, then run the app in kfn.yaml until Ctrl-C / SIGTERM.
    Up {
        /// The app to run.
        #[arg(short, long, default_value = "kfn.yaml")]
        config: PathBuf,
        /// Serve HTTP here instead of `http.listen` (port 0 picks a free one).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Do not build functions first.
        #[arg(long)]
        no_build: bool,
        /// This instance's name among the instances running the same application
        /// (default: its advertised address); keep it the same across restarts.
        #[arg(long)]
        instance: Option<String>,
        /// host:port where the other instances reach this one's HTTP API (default:
        /// the listen address).
        #[arg(long)]
        advertise: Option<String>,
    },
    /// Check a config file and print every error with its line and column.
    Validate {
        #[arg(default_value = "kfn.yaml")]
        file: PathBuf,
    },
    /// Print the JSON Schema of kfn.yaml (for editor completion).
    Schema,
    /// Print the reference of every kfn.yaml key (Markdown).
    Reference,
    /// Build every function folder whose sources changed since its .wasm was built.
    Build {
        /// The functions directory (default: `functions.dir` of kfn.yaml, else ./functions).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rebuild even if up to date.
        #[arg(long)]
        force: bool,
    },
    /// Create a function folder from a template, ready for `kfn build`.
    New {
        /// function, batch-function, consumer, supplier or aggregator.
        #[arg(value_parser = kfn::wasm::World::names())]
        world: String,
        /// The function's name (its folder and .wasm).
        name: String,
        /// rust, js, python, c or go.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// The functions directory (default: `functions.dir` of kfn.yaml, else ./functions).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Measure records/s through a Rust function binding against a plain rdkafka
    /// passthrough, on the embedded broker; with --brokers, kfn against a passthrough
    /// and Kafka Streams on a real Kafka, each contender a process of its own.
    Bench {
        /// Records per run (default 100,000 on the embedded broker, which keeps ~5 MiB
        /// per partition, about 150,000 of these records; 1,000,000 with --brokers).
        #[arg(long)]
        records: Option<usize>,
        /// A real Kafka (HOST:PORT): benchmark kfn there against a passthrough and
        /// Kafka Streams, each a separate process.
        #[arg(long)]
        brokers: Option<String>,
        /// With --brokers: rounds (the table shows medians).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// With --brokers: the broker's process id, for its CPU time (default: a
        /// local `kafka.Kafka` java process listening on the port, if there is one).
        #[arg(long)]
        broker_pid: Option<u32>,
        /// With --brokers: leave out the Kafka Streams contenders (no Java needed).
        #[arg(long)]
        no_kafka_streams: bool,
        /// With --brokers: run only these contenders (passthrough, kfn-binding,
        /// kfn-js, kfn-js-batch, kfn-py, kfn-py-batch, ks-map, kfn-seed-alo,
        /// ks-seed-alo, kfn-seed-eos, ks-seed-eos).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Internal: run one contender of the real-broker benchmark (passthrough).
        #[arg(long, hide = true)]
        contender: Option<String>,
        /// Internal, with --contender: the topic to read.
        #[arg(long, hide = true)]
        input: Option<String>,
        /// Internal, with --contender: the topic to write.
        #[arg(long, hide = true)]
        to: Option<String>,
        /// Internal, with --contender: the consumer group.
        #[arg(long, hide = true)]
        group: Option<String>,
        /// Also measure the same function in every language (size, compile cold and
        /// warm, first call, per call, records/s through a binding).
        #[arg(long)]
        languages: bool,
        /// Write the results table (markdown) here too.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Internal: measure one window kind's memory in this process and print it.
        #[arg(long, hide = true)]
        memory_probe: Option<String>,
    },
}

/// See `mimalloc` in Cargo.toml: glibc's malloc was a quarter of the data path's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's defaults keep memory the process no longer uses: freed pages are
/// returned after a second, and arenas are committed eagerly. On a real broker that
/// raised peak RSS by 20-48 % (a binding 110 -> 129 MB, the seed under exactly-once
/// 168 -> 248 MB); returning pages at once and committing arenas on demand brought it
/// back near glibc's (117 and 177 MB) at no measurable cost in records/s. A user's
/// `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ARENA_EAGER_COMMIT` wins over these.
fn tune_allocator() {
    // Positions in mimalloc's `mi_option_e` (mimalloc.h, v3), which libmimalloc-sys
    // does not all export; mimalloc keeps them stable (retired options stay as
    // placeholders).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    for (option, env, value) in [
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
        (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: sets one of mimalloc's global options; any value is valid.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Validate { file } => return validate(&file),
        Command::Init { dir, wit } => init(&dir, wit),
        Command::Schema => {
            print!("{}", kfn::config::json_schema());
            Ok(())
        }
        Command::Reference => {
            print!("{}", kfn::config::reference());
            Ok(())
        }
        Command::Build { dir, force } => build(dir, force),
        Command::New {
            world,
            name,
            lang,
            dir,
        } => new(&world, &name, &lang, dir),
        Command::Up {
            config,
            listen,
            no_build,
            instance,
            advertise,
        } => runtime().and_then(|rt| {
            rt.block_on(up(
                config,
                Options {
                    listen,
                    watch: true,
                    config_path: None,
                    cache_dir: None,
                    instance,
                    advertise,
                    token: std::env::var("KFN_HTTP_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty()),
                },
                no_build,
            ))
        }),
        Command::Bench {
            memory_probe: Some(kind),
            ..
        } => kfn::bench::memory_probe(&kind),
        Command::Bench {
            contender: Some(contender),
            brokers,
            input,
            to,
            group,
            ..
        } => bench_contender(&contender, brokers, input, to, group),
        Command::Bench {
            brokers: Some(brokers),
            records,
            rounds,
            broker_pid,
            no_kafka_streams,
            only,
            output,
            ..
        } => kfn::bench::real::run(kfn::bench::real::Options {
            brokers,
            records: records.unwrap_or(1_000_000),
            rounds,
            broker_pid,
            kafka_streams: !no_kafka_streams,
            only,
            output,
        }),
        Command::Bench {
            records,
            languages,
            output,
            memory_probe: None,
            ..
        } => runtime().and_then(|rt| {
            rt.block_on(kfn::bench::run(
                records.unwrap_or(100_000),
                languages,
                output,
            ))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `kfn bench --contender NAME ...`: one contender process of `kfn bench --brokers`.
fn bench_contender(
    contender: &str,
    brokers: Option<String>,
    input: Option<String>,
    to: Option<String>,
    group: Option<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        contender == "passthrough",
        "--contender {contender}: only passthrough"
    );
    let need =
        |v: Option<String>, flag: &str| v.with_context(|| format!("--contender needs {flag}"));
    kfn::bench::real::passthrough(
        &need(brokers, "--brokers")?,
        &need(input, "--input")?,
        &need(to, "--to")?,
        &need(group, "--group")?,
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KFN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn,librdkafka=warn"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Every event's fields as JSON keys (`binding`, `topic`, `partition`, ...).
        LogFormat::Json => log.json().with_current_span(false).init(),
        // Colours for a terminal only: a log file gets plain text.
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// How to spell a kfn command in a hint: `cargo kfn` when run through cargo (in
/// kfn's repository), else `kfn`.
fn kfn_command() -> &'static str {
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("kfn") {
        "cargo kfn"
    } else {
        "kfn"
    }
}

/// The Kafka settings `kfn up` would use, for checking what librdkafka refuses.
fn settings_of(config: &Config) -> kfn::kafka::KafkaSettings {
    let bootstrap = match &config.kafka.brokers {
        kfn::config::Brokers::Embedded => "127.0.0.1:9092".to_string(),
        kfn::config::Brokers::Bootstrap(servers) => servers.clone(),
    };
    kfn::kafka::KafkaSettings {
        bootstrap,
        embedded: matches!(config.kafka.brokers, kfn::config::Brokers::Embedded),
        application_id: config.kafka.application_id.clone(),
        properties: config.kafka.properties.clone(),
        instance: "validate".into(),
        advertise: None,
        transactions: config.kafka.transactions,
    }
}

/// librdkafka's objections to the clients `config` makes, as one message.
fn refused(file: &Path, config: &Config) -> Option<String> {
    let refusals = settings_of(config).refusals();
    (!refusals.is_empty()).then(|| {
        refusals
            .iter()
            .map(|r| {
                format!(
                    "{}: kafka.properties: librdkafka refuses {r}",
                    file.display()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn validate(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            if let Some(refused) = refused(file, &config) {
                eprintln!("{refused}");
                return ExitCode::FAILURE;
            }
            println!(
                "{}: ok ({} bindings, {} analytics stages)",
                file.display(),
                config.bindings.len(),
                config.analytics.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// The functions directory: `--dir`, else kfn.yaml's `functions.dir`, else ./functions.
fn functions_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| match Config::load(Path::new("kfn.yaml")) {
        Ok(c) => c.functions.dir,
        Err(_) => PathBuf::from("functions"),
    })
}

fn init(dir: &Path, wit_only: bool) -> anyhow::Result<()> {
    if wit_only {
        let contract = kfn::builder::Contract::write(dir).map_err(anyhow::Error::msg)?;
        println!(
            "wrote {} ({})",
            contract.file().display(),
            kfn::assets::WIT_PACKAGE
        );
        return Ok(());
    }
    kfn::scaffold::init(dir)?;
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", dir.display())
    };
    println!("created a kfn project in {}", dir.display());
    println!(
        "next: {cd}kfn new function NAME --lang rust|js|python|c|go, bind it in kfn.yaml, then `kfn up` (dashboard on http://127.0.0.1:8080)"
    );
    Ok(())
}

fn new(world: &str, name: &str, lang: &str, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = functions_dir(dir);
    let folder = kfn::scaffold::new_function(&dir, world, name, lang)?;
    let kfn = kfn_command();
    let example = kfn::wasm::World::named(world)
        .map(|w| w.info().example.replace("NAME", name))
        .unwrap_or_default();
    println!("created {} ({lang} {world})", folder.display());
    println!(
        "next: `{kfn} build`, then use it in kfn.yaml (e.g. `{example}`); a running `{kfn} up` loads it live"
    );
    Ok(())
}

fn build(dir: Option<PathBuf>, force: bool) -> anyhow::Result<()> {
    let dir = functions_dir(dir);
    let results = kfn::builder::build_dir(&dir, force, None)?;
    let failed: Vec<_> = results
        .iter()
        .filter_map(|(name, b)| {
            matches!(b, kfn::builder::Built::Failed { .. }).then_some(name.as_str())
        })
        .collect();
    anyhow::ensure!(failed.is_empty(), "failed to build: {}", failed.join(", "));
    Ok(())
}

async fn up(config_path: PathBuf, options: Options, no_build: bool) -> anyhow::Result<()> {
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(errors) => anyhow::bail!(
            "{} is invalid; nothing was started:\n{errors}",
            config_path.display()
        ),
    };
    if let Some(refused) = refused(&config_path, &config) {
        anyhow::bail!("{refused}\nnothing was started");
    }
    let mut failed = Vec::new();
    if !no_build {
        // Only what this app binds: `kfn build` builds everything.
        let dir = config.functions.dir.clone();
        let needed = config.referenced_functions();
        let results = tokio::task::spawn_blocking(move || {
            kfn::builder::build_dir(&dir, false, Some(&needed))
        })
        .await??;
        for (name, b) in results {
            if let kfn::builder::Built::Failed { error } = b {
                // Keep going: the function shows the error, its bindings pause (or
                // run the version built before).
                eprintln!("kfn: function {name} did not build: {error}");
                failed.push((name, error));
            }
        }
    }
    let options = Options {
        config_path: Some(config_path.clone()),
        ..options
    };
    // This process ends with the app: the embedded broker stays up until it exits.
    kfn::kafka::EmbeddedBroker::outlive_clients();
    let app = App::start(config, options).await?;
    for (name, error) in failed {
        app.registry
            .report_error(&name, format!("build failed: {error}"));
    }
    println!(
        "kfn: Kafka bootstrap: {}   (try: kcat -b {} -L)",
        app.bootstrap, app.bootstrap
    );
    println!("kfn: dashboard: http://{}", app.http_addr);
    println!("kfn: running {}; Ctrl-C to stop", config_path.display());

    wait_for_signal().await;
    eprintln!("kfn: shutting down: draining in-flight records and committing offsets");
    app.shutdown().await;
    eprintln!("kfn: stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::mem::drop(ctrl_c.await),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
