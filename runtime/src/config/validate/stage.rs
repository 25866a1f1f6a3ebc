//! The rules of one `analytics:` entry: a windowed aggregation and its SSE route.

use std::time::Duration;

use crate::config::node::{Node, NodeKind, Pos};
use crate::config::node_de::Located;
use crate::config::raw::{AGGREGATES, RawAggregate, RawStage, RawWindow};
use crate::config::{
    Aggregate, Aggregates, AnalyticsConfig, EmitConfig, KeySelector, WindowConfig, WindowKind,
    defaults, names, units,
};

use super::{
    Context, Report, dead_letter_topic, function_ref, guarantee, merge_limits, text_map, topic,
};

/// Checks one store; `None` when it has errors (all reported).
pub(super) fn stage(
    name: &str,
    key: Pos,
    node: &Node,
    context: &mut Context,
    report: &mut Report,
) -> Option<AnalyticsConfig> {
    let path = format!("analytics.{name}");
    let raw: RawStage = report.read(&path, node)?;
    let at = |field: &str| format!("{path}.{field}");

    let input = topic(&at("in"), raw.input.as_ref(), report);
    if raw.input.is_none() {
        report.error(
            key,
            &path,
            "a store needs 'in': the topic it aggregates (e.g. in: R2)",
        );
    }
    if let Some(function) = &raw.function {
        function_ref(&at("function"), function, &mut context.functions, report);
    }
    let key_selector = match &raw.key {
        Some(selector) => report.check(&at("key"), selector, |k| key_selector(k)),
        None => {
            report.error(key, &path, "a store needs 'key': a JSON pointer into the value (e.g. key: /name) or record-key");
            None
        }
    };
    let window = match &raw.window {
        Some(window) => window_of(&at("window"), window, report),
        None => {
            report.error(
                key,
                &path,
                "a store needs 'window' (e.g. window: { tumbling: 5s })",
            );
            None
        }
    };
    // serde checked the key is known; the value's two forms are told apart here.
    let aggregate = match raw.aggregate.and(entry(node, "aggregate")) {
        Some(aggregate) => aggregates_of(&at("aggregate"), aggregate, context, report),
        None => {
            report.error(
                key,
                &path,
                "a store needs 'aggregate': count, { sum|min|max|avg: /json/pointer }, \
                 { function: NAME }, or a map of names to those (e.g. { views: count, avg_ms: { avg: /duration } })",
            );
            None
        }
    };
    if let (Some(f), Some(Some(g))) = (&raw.function, aggregate.as_ref().map(Aggregates::function))
        && f.value == g
    {
        report.error(
            f.pos,
            &at("function"),
            format!("'{g}' cannot be both the store's function (world function) and its aggregator (world aggregator): a component has one world"),
        );
    }
    let output = topic(&at("out"), raw.out.as_ref(), report);
    let emit = emit_of(&path, &raw, output.is_some(), report);
    let serve = raw.serve.as_ref().and_then(|route| {
        let checked = report.check(&at("serve"), route, |r| names::check_route(r).map(|()| r.clone()))?;
        if let Some((other, pos)) = context.routes.get(&checked) {
            report.error(
                route.pos,
                &at("serve"),
                format!("route '{checked}' is already served by store '{other}' (line {}): choose another", pos.line),
            );
            return None;
        }
        context.routes.insert(checked.clone(), (name.to_owned(), route.pos));
        Some(checked)
    });
    let limits = match &raw.limits {
        Some(limits) => merge_limits(&at("limits"), limits, &context.limits, report),
        None => context.limits.clone(),
    };
    if aggregate.as_ref().and_then(Aggregates::function).is_some()
        && limits.state_bytes + defaults::CHANGELOG_OVERHEAD > context.max_message
    {
        let pos = raw
            .limits
            .as_ref()
            .and_then(|l| l.state.as_ref())
            .map_or(key, |s| s.pos);
        report.error(
            pos,
            &at("limits.state"),
            format!(
                "a window's state ({} bytes) must fit in one changelog record, and the producer sends at most {} bytes \
                 (message.max.bytes): lower limits.state, or raise kafka.properties.message.max.bytes and the \
                 broker's (or the changelog topic's) max.message.bytes",
                limits.state_bytes, context.max_message
            ),
        );
    }
    let dlq = dead_letter_topic(
        name,
        key,
        &at("dlq"),
        raw.dlq.as_ref(),
        defaults::store_dead_letter_topic(&context.application_id, name),
        report,
    );

    Some(AnalyticsConfig {
        input: input?,
        function: raw.function.map(|f| f.value),
        config: text_map(raw.config),
        limits,
        key: key_selector?,
        window: window?,
        aggregate: aggregate?,
        emit: emit?,
        output,
        serve,
        dlq: dlq?,
        guarantee: guarantee(&at("guarantee"), raw.guarantee.as_ref(), report),
    })
}

