//! `${NAME}` in kfn.yaml: the value of the environment variable NAME, so that secrets
//! (`sasl.password: ${KAFKA_PASSWORD}`) and per-environment settings
//! (`brokers: ${KAFKA_BOOTSTRAP}`) stay out of the file.
//!
//! - `${NAME:-default}`: `default` when NAME is unset or empty;
//! - `$${` writes a literal `${`;
//! - an unset variable without a default is an error at its place in the file.
//!
//! Substitution happens in string values only (not in keys), on the tree, before
//! anything is deserialized: every later check sees the real value, and its errors
//! still point at the line that holds the `${...}`. A substituted value is never
//! echoed back by these messages (it may be a secret).

use crate::config::node::{Node, NodeKind, ScalarKind};
use crate::config::node_de::path_segment;
use crate::config::validate::Problem;

/// Replaces every `${...}` in the string scalars of `node`, reading variables with
/// `lookup`; returns the problems (unset variables, malformed references).
pub fn substitute(node: &mut Node, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(node, "", lookup, &mut problems);
    problems
}

fn walk(
    node: &mut Node,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    let pos = node.pos;
    match &mut node.kind {
        NodeKind::Scalar {
            text,
            kind: ScalarKind::Str,
        } if text.contains('$') => match expand(text, lookup) {
            Ok(value) => *text = value,
            Err(message) => problems.push(Problem {
                pos,
                path: path.to_owned(),
                message,
            }),
        },
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), lookup, problems);
            }
        }
        NodeKind::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                let segment = path_segment(key);
                let path = if path.is_empty() {
                    segment
                } else {
                    format!("{path}.{segment}")
                };
                walk(value, &path, lookup, problems);
            }
        }
        _ => {}
    }
}

/// `text` with its references replaced, or what is wrong with one of them.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(reference) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = reference.find('}') else {
            return Err(
                "unclosed '${' in this value: write ${NAME} for the environment variable NAME, or $${ for a literal '${'"
                    .to_string(),
            );
        };
        let (name, default) = match reference[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&reference[..end], None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "'${{{name}}}' is not an environment variable reference: names are letters, digits and '_' (e.g. ${{KAFKA_PASSWORD}})"
            ));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "the environment variable {name} is not set: set it (e.g. `export {name}=...`) or give a default with ${{{name}:-default}}"
                ));
            }
        }
        rest = &reference[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER_NAME" => Some("alice".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_defaulted_escaped_or_reported() {
        assert_eq!(expand("${USER_NAME}", &env).unwrap(), "alice");
        assert_eq!(expand("u-${USER_NAME}-x", &env).unwrap(), "u-alice-x");
        assert_eq!(expand("${NOPE:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(
            expand("$${USER_NAME} costs $5", &env).unwrap(),
            "${USER_NAME} costs $5"
        );
        let unset = expand("${KAFKA_PASSWORD}", &env).unwrap_err();
        assert!(unset.contains("KAFKA_PASSWORD is not set"), "{unset}");
        assert!(
            expand("${USER_NAME", &env)
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            expand("${a-b}", &env)
                .unwrap_err()
                .contains("not an environment")
        );
    }

    #[test]
    fn unset_variables_are_reported_at_their_place_without_their_neighbours_values() {
        let mut root = crate::config::node::parse(
            "kafka:\n  brokers: ${USER_NAME}:9092\n  properties:\n    sasl.password: ${KAFKA_PASSWORD}\n",
        )
        .unwrap();
        let problems = substitute(&mut root, &env);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "kafka.properties.\"sasl.password\"");
        assert_eq!((problems[0].pos.line, problems[0].pos.column), (4, 20));
        let NodeKind::Map(sections) = &root.kind else {
            panic!()
        };
        let NodeKind::Map(kafka) = &sections[0].1.kind else {
            panic!()
        };
        assert_eq!(kafka[0].1.scalar_text(), Some("alice:9092"));
    }
}
