//! Build records: what each function was last built from, and how that went.
//!
//! `<functions>/.kfn/builds/NAME.json` holds the hash of the inputs of the last build
//! (the folder's sources, the WIT contract, the recipe, kfn's version), the hash of the
//! `.wasm` it wrote, and the error if it failed. A function is up to date when its
//! inputs hash the same *and* its `.wasm` is still the one that build wrote: file times
//! alone are fooled by a `.wasm` copied or touched after its sources, by a checkout that
//! sets every time to now, and by a clock that jumps.
//!
//! A running `kfn up` watches this folder: a failed `kfn build` in another terminal
//! shows on the function's status (see [`crate::watch`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What one build of one function did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The kfn that built it.
    pub kfn: String,
    /// blake3 of the inputs ([`inputs_hash`]).
    pub inputs: String,
    /// blake3 of the `.wasm` written; `None` if the build failed.
    pub wasm: Option<String>,
    /// Why the build failed, with the file and line where the toolchain gave one.
    pub error: Option<String>,
    /// When, in ms since the Unix epoch.
    pub at_ms: i64,
}

/// The folder of the build records of the functions in `functions_dir`.
pub fn dir(functions_dir: &Path) -> PathBuf {
    functions_dir.join(".kfn").join("builds")
}

/// The build record file of `name`.
pub fn path(functions_dir: &Path, name: &str) -> PathBuf {
    dir(functions_dir).join(format!("{name}.json"))
}

/// The function a build record file is for.
pub fn function_of(path: &Path) -> Option<String> {
    if path.extension()? != "json" {
        return None;
    }
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

pub fn read(path: &Path) -> Option<Stamp> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes a record atomically (a watching kfn never reads half of one).
pub fn write(functions_dir: &Path, name: &str, stamp: &Stamp) -> Result<(), String> {
    let path = path(functions_dir, name);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(stamp).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir(functions_dir))
        .and_then(|()| std::fs::write(&tmp, json))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// blake3 of a file, hex; `None` if it cannot be read.
pub fn file_hash(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(blake3::hash(&bytes).to_hex().to_string())
}

/// Whether `wasm` is what the last successful build from these `inputs` wrote.
pub fn is_fresh(record: Option<&Stamp>, inputs: &str, wasm: &Path) -> bool {
    let Some(record) = record else { return false };
    record.error.is_none()
        && record.inputs == inputs
        && record.kfn == env!("CARGO_PKG_VERSION")
        && record.wasm.is_some()
        && record.wasm == file_hash(wasm)
}

/// The hash of everything a build of `folder` depends on: each source file's path and
/// bytes, the contract, the recipe and the settings that change its output.
pub fn inputs_hash(folder: &Path, contract: &str, language: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(language.as_bytes());
    field(contract.as_bytes());
    field(std::env::var("KFN_CFLAGS").unwrap_or_default().as_bytes());
    let mut files = walk(folder);
    files.sort();
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        if generated(&bytes) {
            continue;
        }
        let rel = file.strip_prefix(folder).unwrap_or(&file);
        field(rel.to_string_lossy().as_bytes());
        field(&bytes);
    }
    hasher.finalize().to_hex().to_string()
}

/// Files a build writes into the folder itself (the Go bindings) say so in their first
/// line; they follow from the contract, which is hashed already.
fn generated(bytes: &[u8]) -> bool {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    first.starts_with(b"//") && first.windows(11).any(|w| w == b"DO NOT EDIT")
}

/// Every file under `folder` that can be a source: not in build output (`target/`),
/// installed packages (`node_modules/`), bytecode caches or hidden folders.
pub fn walk(folder: &Path) -> Vec<PathBuf> {
    fn go(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if !matches!(name.as_ref(), "target" | "node_modules" | "__pycache__") {
                        go(&path, out);
                    }
                }
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    go(folder, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_fresh_only_while_its_sources_and_its_wasm_are_what_was_built() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("f");
        std::fs::create_dir_all(folder.join("target")).unwrap();
        std::fs::write(folder.join("app.py"), "x = 1\n").unwrap();
        std::fs::write(folder.join("target/junk"), "ignored").unwrap();
        let wasm = dir.path().join("f.wasm");
        std::fs::write(&wasm, b"\0asm built").unwrap();

        let inputs = inputs_hash(&folder, "wit", "python");
        let stamp = Stamp {
            kfn: env!("CARGO_PKG_VERSION").into(),
            inputs: inputs.clone(),
            wasm: file_hash(&wasm),
            error: None,
            at_ms: 0,
        };
        write(dir.path(), "f", &stamp).unwrap();
        let read_back = read(&path(dir.path(), "f"));
        assert_eq!(read_back.as_ref(), Some(&stamp));
        assert!(is_fresh(read_back.as_ref(), &inputs, &wasm));

        // Build output and generated files do not count; sources and the contract do.
        std::fs::write(folder.join("target/junk"), "changed").unwrap();
        std::fs::write(folder.join("gen.go"), "// Code generated. DO NOT EDIT.\n").unwrap();
        assert_eq!(inputs_hash(&folder, "wit", "python"), inputs);
        assert_ne!(inputs_hash(&folder, "wit2", "python"), inputs);
        std::fs::write(folder.join("app.py"), "x = 2\n").unwrap();
        assert_ne!(inputs_hash(&folder, "wit", "python"), inputs);

        // A different .wasm (however new) is not what was built.
        std::fs::write(&wasm, b"garbage").unwrap();
        assert!(!is_fresh(read_back.as_ref(), &inputs, &wasm));
        assert!(!is_fresh(None, &inputs, &wasm));
    }
}