/// The value node of `field` in a mapping node.
fn entry<'a>(node: &'a Node, field: &str) -> Option<&'a Node> {
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar_text() == Some(field))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn key_selector(key: &str) -> Result<KeySelector, String> {
    if key == "record-key" {
        return Ok(KeySelector::RecordKey);
    }
    if !key.starts_with('/') {
        return Err(format!(
            "invalid key '{key}': expected a JSON pointer starting with '/' (e.g. /{key}) or record-key"
        ));
    }
    names::check_pointer(key).map(|()| KeySelector::JsonPointer(key.to_owned()))
}

const KINDS: &str =
    "tumbling: 5s, hopping: { size: 1m, advance: 10s }, sliding: 30s or session: { gap: 30s }";

fn window_of(path: &str, window: &Located<RawWindow>, report: &mut Report) -> Option<WindowConfig> {
    let w = &window.value;
    let at = |field: &str| format!("{path}.{field}");
    let duration = |report: &mut Report, field: &str, value: &Located<String>| {
        report.check(&at(field), value, |t| units::positive_duration(t))
    };
    let mut kinds: Vec<(&str, Pos, Option<WindowKind>)> = Vec::new();
    if let Some(t) = &w.tumbling {
        let kind = duration(report, "tumbling", t).map(WindowKind::Tumbling);
        kinds.push(("tumbling", t.pos, kind));
    }
    if let Some(h) = &w.hopping {
        let field = |report: &mut Report, name: &str, value: &Option<Located<String>>| match value {
            Some(v) => duration(report, &format!("hopping.{name}"), v),
            None => {
                report.error(
                    h.pos,
                    &at("hopping"),
                    format!(
                        "hopping windows need '{name}' (e.g. hopping: {{ size: 1m, advance: 10s }})"
                    ),
                );
                None
            }
        };
        let size = field(report, "size", &h.value.size);
        let advance = field(report, "advance", &h.value.advance);
        let kind = match (size, advance) {
            (Some(size), Some(advance)) if advance > size => {
                let pos = h.value.advance.as_ref().map_or(h.pos, |a| a.pos);
                report.error(
                    pos,
                    &at("hopping.advance"),
                    format!(
                        "advance ({advance:?}) is longer than size ({size:?}): records between windows \
                         would belong to none; use at most the size (equal is tumbling)"
                    ),
                );
                None
            }
            (Some(size), Some(advance)) => Some(WindowKind::Hopping { size, advance }),
            _ => None,
        };
        kinds.push(("hopping", h.pos, kind));
    }
    if let Some(s) = &w.sliding {
        let kind = duration(report, "sliding", s).map(WindowKind::Sliding);
        kinds.push(("sliding", s.pos, kind));
    }
    if let Some(s) = &w.session {
        let kind = match &s.value.gap {
            Some(gap) => {
                duration(report, "session.gap", gap).map(|gap| WindowKind::Session { gap })
            }
            None => {
                report.error(
                    s.pos,
                    &at("session"),
                    "session windows need 'gap': the inactivity that ends a session (e.g. session: { gap: 30s })",
                );
                None
            }
        };
        kinds.push(("session", s.pos, kind));
    }
    let kind = match kinds.as_slice() {
        [] => {
            report.error(
                window.pos,
                path,
                format!("missing the kind of window: one of {KINDS}"),
            );
            None
        }
        [(_, _, kind)] => *kind,
        [(first, _, _), (second, pos, _), ..] => {
            report.error(
                *pos,
                &at(second),
                format!("a window has one kind: found both '{first}' and '{second}'; use another store for the other"),
            );
            None
        }
    };
    let grace = match &w.grace {
        Some(g) => report.check(&at("grace"), g, |g| units::parse_duration(g)),
        None => Some(defaults::GRACE),
    };
    let idle = match &w.idle {
        Some(i) if i.value == "off" => Some(None),
        Some(i) => report
            .check(&at("idle"), i, |i| {
                units::positive_duration(i)
                    .map_err(|e| format!("{e}, or off (close windows on stream time only)"))
            })
            .map(Some),
        None => Some(Some(defaults::IDLE)),
    };
    Some(WindowConfig {
        kind: kind?,
        grace: grace?,
        idle: idle?,
    })
}

