//! The rules of one `analytics:` entry: a windowed aggregation and its SSE route.

use crate::config::node::{Node, Pos};
use crate::config::node_de::Located;
use crate::config::raw::{RawAggregate, RawStage};
use crate::config::{
    Aggregate, AnalyticsConfig, KeySelector, WindowConfig, defaults, names, units,
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
        Some(window) => {
            let tumbling = match &window.value.tumbling {
                Some(t) => report.check(&at("window.tumbling"), t, |t| units::positive_duration(t)),
                None => {
                    report.error(
                        window.pos,
                        &at("window"),
                        "missing 'tumbling': the window length (e.g. { tumbling: 5s })",
                    );
                    None
                }
            };
            let grace = match &window.value.grace {
                Some(g) => report.check(&at("window.grace"), g, |g| units::parse_duration(g)),
                None => Some(defaults::GRACE),
            };
            tumbling
                .zip(grace)
                .map(|(tumbling, grace)| WindowConfig { tumbling, grace })
        }
        None => {
            report.error(
                key,
                &path,
                "a store needs 'window' (e.g. window: { tumbling: 5s })",
            );
            None
        }
    };
    let aggregate = match &raw.aggregate {
        Some(aggregate) => aggregate_of(&at("aggregate"), &aggregate.value, report),
        None => {
            report.error(
                key,
                &path,
                "a store needs 'aggregate': count, or { sum|min|max|avg: /json/pointer }",
            );
            None
        }
    };
    let output = topic(&at("out"), raw.out.as_ref(), report);
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
    let dlq = dead_letter_topic(name, key, &path, None, report);

    Some(AnalyticsConfig {
        input: input?,
        function: raw.function.map(|f| f.value),
        config: text_map(raw.config),
        limits,
        key: key_selector?,
        window: window?,
        aggregate: aggregate?,
        output,
        serve,
        dlq: dlq?,
        guarantee: guarantee(&at("guarantee"), raw.guarantee.as_ref(), report),
    })
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

fn aggregate_of(path: &str, raw: &RawAggregate, report: &mut Report) -> Option<Aggregate> {
    let (name, pointer, make): (&str, &Located<String>, fn(String) -> Aggregate) = match raw {
        RawAggregate::Count => return Some(Aggregate::Count),
        RawAggregate::Sum(p) => ("sum", p, Aggregate::Sum),
        RawAggregate::Min(p) => ("min", p, Aggregate::Min),
        RawAggregate::Max(p) => ("max", p, Aggregate::Max),
        RawAggregate::Avg(p) => ("avg", p, Aggregate::Avg),
    };
    report.check(&format!("{path}.{name}"), pointer, |p| {
        names::check_pointer(p).map(|()| make(p.clone()))
    })
}
