//! A serde `Deserializer` over one [`Node`] subtree, so the derived shapes in
//! [`super::raw`] can be read entry by entry, and every error knows its place and path.
//!
//! Errors are located on the way out: the innermost map entry that fails stamps its
//! key's or value's position on the error, and every enclosing entry prepends its key to
//! the path. [`Located<T>`] gives validation code the position of a value.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde::{Deserialize, Deserializer};

use crate::config::node::{Node, NodeKind, Pos, ScalarKind};

/// Reads a `T` from `node`.
pub fn from_node<'de, T: Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node)).map_err(|err| err.at(node.pos))
}

/// A deserialization error, with where it happened relative to the node it started from.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// Position of the innermost node that failed; set on the way out.
    pub pos: Option<Pos>,
    /// Path segments from the starting node down to the failing one.
    pub path: Vec<String>,
    /// What is wrong, for the user.
    pub message: String,
}

impl DeError {
    fn new(message: String) -> Self {
        DeError {
            pos: None,
            path: Vec::new(),
            message,
        }
    }

    /// Sets the position unless an inner node already did.
    fn at(mut self, pos: Pos) -> Self {
        self.pos.get_or_insert(pos);
        self
    }

    fn under(mut self, segment: String) -> Self {
        self.path.insert(0, segment);
        self
    }

    fn expected(what: &str, node: &Node) -> Self {
        DeError::new(format!("expected {what}, found {}", node.describe())).at(node.pos)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(unknown("key", field, expected))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(unknown("value", variant, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("missing key '{field}'"))
    }
}

/// `unknown key 'evry': did you mean 'every'? (valid keys: ...)`.
pub fn unknown(what: &str, found: &str, expected: &[&str]) -> String {
    let valid = expected.join(", ");
    match did_you_mean(found, expected) {
        Some(close) => {
            format!("unknown {what} '{found}': did you mean '{close}'? (valid {what}s: {valid})")
        }
        None => format!("unknown {what} '{found}' (valid {what}s: {valid})"),
    }
}

/// The candidate closest to `found`, if it is a plausible typo of it.
pub fn did_you_mean<'a>(found: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(found, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// How a key shows up in an error path: `linger.ms` is quoted so the dots in the path
/// stay unambiguous.
pub fn path_segment(key: &Node) -> String {
    match key.scalar_text() {
        Some(text) if !text.is_empty() && !text.contains(['.', ' ', '"']) => text.to_owned(),
        Some(text) => format!("{text:?}"),
        None => "?".to_owned(),
    }
}

/// A value and the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// Where the value starts in the file.
    pub pos: Pos,
    /// The value.
    pub value: T,
}

/// In the schema a located value is just the value.
impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The newtype name by which [`Located`] asks [`NodeDe`] for a position.
const LOCATED: &str = "__kfn_located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value with its position")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located<T>, A::Error> {
                let missing = || de::Error::custom("internal: incomplete located value");
                let line: usize = seq.next_element()?.ok_or_else(missing)?;
                let column: usize = seq.next_element()?.ok_or_else(missing)?;
                let value: T = seq.next_element()?.ok_or_else(missing)?;
                Ok(Located {
                    pos: Pos { line, column },
                    value,
                })
            }
        }
        deserializer.deserialize_newtype_struct(LOCATED, LocatedVisitor(PhantomData))
    }
}

/// A scalar of any type read as its text: `linger.ms: 5` gives `"5"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarText(pub String);

/// Any scalar a user may write for a text value.
impl schemars::JsonSchema for ScalarText {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ScalarText".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ScalarText)
    }
}

/// The deserializer over one node.
struct NodeDe<'a>(&'a Node);

impl<'de> NodeDe<'de> {
    fn text(&self, what: &str) -> Result<&'de str, DeError> {
        match &self.0.kind {
            NodeKind::Scalar { text, .. } => Ok(text),
            _ => Err(DeError::expected(what, self.0)),
        }
    }

    fn map_entries(&self) -> Result<&'de [(Node, Node)], DeError> {
        match &self.0.kind {
            NodeKind::Map(entries) => Ok(entries),
            // `limits:` with nothing after it reads as an empty mapping.
            NodeKind::Null => Ok(&[]),
            _ => Err(DeError::expected("a mapping", self.0)),
        }
    }

    fn number<T: std::str::FromStr>(&self, what: &str) -> Result<T, DeError> {
        let text = self.text(what)?;
        text.parse().map_err(|_| DeError::expected(what, self.0))
    }
}

