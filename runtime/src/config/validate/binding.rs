//! The rules of one `bindings:` entry: exactly one kind, and the fields that kind needs.

use crate::config::node::{Node, Pos};
use crate::config::node_de::Located;
use crate::config::raw::RawBinding;
use crate::config::units;
use crate::config::{BindingConfig, BindingKind, defaults};

use super::{
    Context, Report, dead_letter_topic, function_ref, guarantee, merge_limits, text_map, topic,
};

/// Checks one binding; `None` when it has errors (all reported).
pub(super) fn binding(
    name: &str,
    key: Pos,
    node: &Node,
    context: &mut Context,
    report: &mut Report,
) -> Option<BindingConfig> {
    let path = format!("bindings.{name}");
    let raw: RawBinding = report.read(&path, node)?;
    let at = |field: &str| format!("{path}.{field}");

    let kinds: Vec<(BindingKind, &str, &Located<String>)> = [
        (BindingKind::Supplier, "supplier", &raw.supplier),
        (BindingKind::Consumer, "consumer", &raw.consumer),
        (BindingKind::Function, "function", &raw.function),
    ]
    .into_iter()
    .filter_map(|(kind, field, value)| value.as_ref().map(|v| (kind, field, v)))
    .collect();
    for (_, field, function) in &kinds {
        function_ref(&at(field), function, &mut context.functions, report);
    }
    let kind = match kinds.as_slice() {
        [] => {
            report.error(
                key,
                &path,
                "no function to run: set exactly one of supplier, consumer or function (e.g. function: page-enricher)",
            );
            None
        }
        [(kind, _, _)] => Some(*kind),
        [(_, first, _), (_, second, value), ..] => {
            report.error(
                value.pos,
                &at(second),
                format!("a binding runs one function, but this one sets both '{first}' and '{second}': keep one"),
            );
            None
        }
    };

    let input = topic(&at("in"), raw.input.as_ref(), report);
    let output = topic(&at("out"), raw.out.as_ref(), report);
    let every = raw
        .every
        .as_ref()
        .and_then(|e| report.check(&at("every"), e, |e| units::positive_duration(e)));
    if let Some(kind) = kind {
        let (needs_in, needs_out, allows_every) = match kind {
            BindingKind::Supplier => (false, true, true),
            BindingKind::Consumer => (true, false, false),
            BindingKind::Function => (true, true, false),
        };
        let kind_name = kinds[0].1;
        match (&raw.input, needs_in) {
            (None, true) => report.error(
                key,
                &path,
                format!("a {kind_name} needs 'in': the topic it reads (e.g. in: R1)"),
            ),
            (Some(input), false) => report.error(
                input.pos,
                &at("in"),
                "a supplier reads no topic: remove 'in' (or use function: to transform a topic)",
            ),
            _ => {}
        }
        match (&raw.out, needs_out) {
            (None, true) => report.error(
                key,
                &path,
                format!("a {kind_name} needs 'out': the topic it writes to (e.g. out: R2)"),
            ),
            (Some(out), false) => report.error(
                out.pos,
                &at("out"),
                "a consumer writes no topic: remove 'out' (or use function: to write results)",
            ),
            _ => {}
        }
        match (&raw.every, allows_every) {
            (None, true) => report.error(key, &path, "a supplier needs 'every': how often to call it (e.g. every: 1s)"),
            (Some(every), false) => report.error(
                every.pos,
                &at("every"),
                format!("'every' is only for suppliers; a {kind_name} runs once per input record: remove it"),
            ),
            _ => {}
        }
    }
    let limits = match &raw.limits {
        Some(limits) => merge_limits(&at("limits"), limits, &context.limits, report),
        None => context.limits.clone(),
    };
    let dlq = dead_letter_topic(
        name,
        key,
        &at("dlq"),
        raw.dlq.as_ref(),
        defaults::dead_letter_topic(name),
        report,
    );
    let function = kinds.first().map(|(_, _, f)| f.value.clone());

    Some(BindingConfig {
        kind: kind?,
        function: function?,
        input,
        output,
        every,
        config: text_map(raw.config),
        limits,
        dlq: dlq?,
        guarantee: guarantee(&at("guarantee"), raw.guarantee.as_ref(), report),
    })
}
