//! From the YAML tree to a [`Config`]: deserialize each section and each entry on its
//! own, check the rules that span fields and entries, and collect every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

mod binding;
mod kafka;
mod stage;

use crate::config::Guarantee;
use crate::config::catalog::Catalog;
use crate::config::node::{Node, NodeKind, Pos};
use crate::config::node_de::{DeError, Located, from_node, path_segment, unknown};
use crate::config::raw::{RawFunctions, RawHttp, RawLimits, SECTIONS};
use crate::config::{
    Config, FunctionsConfig, HttpAuth, HttpConfig, HttpToken, Limits, defaults, names, units,
};

/// What the checks of one entry need from the rest of the file.
struct Context {
    /// `functions.limits`, which an entry's `limits` override.
    limits: Limits,
    /// Which functions exist.
    functions: Functions,
    /// SSE routes already served, with their store and position.
    routes: BTreeMap<String, (String, Pos)>,
    /// `kafka.application-id` (part of default topic names).
    application_id: String,
    /// The largest record the producer sends (`message.max.bytes`): what one
    /// changelog record, and so one aggregator state, must fit in.
    max_message: u64,
}

/// One problem, before it is given its file name.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where.
    pub pos: Pos,
    /// Dotted path, empty for the whole file.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Collects problems; every check reports here and carries on.
#[derive(Default)]
struct Report(Vec<Problem>);

