//! Bounded fuzzing with property tests (stable Rust; cargo-fuzz needs nightly): what a
//! user or a build hands kfn is never trusted to be well formed.
//!
//! - kfn.yaml: random text, and the valid fixtures with random edits, go through
//!   parsing and validation. No input may panic, and every rejected one is answered
//!   with at least one error that has a message, a file name and a line within the
//!   file.
//! - `.wasm`: a real component with random byte edits goes through what a hot reload
//!   does (read, compile, link). No input may panic; a rejected one is answered with
//!   a message naming the file; one that still loads is called once, and the call
//!   returns (a trap or a guest error is an answer too).
//!
//! `KFN_FUZZ_CASES` sets the number of cases per property (default 256; `.ci/run`
//! runs more). A failing case is printed shrunk, with the seed to replay it.

mod common;

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

fn cases(default: u32) -> u32 {
    std::env::var("KFN_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        // Shrinking a failure is worth a while; not hours.
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

fn fixtures() -> Vec<String> {
    let dir = common::repo_root().join("runtime/tests/fixtures/config");
    let mut texts = Vec::new();
    for kind in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(kind)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                texts.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    texts.sort();
    texts
}

/// An edit of a text: the characters at `at..at+len` replaced by `with`.
#[derive(Debug, Clone)]
struct Edit {
    at: usize,
    len: usize,
    with: String,
}

fn edit() -> impl Strategy<Value = Edit> {
    // Pieces that mean something to YAML or to kfn, and random characters.
    let piece = prop_oneof![
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a".to_string()),
        Just("${X}".to_string()),
        Just("${".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("~".to_string()),
        Just("0s".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("1e309".to_string()),
        Just("embedded".to_string()),
        Just("record-key".to_string()),
        Just("/name".to_string()),
        Just("tumbling: ".to_string()),
        Just("session: { gap: 1s }".to_string()),
        Just("aggregate: { a: count, b: { sum: /x } }".to_string()),
        Just("exactly-once".to_string()),
        "\\PC{0,8}",
    ];
    (any::<prop::sample::Index>(), 0usize..12, piece).prop_map(|(at, len, with)| Edit {
        at: at.index(usize::MAX),
        len,
        with,
    })
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = e.at % (chars.len() + 1);
        let end = (at + e.len).min(chars.len());
        chars.splice(at..end, e.with.chars());
    }
    chars.into_iter().collect()
}

/// Parses and validates `text`; fails the property if it panics or is rejected
/// without a usable error.
fn check_config(text: &str, base: &Path) -> Result<(), TestCaseError> {
    let parsed = std::panic::catch_unwind(|| {
        kfn::config::Config::parse_with_env(text, "fuzz.yaml", base, &|name| {
            (name == "X").then(|| "from-env".to_string())
        })
    });
    let Ok(result) = parsed else {
        return Err(TestCaseError::fail("Config::parse panicked"));
    };
    if let Err(errors) = result {
        prop_assert!(!errors.0.is_empty(), "rejected with no error");
        let lines = text.lines().count() + 1;
        for e in &errors.0 {
            prop_assert!(
                !e.message.trim().is_empty(),
                "an error without a message: {e:?}"
            );
            prop_assert_eq!(&e.file, "fuzz.yaml");
            prop_assert!(
                e.line <= lines,
                "line {} of a {lines}-line file: {e:?}",
                e.line
            );
            prop_assert!(!errors.to_string().is_empty());
        }
    }
    Ok(())
}

#[test]
fn kfn_yaml_random_text_is_answered() {
    let base = common::repo_root().join("runtime/tests/fixtures/config/valid");
    runner(cases(256))
        .run(&"\\PC{0,200}", |text| check_config(&text, &base))
        .unwrap();
}

#[test]
fn kfn_yaml_edited_fixtures_are_answered() {
    let base = common::repo_root().join("runtime/tests/fixtures/config/valid");
    let texts = fixtures();
    let strategy = (0..texts.len(), prop::collection::vec(edit(), 1..6));
    runner(cases(512))
        .run(&strategy, |(i, edits)| {
            check_config(&apply(&texts[i], &edits), &base)
        })
        .unwrap();
}

/// A byte-level edit of a binary.
#[derive(Debug, Clone)]
enum ByteEdit {
    Set(prop::sample::Index, u8),
    Flip(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, Vec<u8>),
    Truncate(prop::sample::Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, bit)| ByteEdit::Flip(i, bit)),
        2 => (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        2 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        1 => any::<prop::sample::Index>().prop_map(ByteEdit::Truncate),
    ]
}

fn mutate(bytes: &[u8], edits: &[ByteEdit]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        match e {
            ByteEdit::Set(i, v) => {
                let at = i.index(b.len());
                b[at] = *v;
            }
            ByteEdit::Flip(i, bit) => {
                let at = i.index(b.len());
                b[at] ^= 1 << bit;
            }
            ByteEdit::Delete(i, n) => {
                let at = i.index(b.len());
                let end = (at + n).min(b.len());
                b.drain(at..end);
            }
            ByteEdit::Insert(i, v) => {
                let at = i.index(b.len());
                b.splice(at..at, v.iter().copied());
            }
            ByteEdit::Truncate(i) => b.truncate(i.index(b.len())),
        }
    }
    b
}

#[test]
fn mutated_wasm_is_answered() {
    let original = std::fs::read(common::guest("probe")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No compile cache: every mutant is compiled afresh, and nothing piles up on disk.
    let engine = kfn::wasm::WasmEngine::new(None).unwrap();
    let registry = kfn::wasm::Registry::new(engine, kfn::observe::Events::new());
    let path = dir.path().join("probe.wasm");
    let loaded = std::cell::Cell::new(0u32);
    // Mostly edits near the header and section table (where a parser decides what
    // follows), some anywhere.
    let strategy = prop::collection::vec(byte_edit(), 1..4);
    runner(cases(64))
        .run(&strategy, |edits| {
            let bytes = mutate(&original, &edits);
            std::fs::write(&path, &bytes).unwrap();
            let name = "probe";
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                registry.load_blocking(name, &path)
            }));
            let Ok(result) = outcome else {
                return Err(TestCaseError::fail("loading panicked"));
            };
            match result {
                Err(e) => {
                    let message = e.to_string();
                    prop_assert!(
                        message.contains("probe.wasm") || message.contains("engine"),
                        "the error does not name the file: {message}"
                    );
                }
                Ok(_) => {
                    loaded.set(loaded.get() + 1);
                    // It still loads (e.g. an edit in a custom section): a call
                    // answers, with outputs, a guest error or a trap.
                    let mut w = common::worker(
                        &registry,
                        name,
                        kfn::wasm::World::Function,
                        kfn::wasm::Limits::default(),
                    );
                    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        w.process(&common::record("hello")).map(|_| ())
                    }));
                    prop_assert!(called.is_ok(), "calling a loaded mutant panicked");
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "mutated .wasm: {} of {} mutants still loaded",
        loaded.get(),
        cases(64)
    );
}
