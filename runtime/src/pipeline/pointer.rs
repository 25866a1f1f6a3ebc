//! Reads a few JSON pointers (`/name`, `/user/id`) out of a record's value in one
//! pass, without building the document: an analytics stage needs its group key and
//! the numbers it aggregates, not every field. Parsing the whole value into a
//! `serde_json::Value` (a map, a `String` per key and per text) was ~15 % of a
//! repartition step's CPU; this walks the bytes, skips what no pointer reaches and
//! builds only the values the pointers name.
//!
//! What it finds is exactly what `Value::pointer` finds on the parsed document (the
//! tests check that against it): `~1` and `~0` are unescaped, array indexes are
//! decimal without a sign or leading zeros, a repeated object key's last value wins,
//! and a value that is not JSON as a whole is an error even if the pointers were
//! found before the fault.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Pointers to look up together: [`Pointers::find`] gives one answer per pointer, in
/// the order they were given.
#[derive(Debug, Clone, Default)]
pub struct Pointers {
    /// Each pointer's reference tokens, unescaped; `None` for a string that is not a
    /// pointer (it finds nothing).
    tokens: Vec<Option<Vec<Token>>>,
}

#[derive(Debug, Clone)]
struct Token {
    name: String,
    /// The array index this token names, if it names one.
    index: Option<usize>,
}

