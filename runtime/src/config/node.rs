//! The YAML document as a tree of nodes that remember where they are.
//!
//! # Why serde-saphyr
//! `serde_yaml` is deprecated and unmaintained (archived in 2024). `serde-saphyr` is
//! maintained, panic-free, built on a pure-Rust YAML 1.2 parser, limits alias expansion
//! (no "billion laughs"), and reports line/column for every node through
//! [`serde_saphyr::Spanned`] — which is what lets this module report every error at once
//! with its place in the file.
//!
//! # Why a tree first
//! serde stops at the first error of a `from_str`. So the file is read once into this
//! span-preserving tree (only a YAML syntax error can fail that step), and each section,
//! binding and store is then deserialized separately from its own subtree
//! (see [`super::node_de`]); one broken entry cannot hide the mistakes in another.

use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A 1-based line and column in the YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl Pos {
    /// The start of the file, for errors about the file as a whole.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(loc: Location) -> Pos {
        if loc == Location::UNKNOWN {
            return Pos::START;
        }
        Pos {
            line: usize::try_from(loc.line()).unwrap_or(usize::MAX),
            column: usize::try_from(loc.column()).unwrap_or(usize::MAX),
        }
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts; for a node reached through an alias, where its anchor
    /// defined it (that is where the text to fix is).
    pub pos: Pos,
    /// What the node holds.
    pub kind: NodeKind,
}

/// The shape of a node. Scalars keep their text so that `linger.ms: 0.10` stays `"0.10"`
/// and a topic named `123` or `y` is not turned into a number or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null` or nothing.
    Null,
    /// A scalar: its text (as written for plain numbers and booleans, decoded for
    /// strings) and the type YAML 1.2 core schema resolution gave it.
    Scalar {
        /// The scalar's text.
        text: String,
        /// What YAML resolved it to.
        kind: ScalarKind,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// The type a scalar resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// A string (quoted or plain).
    Str,
    /// An integer.
    Int,
    /// A floating-point number.
    Float,
    /// `true` or `false`.
    Bool,
}

impl Node {
    /// A short description of what the node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "nothing (null)".to_owned(),
            NodeKind::Scalar { text, kind } => match kind {
                ScalarKind::Str => format!("the string '{text}'"),
                ScalarKind::Int | ScalarKind::Float => format!("the number {text}"),
                ScalarKind::Bool => format!("the boolean {text}"),
            },
            NodeKind::Seq(_) => "a list".to_owned(),
            NodeKind::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The text of a scalar (any scalar type), for keys and paths.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A YAML syntax error, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// The parser's message, worded for users.
    pub message: String,
}

/// Parses one YAML document into a [`Node`] tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! {
        // YAML 1.2 core schema: `yes`/`no`/`y`/`on` are strings, not booleans.
        strict_booleans: true,
        // Snippets are for terminals; our errors are one line each.
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Spanned<RawNode>>(text, options) {
        Ok(root) => Ok(convert(root, text)),
        Err(err) => Err(syntax_error(&err)),
    }
}

fn syntax_error(err: &serde_saphyr::Error) -> SyntaxError {
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let message = match inner {
        // The library's wording points at its own options; say what to do instead.
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!(
                "duplicate key '{key}': a key may appear only once in a mapping; remove or rename one"
            )
        }
        other => {
            use serde_saphyr::MessageFormatter;
            serde_saphyr::UserMessageFormatter
                .format_message(other)
                .into_owned()
        }
    };
    let pos = err.location().map(Pos::of).unwrap_or(Pos::START);
    SyntaxError { pos, message }
}

/// What serde-saphyr hands us, before scalars get their source text back.
enum RawNode {
    Null,
    Bool,
    Number(ScalarKind),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<RawNode, E> {
        Ok(RawNode::Number(ScalarKind::Int))
    }
    fn visit_u64<E>(self, _: u64) -> Result<RawNode, E> {
        Ok(RawNode::Number(ScalarKind::Int))
    }
    fn visit_i128<E>(self, _: i128) -> Result<RawNode, E> {
        Ok(RawNode::Number(ScalarKind::Int))
    }
    fn visit_u128<E>(self, _: u128) -> Result<RawNode, E> {
        Ok(RawNode::Number(ScalarKind::Int))
    }
    fn visit_f64<E>(self, _: f64) -> Result<RawNode, E> {
        Ok(RawNode::Number(ScalarKind::Float))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawNode::Map(entries))
    }
}

fn convert(raw: Spanned<RawNode>, text: &str) -> Node {
    let pos = Pos::of(raw.defined);
    // Plain numbers and booleans get their text back from the source, so nothing is
    // reformatted (`0.10` stays `0.10`, `0x1F` stays `0x1F`).
    let source = || {
        let span = raw.defined.span();
        span.byte_offset()
            .zip(span.byte_len())
            .and_then(|(at, len)| {
                let at = usize::try_from(at).ok()?;
                text.get(at..at.checked_add(usize::try_from(len).ok()?)?)
            })
            .unwrap_or_default()
            .to_owned()
    };
    let kind = match raw.value {
        RawNode::Null => NodeKind::Null,
        RawNode::Bool => NodeKind::Scalar {
            text: source(),
            kind: ScalarKind::Bool,
        },
        RawNode::Number(kind) => NodeKind::Scalar {
            text: source(),
            kind,
        },
        RawNode::Str(text) => NodeKind::Scalar {
            text,
            kind: ScalarKind::Str,
        },
        RawNode::Seq(items) => NodeKind::Seq(items.into_iter().map(|n| convert(n, text)).collect()),
        RawNode::Map(entries) => NodeKind::Map(
            entries
                .into_iter()
                .map(|(k, v)| (convert(k, text), convert(v, text)))
                .collect(),
        ),
    };
    Node { pos, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> (&str, ScalarKind) {
        match &node.kind {
            NodeKind::Scalar { text, kind } => (text, *kind),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn scalars_keep_their_source_text() {
        let root = parse("a: 0.10\nb: y\nc: '5'\nd: true\ne: 0x1F\n").unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        let values: Vec<_> = entries.iter().map(|(_, v)| scalar(v)).collect();
        assert_eq!(
            values,
            [
                ("0.10", ScalarKind::Float),
                ("y", ScalarKind::Str),
                ("5", ScalarKind::Str),
                ("true", ScalarKind::Bool),
                ("0x1F", ScalarKind::Int),
            ]
        );
    }

    #[test]
    fn positions_are_one_based_and_point_at_the_node() {
        let root = parse("a:\n  b: { c: 1s }\n").unwrap();
        let NodeKind::Map(top) = &root.kind else {
            panic!()
        };
        let NodeKind::Map(inner) = &top[0].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos { line: 2, column: 3 });
        let NodeKind::Map(flow) = &inner[0].1.kind else {
            panic!()
        };
        assert_eq!(
            flow[0].1.pos,
            Pos {
                line: 2,
                column: 11
            }
        );
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, column: 1 });
        assert!(
            err.message.starts_with("duplicate key 'a'"),
            "{}",
            err.message
        );
    }
}