/// `aggregate:` — one aggregate (`count`, `{ avg: /duration }`) or a map of named ones.
fn aggregates_of(
    path: &str,
    node: &Node,
    context: &mut Context,
    report: &mut Report,
) -> Option<Aggregates> {
    let NodeKind::Map(entries) = &node.kind else {
        return one(path, node, context, report).map(Aggregates::One);
    };
    let single = entries.len() == 1
        && entries[0]
            .0
            .scalar_text()
            .is_some_and(|k| AGGREGATES.contains(&k));
    if single {
        return one(path, node, context, report).map(Aggregates::One);
    }
    if entries.is_empty() {
        report.error(
            node.pos,
            path,
            "no aggregate given: write count, { avg: /duration }, or a map of names to those",
        );
        return None;
    }
    let mut named = Vec::new();
    let mut ok = true;
    for (name_node, value) in entries {
        let name = name_node.scalar_text().unwrap_or_default();
        let entry_path = format!("{path}.{name}");
        if let Err(message) = names::check_name("aggregate", name) {
            report.error(name_node.pos, &entry_path, message);
            ok = false;
            continue;
        }
        let pointer_given = value.scalar_text().is_some_and(|v| v.starts_with('/'));
        if AGGREGATES.contains(&name) && pointer_given {
            report.error(
                name_node.pos,
                &entry_path,
                format!(
                    "several aggregates need a name each: write {{ {name}_x: {{ {name}: {} }}, ... }} \
                     (for one aggregate write just {{ {name}: {} }})",
                    value.scalar_text().unwrap_or_default(),
                    value.scalar_text().unwrap_or_default()
                ),
            );
            ok = false;
            continue;
        }
        match one(&entry_path, value, context, report) {
            Some(Aggregate::Function(f))
                if named
                    .iter()
                    .any(|(_, a)| matches!(a, Aggregate::Function(g) if *g != f)) =>
            {
                report.error(
                    name_node.pos,
                    &entry_path,
                    "a store calls one aggregator function at most: keep the logic of both in one function",
                );
                ok = false;
            }
            Some(a) => named.push((name.to_owned(), a)),
            None => ok = false,
        }
    }
    ok.then_some(Aggregates::Named(named))
}

fn one(path: &str, node: &Node, context: &mut Context, report: &mut Report) -> Option<Aggregate> {
    let raw: RawAggregate = report.read(path, node)?;
    let (name, pointer, make): (&str, &Located<String>, fn(String) -> Aggregate) = match &raw {
        RawAggregate::Count => return Some(Aggregate::Count),
        RawAggregate::Sum(p) => ("sum", p, Aggregate::Sum),
        RawAggregate::Min(p) => ("min", p, Aggregate::Min),
        RawAggregate::Max(p) => ("max", p, Aggregate::Max),
        RawAggregate::Avg(p) => ("avg", p, Aggregate::Avg),
        RawAggregate::Function(f) => {
            let at = format!("{path}.function");
            let before = report.0.len();
            function_ref(&at, f, &mut context.functions, report);
            return (report.0.len() == before).then(|| Aggregate::Function(f.value.clone()));
        }
    };
    report.check(&format!("{path}.{name}"), pointer, |p| {
        names::check_pointer(p).map(|()| make(p.clone()))
    })
}

fn emit_of(path: &str, raw: &RawStage, has_out: bool, report: &mut Report) -> Option<EmitConfig> {
    let at = |field: &str| format!("{path}.{field}");
    let changes = match &raw.emit {
        None => false,
        Some(e) => report.check(&at("emit"), e, |e| match e.as_str() {
            "final" => Ok(false),
            "changes" => Ok(true),
            other => Err(format!(
                "unknown emit '{other}': expected final (one result per window when it closes) \
                 or changes (every update, at most once per emit-every)"
            )),
        })?,
    };
    let every: Option<Duration> = match &raw.emit_every {
        Some(every) if !changes => {
            report.error(
                every.pos,
                &at("emit-every"),
                "'emit-every' applies to emit: changes; remove it or add emit: changes",
            );
            return None;
        }
        Some(every) => {
            Some(report.check(&at("emit-every"), every, |e| units::positive_duration(e))?)
        }
        None => None,
    };
    if changes
        && !has_out
        && let Some(e) = &raw.emit
    {
        report.error(
            e.pos,
            &at("emit"),
            "emit: changes sends each window's updates to 'out': add out: TOPIC",
        );
        return None;
    }
    Some(if changes {
        EmitConfig::Changes {
            every: every.unwrap_or(defaults::EMIT_EVERY),
        }
    } else {
        EmitConfig::Final
    })
}