impl Pointers {
    pub fn new<'a>(pointers: impl IntoIterator<Item = &'a str>) -> Self {
        let tokens = pointers
            .into_iter()
            .map(|p| match p {
                "" => Some(Vec::new()),
                _ => p.strip_prefix('/').map(|rest| {
                    rest.split('/')
                        .map(|t| {
                            let name = t.replace("~1", "/").replace("~0", "~");
                            Token {
                                index: index(&name),
                                name,
                            }
                        })
                        .collect()
                }),
            })
            .collect();
        Pointers { tokens }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The value at each pointer (`None`: not there), or why `json` is not JSON.
    pub fn find(&self, json: &[u8]) -> Result<Vec<Option<Value>>, serde_json::Error> {
        let mut found = vec![None; self.tokens.len()];
        let live = (0..self.tokens.len())
            .filter(|&p| self.tokens[p].is_some())
            .collect();
        let mut de = serde_json::Deserializer::from_slice(json);
        Find {
            pointers: self,
            live,
            depth: 0,
            found: &mut found,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(found)
    }

    fn tokens(&self, p: usize) -> &[Token] {
        self.tokens[p].as_deref().unwrap_or_default()
    }
}

/// `serde_json`'s rule for an array index: decimal, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// The value at `tokens` below `value`.
fn walk<'v>(mut value: &'v Value, tokens: &[Token]) -> Option<&'v Value> {
    for t in tokens {
        value = match value {
            Value::Object(map) => map.get(&t.name)?,
            Value::Array(list) => list.get(t.index?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// One value of the document, at `depth`, that the pointers in `live` lead into (all
/// of them agree on the first `depth` tokens). With none live, it is skipped.
struct Find<'a> {
    pointers: &'a Pointers,
    live: Vec<usize>,
    depth: usize,
    found: &'a mut Vec<Option<Value>>,
}

impl Find<'_> {
    /// The live pointers whose next token is `key` (or, in an array, names `index`).
    fn next(&self, matches: impl Fn(&Token) -> bool) -> Vec<usize> {
        self.live
            .iter()
            .copied()
            .filter(|&p| {
                self.pointers
                    .tokens(p)
                    .get(self.depth)
                    .is_some_and(&matches)
            })
            .collect()
    }

    fn below(&mut self, live: Vec<usize>) -> Find<'_> {
        // A repeated key's last value wins: forget what an earlier one gave.
        for &p in &live {
            self.found[p] = None;
        }
        Find {
            pointers: self.pointers,
            live,
            depth: self.depth + 1,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // With no pointer live, the value is still read through `deserialize_any`, not
        // skipped with `IgnoredAny`: serde_json's skipping does not check UTF-8, lone
        // surrogates, number range or nesting depth, and a value a full parse refuses
        // must be refused here too. Strings are borrowed, so nothing is built.
        let ends_here = self
            .live
            .iter()
            .any(|&p| self.pointers.tokens(p).len() == self.depth);
        if !ends_here {
            return d.deserialize_any(self);
        }
        // A pointer names this value: build it (and answer pointers that go deeper
        // into it from it).
        let value = Value::deserialize(d)?;
        for &p in &self.live {
            let rest = &self.pointers.tokens(p)[self.depth..];
            self.found[p] = walk(&value, rest).cloned();
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Find<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(live) = map.next_key_seed(Key(&self))? {
            let below = self.below(live);
            map.next_value_seed(below)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        for i in 0.. {
            let live = self.next(|t| t.index == Some(i));
            if seq.next_element_seed(self.below(live))?.is_none() {
                break;
            }
        }
        Ok(())
    }

    // A scalar where a pointer needs an object or an array: not there.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An object key, read without copying: which live pointers it continues.
struct Key<'f, 'a>(&'f Find<'a>);

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = Vec<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = Vec<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Vec<usize>, E> {
        Ok(self.0.next(|t| t.name == key))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `Value::pointer` finds on the parsed document, or the parse error.
    fn oracle(json: &str, pointers: &[&str]) -> Result<Vec<Option<Value>>, String> {
        let doc: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(pointers.iter().map(|p| doc.pointer(p).cloned()).collect())
    }

    fn find(json: &str, pointers: &[&str]) -> Result<Vec<Option<Value>>, String> {
        Pointers::new(pointers.iter().copied())
            .find(json.as_bytes())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn finds_what_value_pointer_finds() {
        let doc = r#"{"name":"P1","user":{"id":7,"tags":["a","b",{"x~/y":true}]},"n":1.5,
                      "dup":1,"dup":{"k":2},"a/b":3,"m~n":4,"":5,"z":null}"#;
        let pointers = [
            "/name",
            "/user/id",
            "/user",
            "/user/tags/1",
            "/user/tags/2/x~0~1y",
            "/user/tags/01",
            "/user/tags/+1",
            "/user/tags/3",
            "/user/tags/-",
            "/n",
            "/n/deeper",
            "/dup",
            "/dup/k",
            "/a~1b",
            "/m~0n",
            "/",
            "/z",
            "/missing",
            "",
            "name",
        ];
        assert_eq!(find(doc, &pointers), oracle(doc, &pointers));
        assert_eq!(
            find(doc, &["/name", "/user/id", "/n"]).unwrap(),
            [
                Some(Value::from("P1")),
                Some(Value::from(7)),
                Some(Value::from(1.5))
            ]
        );
    }

    #[test]
    fn a_repeated_key_forgets_what_the_earlier_one_gave() {
        let doc = r#"{"a":{"b":1},"a":{"c":2}}"#;
        assert_eq!(
            find(doc, &["/a/b", "/a/c"]).unwrap(),
            [None, Some(2.into())]
        );
    }

    #[test]
    fn a_value_that_is_not_json_is_an_error_wherever_the_fault() {
        for bad in [
            r#"{"name":"P1","#,
            r#"{"name":"P1"} x"#,
            "",
            "{\"name\":\"P1\" 3}",
        ] {
            assert!(find(bad, &["/name"]).is_err(), "{bad}");
            assert!(oracle(bad, &["/name"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_a_full_parse_refuses_is_refused_where_no_pointer_looks() {
        let deep = format!(
            r#"{{"name":"P1","x":{}{}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        let mut bad: Vec<Vec<u8>> = [
            r#"{"name":"P1","x":1e400}"#,
            r#"{"name":"P1","x":"\ud800"}"#,
            r#"{"name":"P1","x":[1,]}"#,
            deep.as_str(),
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        bad.push(b"{\"name\":\"P1\",\"x\":\"\xff\"}".to_vec());
        bad.push(b"{\"name\":\"P1\",\"\xff\":1}".to_vec());
        for value in bad {
            let full = serde_json::from_slice::<Value>(&value).map_err(|e| e.to_string());
            let walked = Pointers::new(["/name"])
                .find(&value)
                .map_err(|e| e.to_string());
            let shown = String::from_utf8_lossy(&value);
            assert!(full.is_err(), "the oracle accepts {shown}");
            assert_eq!(walked.map(drop), full.map(drop), "{shown}");
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-c~/]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::vec(("[a-c~/]{0,2}", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_value_pointer(doc in json(), pointers in prop::collection::vec("(/([a-c]|~0|~1|[0-3]|0[0-2]){0,2}){0,3}", 1..4)) {
            let text = doc.to_string();
            let pointers: Vec<&str> = pointers.iter().map(String::as_str).collect();
            prop_assert_eq!(find(&text, &pointers), oracle(&text, &pointers));
        }
    }
}