macro_rules! forward_number {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit(self.number::<$ty>(concat!("a number (", stringify!($ty), ")"))?)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Scalar {
                text,
                kind: ScalarKind::Bool,
            } => visitor.visit_bool(text.eq_ignore_ascii_case("true")),
            NodeKind::Scalar {
                text,
                kind: ScalarKind::Int,
            } => match text.parse::<i64>() {
                Ok(n) => visitor.visit_i64(n),
                Err(_) => visitor.visit_borrowed_str(text),
            },
            NodeKind::Scalar {
                text,
                kind: ScalarKind::Float,
            } => match text.parse::<f64>() {
                Ok(n) => visitor.visit_f64(n),
                Err(_) => visitor.visit_borrowed_str(text),
            },
            NodeKind::Scalar {
                text,
                kind: ScalarKind::Str,
            } => visitor.visit_borrowed_str(text),
            NodeKind::Seq(items) => visitor.visit_seq(Items { items, index: 0 }),
            NodeKind::Map(entries) => visitor.visit_map(Entries {
                entries,
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.kind {
            NodeKind::Scalar {
                text,
                kind: ScalarKind::Bool,
            } => visitor.visit_bool(text.eq_ignore_ascii_case("true")),
            _ => Err(DeError::expected("true or false", self.0)),
        }
    }

    forward_number! {
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32, deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.text("a string")?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.kind {
            NodeKind::Null => visitor.visit_unit(),
            _ => Err(DeError::expected("nothing (null)", self.0)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == LOCATED {
            visitor.visit_seq(LocatedParts {
                node: self.0,
                index: 0,
            })
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.kind {
            NodeKind::Seq(items) => visitor.visit_seq(Items { items, index: 0 }),
            _ => Err(DeError::expected("a list", self.0)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(Entries {
            entries: self.map_entries()?,
            value: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.kind {
            NodeKind::Scalar { .. } => visitor.visit_enum(Variant {
                key: self.0,
                value: None,
            }),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(Variant {
                    key,
                    value: Some(value),
                })
            }
            _ => Err(DeError::expected(
                &format!(
                    "one of {} (a name, or a mapping with one key)",
                    variants.join(", ")
                ),
                self.0,
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The entries of a mapping; stamps positions and path segments on errors.
struct Entries<'a> {
    entries: &'a [(Node, Node)],
    value: Option<&'a (Node, Node)>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((entry, rest)) = self.entries.split_first() else {
            return Ok(None);
        };
        self.entries = rest;
        self.value = Some(entry);
        let key = &entry.0;
        seed.deserialize(NodeDe(key))
            .map(Some)
            .map_err(|err| err.at(key.pos).under(path_segment(key)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(DeError::new(
                "internal: value requested before key".to_owned(),
            ));
        };
        seed.deserialize(NodeDe(value))
            .map_err(|err| err.at(value.pos).under(path_segment(key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The items of a list.
struct Items<'a> {
    items: &'a [Node],
    index: usize,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.index) else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(NodeDe(item))
            .map(Some)
            .map_err(|err| err.at(item.pos).under(format!("[{index}]")))
    }
}

/// Feeds [`Located`] its line, column and value.
struct LocatedParts<'a> {
    node: &'a Node,
    index: u8,
}

impl<'de> SeqAccess<'de> for LocatedParts<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.index += 1;
        match self.index {
            1 => seed
                .deserialize(self.node.pos.line.into_deserializer())
                .map(Some),
            2 => seed
                .deserialize(self.node.pos.column.into_deserializer())
                .map(Some),
            3 => seed.deserialize(NodeDe(self.node)).map(Some),
            _ => Ok(None),
        }
    }
}

/// An enum written as `name` or `{ name: value }`.
struct Variant<'a> {
    key: &'a Node,
    value: Option<&'a Node>,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let key = self.key;
        let variant = seed
            .deserialize(NodeDe(key))
            .map_err(|err| err.at(key.pos))?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None
            | Some(Node {
                kind: NodeKind::Null,
                ..
            }) => Ok(()),
            Some(value) => {
                let name = self.key.scalar_text().unwrap_or_default();
                Err(
                    DeError::new(format!("'{name}' takes no value: write just {name}"))
                        .at(value.pos),
                )
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let name = self.key.scalar_text().unwrap_or_default();
        match self.value {
            Some(value) => seed
                .deserialize(NodeDe(value))
                .map_err(|err| err.at(value.pos).under(path_segment(self.key))),
            None => Err(
                DeError::new(format!("'{name}' needs a value: write {{ {name}: ... }}"))
                    .at(self.key.pos),
            ),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(value) => NodeDe(value).deserialize_seq(visitor),
            None => Err(DeError::expected("a list", self.key)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(value) => NodeDe(value).deserialize_map(visitor),
            None => Err(DeError::expected("a mapping", self.key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::parse;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Shape {
        name: Option<Located<String>>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        every: Option<String>,
    }

    #[test]
    fn located_values_carry_their_position() {
        let node = parse("name: 123\n").unwrap();
        let shape: Shape = from_node(&node).unwrap();
        assert_eq!(
            shape.name.unwrap(),
            Located {
                pos: Pos { line: 1, column: 7 },
                value: "123".into()
            }
        );
    }

    #[test]
    fn errors_carry_path_and_position_of_the_innermost_node() {
        let node = parse("inner:\n  evry: 1s\n").unwrap();
        let err = from_node::<Shape>(&node).unwrap_err();
        assert_eq!(err.path, ["inner", "evry"]);
        assert_eq!(err.pos, Some(Pos { line: 2, column: 3 }));
        assert_eq!(
            err.message,
            "unknown key 'evry': did you mean 'every'? (valid keys: every)"
        );

        let node = parse("inner: { every: [1] }\n").unwrap();
        let err = from_node::<Shape>(&node).unwrap_err();
        assert_eq!(err.path, ["inner", "every"]);
        assert_eq!(
            err.pos,
            Some(Pos {
                line: 1,
                column: 17
            })
        );
        assert_eq!(err.message, "expected a string, found a list");
    }

    #[test]
    fn suggestions_only_for_plausible_typos() {
        assert_eq!(did_you_mean("evry", &["every", "in"]), Some("every"));
        assert_eq!(
            did_you_mean("suplier", &["supplier", "consumer"]),
            Some("supplier")
        );
        assert_eq!(did_you_mean("zzz", &["in", "out"]), None);
    }
}
