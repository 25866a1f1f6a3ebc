//! The JSON Schema of kfn.yaml (editor completion: `kfn schema`, and `kfn init` writes
//! it beside the file) and the reference of every key (`kfn reference`), both made
//! from the serde shapes in [`super::raw`] and their doc comments, so they cannot
//! drift from what kfn accepts. `runtime/reference/` holds copies, checked by a test.

use serde_json::Value;

use super::raw::RawFile;

/// The JSON Schema (draft 2020-12) of kfn.yaml, pretty-printed.
pub fn json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<RawFile>();
    schema.insert("title".into(), "kfn.yaml".into());
    schema.insert(
        "description".into(),
        "The configuration of a kfn app: `kfn reference` describes every key.".into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Every key of kfn.yaml with its type and meaning, as Markdown.
pub fn reference() -> String {
    let schema: Value = serde_json::from_str(&json_schema()).unwrap_or_default();
    let mut out = String::from(
        "# kfn.yaml reference\n\n\
         Generated from kfn's configuration types by `kfn reference`; `kfn schema` prints the\n\
         same as a JSON Schema for editors. `<name>` stands for a name you choose. Durations\n\
         are written like `500ms`, `5s`, `1m`; sizes like `64MiB`. `${NAME}` in any value is\n\
         the environment variable NAME (`${NAME:-default}`, `$${` for a literal `${`).\n\n\
         | key | type | what |\n|---|---|---|\n",
    );
    walk("", &schema, &mut out);
    out
}

fn walk(path: &str, schema: &Value, out: &mut String) {
    let schema = non_null(schema);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let mut keys: Vec<&String> = properties.keys().collect();
        keys.sort();
        for key in keys {
            let child = &properties[key];
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            row(&child_path, child, out);
            walk(&child_path, child, out);
        }
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        let values = non_null(values);
        if values.get("properties").is_some() {
            walk(&format!("{path}.<name>"), values, out);
        }
    }
    // Variants of one key (`{sum: /pointer}`) are spelled out in the type already.
    for variant in variants(schema) {
        let keys = variant
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.len());
        if keys.is_some_and(|n| n > 1) {
            walk(path, variant, out);
        }
    }
}

fn row(path: &str, schema: &Value, out: &mut String) {
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .replace('\n', " ")
        .replace('|', "\\|");
    out.push_str(&format!(
        "| `{path}` | {} | {description} |\n",
        type_of(schema).replace('|', "\\|")
    ));
}

/// The schema without its `null` alternative (an optional key).
fn non_null(schema: &Value) -> &Value {
    let alternatives = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array);
    match alternatives.map(|a| a.iter().filter(|s| s["type"] != "null").collect::<Vec<_>>()) {
        Some(left) if left.len() == 1 => left[0],
        _ => schema,
    }
}

fn variants(schema: &Value) -> Vec<&Value> {
    ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .filter(|s| s["type"] != "null")
        .collect()
}

/// A short type: `string`, `map of <name> → object`, `count or {sum: string}`, ...
fn type_of(schema: &Value) -> String {
    let schema = non_null(schema);
    if let Some(value) = schema.get("const") {
        return value
            .as_str()
            .map_or(value.to_string(), |s| format!("`{s}`"));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| v.as_str().map_or(v.to_string(), |s| format!("`{s}`")))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let variants = variants(schema);
    if !variants.is_empty() {
        return variants
            .iter()
            .map(|v| match v.get("properties").and_then(Value::as_object) {
                Some(p) if p.len() == 1 && v.get("additionalProperties") == Some(&false.into()) => {
                    let (k, t) = p.iter().next().expect("one property");
                    format!("`{{{k}: {}}}`", type_of(t).trim_matches('`'))
                }
                _ => type_of(v),
            })
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if types == ["object"]
        && let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object())
    {
        return format!("map of `<name>` → {}", type_of(values));
    }
    if types.is_empty() {
        "any".into()
    } else {
        types.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The copies in `runtime/reference/` are what the code generates (bless with
    /// `KFN_BLESS=1 cargo test -p kfn reference`).
    #[test]
    fn the_shipped_reference_and_schema_match_the_config_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
        for (file, generated) in [
            ("kfn-yaml.md", reference()),
            ("kfn.schema.json", json_schema()),
        ] {
            let path = dir.join(file);
            if std::env::var_os("KFN_BLESS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let shipped = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                shipped == generated,
                "{} is out of date: run `KFN_BLESS=1 cargo test -p kfn reference` and commit it",
                path.display()
            );
        }
    }

    #[test]
    fn the_reference_names_every_key_with_its_doc() {
        let reference = reference();
        for key in [
            "kafka.brokers",
            "kafka.application-id",
            "kafka.properties",
            "functions.limits.cpu-time",
            "bindings.<name>.every",
            "bindings.<name>.in",
            "analytics.<name>.window.tumbling",
            "analytics.<name>.aggregate",
            "http.listen",
            "http.token",
            "http.auth",
        ] {
            assert!(
                reference.contains(&format!("| `{key}` |")),
                "{key} missing:\n{reference}"
            );
        }
        assert!(reference.contains("Schedule of a supplier"), "{reference}");
    }
}