impl Report {
    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.0.push(Problem {
            pos,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Records a serde failure of the subtree at `path`.
    fn de(&mut self, path: &str, err: DeError) {
        let mut full = path.to_owned();
        for segment in &err.path {
            if !segment.starts_with('[') && !full.is_empty() {
                full.push('.');
            }
            full.push_str(segment);
        }
        self.error(err.pos.unwrap_or(Pos::START), &full, err.message);
    }

    /// Deserializes one subtree, recording a failure.
    fn read<'a, T: Deserialize<'a>>(&mut self, path: &str, node: &'a Node) -> Option<T> {
        from_node(node).map_err(|err| self.de(path, err)).ok()
    }

    /// Runs a check on a located value, recording a failure.
    fn check<T, U>(
        &mut self,
        path: &str,
        value: &Located<T>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        check(&value.value)
            .map_err(|message| self.error(value.pos, path, message))
            .ok()
    }
}

/// Builds the configuration from the parsed document, or every problem in it.
pub fn build(root: &Node, base_dir: &Path) -> Result<Config, Vec<Problem>> {
    let mut report = Report::default();
    let config = build_config(root, base_dir, &mut report);
    match config {
        Some(config) if report.0.is_empty() => Ok(config),
        _ => {
            let mut problems = report.0;
            // File order; problems found at the same place keep the order they were found.
            problems.sort_by_key(|p| p.pos);
            Err(problems)
        }
    }
}

/// A top-level section and the position of its key.
struct Section<'a> {
    key: Pos,
    node: &'a Node,
}

fn build_config(root: &Node, base_dir: &Path, report: &mut Report) -> Option<Config> {
    let entries = match &root.kind {
        NodeKind::Map(entries) => entries,
        NodeKind::Null => {
            report.error(
                root.pos,
                "",
                "the file is empty: a kfn.yaml needs at least `kafka: { brokers: embedded }`",
            );
            return None;
        }
        _ => {
            report.error(
                root.pos,
                "",
                format!(
                    "expected a mapping of sections ({}), found {}",
                    SECTIONS.join(", "),
                    root.describe()
                ),
            );
            return None;
        }
    };

    let mut sections: BTreeMap<&str, Section<'_>> = BTreeMap::new();
    for (key, node) in entries {
        match key
            .scalar_text()
            .and_then(|k| SECTIONS.iter().find(|s| **s == k))
        {
            Some(name) => {
                sections.insert(name, Section { key: key.pos, node });
            }
            None => report.error(
                key.pos,
                &path_segment(key),
                unknown("top-level key", key.scalar_text().unwrap_or("?"), SECTIONS),
            ),
        }
    }

    let kafka = match sections.get("kafka") {
        Some(section) => kafka::kafka(section, base_dir, report),
        None => {
            report.error(
                root.pos,
                "kafka",
                "missing section 'kafka': add e.g. `kafka: { brokers: embedded }`",
            );
            None
        }
    };
    let (functions, catalog) = functions(sections.get("functions"), base_dir, report);
    let mut context = Context {
        limits: functions.limits.clone(),
        functions: catalog,
        routes: BTreeMap::new(),
        application_id: kafka.as_ref().map_or_else(
            || defaults::APPLICATION_ID.to_owned(),
            |k| k.application_id.clone(),
        ),
        max_message: kafka
            .as_ref()
            .and_then(|k| k.properties.get("message.max.bytes"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(defaults::MESSAGE_MAX_BYTES),
    };
    let bindings = entries_of(
        sections.get("bindings"),
        "bindings",
        "binding",
        report,
        |name, key, node, report| binding::binding(name, key, node, &mut context, report),
    );
    let analytics = entries_of(
        sections.get("analytics"),
        "analytics",
        "store",
        report,
        |name, key, node, report| stage::stage(name, key, node, &mut context, report),
    );
    let http = http(sections.get("http"), report);

    Some(Config {
        kafka: kafka?,
        functions,
        bindings,
        analytics,
        http: http?,
        base_dir: base_dir.to_owned(),
    })
}

/// The functions folder, or why it cannot be used: a missing folder is only an error
/// once something refers to a function in it, and then it is reported once (not once per
/// reference).
type Functions = Result<Catalog, Option<Problem>>;

fn functions(
    section: Option<&Section<'_>>,
    base_dir: &Path,
    report: &mut Report,
) -> (FunctionsConfig, Functions) {
    let raw = section.and_then(|s| report.read::<RawFunctions>("functions", s.node));
    let defaults = Limits {
        memory_bytes: defaults::MEMORY_BYTES,
        cpu_time: defaults::CPU_TIME,
        attempts: defaults::ATTEMPTS,
        retry_backoff: defaults::RETRY_BACKOFF,
        state_bytes: defaults::STATE_BYTES,
        instances: defaults::instances(),
    };
    let limits = match raw.as_ref().and_then(|r| r.limits.as_ref()) {
        Some(raw) => merge_limits("functions.limits", raw, &defaults, report),
        None => defaults,
    };
    let dir = raw.and_then(|r| r.dir);
    let (shown, pos) = match &dir {
        Some(dir) => (dir.value.as_str(), dir.pos),
        None => (
            defaults::FUNCTIONS_DIR,
            section.map_or(Pos::START, |s| s.key),
        ),
    };
    let resolved = base_dir.join(shown);
    let catalog = Catalog::open(shown, &resolved).map_err(|message| {
        Some(Problem {
            pos,
            path: "functions.dir".to_owned(),
            message,
        })
    });
    (
        FunctionsConfig {
            dir: resolved,
            limits,
        },
        catalog,
    )
}

fn merge_limits(path: &str, raw: &RawLimits, base: &Limits, report: &mut Report) -> Limits {
    let memory_bytes = raw
        .memory
        .as_ref()
        .and_then(|m| report.check(&format!("{path}.memory"), m, |m| units::parse_size(m)));
    let cpu_time = raw.cpu_time.as_ref().and_then(|t| {
        report.check(&format!("{path}.cpu-time"), t, |t| {
            units::positive_duration(t)
        })
    });
    let attempts = raw.attempts.as_ref().and_then(|a| {
        report.check(&format!("{path}.attempts"), a, |a| match a.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(format!(
                "invalid attempts '{a}': expected a whole number from 1 (no retry) to 100"
            )),
        })
    });
    let retry_backoff = raw.retry_backoff.as_ref().and_then(|t| {
        report.check(&format!("{path}.retry-backoff"), t, |t| {
            units::parse_duration(t)
        })
    });
    let state_bytes = raw
        .state
        .as_ref()
        .and_then(|s| report.check(&format!("{path}.state"), s, |s| units::parse_size(s)));
    let instances = raw.instances.as_ref().and_then(|i| {
        report.check(&format!("{path}.instances"), i, |i| match i.as_str() {
            "auto" => Ok(defaults::instances()),
            n => match n.parse::<usize>() {
                Ok(n @ 1..=64) => Ok(n),
                _ => Err(format!(
                    "invalid instances '{n}': expected auto or a whole number from 1 to 64"
                )),
            },
        })
    });
    Limits {
        instances: instances.unwrap_or(base.instances),
        state_bytes: state_bytes.unwrap_or(base.state_bytes),
        memory_bytes: memory_bytes.unwrap_or(base.memory_bytes),
        cpu_time: cpu_time.unwrap_or(base.cpu_time),
        attempts: attempts.unwrap_or(base.attempts),
        retry_backoff: retry_backoff.unwrap_or(base.retry_backoff),
    }
}

/// Reads a map of named entries (`bindings:`, `analytics:`) entry by entry.
fn entries_of<T>(
    section: Option<&Section<'_>>,
    path: &str,
    what: &str,
    report: &mut Report,
    mut build: impl FnMut(&str, Pos, &Node, &mut Report) -> Option<T>,
) -> BTreeMap<String, T> {
    let mut built = BTreeMap::new();
    let Some(section) = section else { return built };
    let entries = match &section.node.kind {
        NodeKind::Map(entries) => entries.as_slice(),
        NodeKind::Null => &[],
        _ => {
            report.error(
                section.node.pos,
                path,
                format!(
                    "expected a mapping of {what} names to {what}s, found {}",
                    section.node.describe()
                ),
            );
            return built;
        }
    };
    for (key, node) in entries {
        let entry_path = format!("{path}.{}", path_segment(key));
        let Some(name) = key.scalar_text() else {
            report.error(
                key.pos,
                &entry_path,
                format!(
                    "a {what} name must be a plain name, found {}",
                    key.describe()
                ),
            );
            continue;
        };
        if let Err(message) = names::check_name(what, name) {
            report.error(key.pos, &entry_path, message);
        }
        if let Some(entry) = build(name, key.pos, node, report) {
            built.insert(name.to_owned(), entry);
        }
    }
    built
}

/// Checks an optional topic; `None` (no error) when it is absent.
fn topic(path: &str, value: Option<&Located<String>>, report: &mut Report) -> Option<String> {
    value.and_then(|t| report.check(path, t, |t| names::check_topic(t).map(|()| t.clone())))
}

/// `at-least-once` (default) or `exactly-once`.
fn guarantee(path: &str, raw: Option<&Located<String>>, report: &mut Report) -> Guarantee {
    let Some(raw) = raw else {
        return Guarantee::AtLeastOnce;
    };
    report
        .check(path, raw, |g| match g.as_str() {
            "at-least-once" => Ok(Guarantee::AtLeastOnce),
            "exactly-once" => Ok(Guarantee::ExactlyOnce),
            other => Err(format!(
                "unknown guarantee '{other}': expected at-least-once or exactly-once"
            )),
        })
        .unwrap_or_default()
}

/// The explicit dead-letter topic, or `default`.
fn dead_letter_topic(
    name: &str,
    key: Pos,
    path: &str,
    explicit: Option<&Located<String>>,
    default: String,
    report: &mut Report,
) -> Option<String> {
    match explicit {
        Some(dlq) => topic(path, Some(dlq), report),
        None => {
            // A bad name was reported already; only a too-long one breaks the topic.
            if names::check_name("", name).is_ok() && names::check_topic(&default).is_err() {
                report.error(key, path, format!("name too long: its dead-letter topic '{default}' must be at most 249 characters"));
                return None;
            }
            Some(default)
        }
    }
}

fn function_ref(
    path: &str,
    function: &Located<String>,
    catalog: &mut Functions,
    report: &mut Report,
) {
    if let Err(Some(missing_folder)) = catalog {
        report.0.push(missing_folder.clone());
        *catalog = Err(None);
    }
    report.check(path, function, |f| {
        names::check_name("function", f)?;
        catalog.as_ref().map_or(Ok(()), |c| c.check(f))
    });
}

fn text_map(
    raw: Option<BTreeMap<String, crate::config::node_de::ScalarText>>,
) -> BTreeMap<String, String> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn http(section: Option<&Section<'_>>, report: &mut Report) -> Option<HttpConfig> {
    let raw = match section {
        Some(section) => report.read::<RawHttp>("http", section.node)?,
        None => RawHttp {
            listen: None,
            token: None,
            auth: None,
        },
    };
    // Each key is checked even when another failed, so every mistake shows at once.
    let listen = match &raw.listen {
        Some(listen) => report.check("http.listen", listen, |l| {
            l.parse::<SocketAddr>().map_err(|_| {
                format!("invalid listen address '{l}': expected IP:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)")
            })
        }),
        None => Some(defaults::LISTEN),
    };
    let token = match &raw.token {
        Some(token) => report
            .check("http.token", token, |t| {
                HttpToken::new(t).map_err(|e| e.to_string())
            })
            .map(Some),
        None => Some(None),
    };
    let auth = match &raw.auth {
        Some(auth) => report.check("http.auth", auth, |a| match a.as_str() {
            "writes" => Ok(HttpAuth::Writes),
            "all" => Ok(HttpAuth::All),
            other => Err(format!("unknown value '{other}': expected writes or all")),
        }),
        None => Some(HttpAuth::Writes),
    };
    // A token from KFN_HTTP_TOKEN alone is checked when the app starts.
    if let (Some(HttpAuth::All), None, Some(at)) = (auth, &raw.token, &raw.auth) {
        report.error(
            at.pos,
            "http.auth",
            "`auth: all` needs http.token (e.g. `token: ${KFN_HTTP_TOKEN}`)",
        );
    }
    let (listen, token, auth) = (listen?, token?, auth?);
    Some(HttpConfig {
        listen,
        token,
        auth,
    })
}
