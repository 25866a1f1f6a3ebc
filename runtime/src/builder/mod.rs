//! `kfn build`: turns function source folders into the `.wasm` files the runtime
//! loads. A folder `functions/NAME/` builds to `functions/NAME.wasm`; it is rebuilt
//! only when the `.wasm` is missing or older than any of its sources (or the WIT).
//!
//! Each language lives in its own module with the same three functions —
//! `detect(folder)`, `check_toolchain(folder)` (an error names the exact install
//! command) and `build(folder, name, wasm)` — and [`LANGUAGES`] lists them in
//! detection order.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

mod c;
mod go;
mod js;
mod python;
mod rust;

pub use rust::WASM_TARGET;

/// One supported source language.
pub struct Language {
    pub name: &'static str,
    /// Whether `folder` holds a function in this language.
    pub detect: fn(&Path) -> bool,
    /// Checks (or installs) the toolchain; the error says exactly what to run.
    pub check_toolchain: fn(&Path) -> Result<(), String>,
    /// Builds `folder` into `wasm` (a component). Output goes to the terminal.
    pub build: fn(folder: &Path, name: &str, wasm: &Path) -> Result<(), String>,
}

/// Every supported language, in detection order.
pub const LANGUAGES: &[Language] = &[
    rust::LANGUAGE,
    js::LANGUAGE,
    python::LANGUAGE,
    c::LANGUAGE,
    go::LANGUAGE,
];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{dir}: cannot read: {source}")]
    Read { dir: String, source: std::io::Error },
    #[error(
        "the {WASM_TARGET} Rust target is not installed and rustup is not available to add it; install rustup (https://rustup.rs) then run: rustup target add {WASM_TARGET}"
    )]
    NoRustup,
    #[error("`rustup target add {WASM_TARGET}` failed; run it yourself to see why")]
    TargetAdd,
    #[error("`cargo` was not found on PATH; install Rust with rustup, then run `kfn build` again")]
    NoCargo,
}

/// The outcome for one function folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    Fresh,
    Built { ms: u128 },
    Failed { error: String },
}

/// Builds every stale function folder under `dir`; `extra_inputs` (e.g. the `wit/`
/// folder) count as sources of every function. Prints progress to stderr.
/// With `only`, just those functions are considered (what an app binds).
pub fn build_dir(
    dir: &Path,
    extra_inputs: &[PathBuf],
    force: bool,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<Vec<(String, Built)>, BuildError> {
    // Absolute, because cargo runs inside each function folder.
    let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let read_err = |source| BuildError::Read {
        dir: dir.display().to_string(),
        source,
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n != "target" && !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    folders.sort();

    let extra_newest = extra_inputs.iter().filter_map(|p| newest_mtime(p)).max();
    let mut checked: Vec<&str> = Vec::new();
    let mut results = Vec::new();
    for folder in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        let wasm = dir.join(format!("{name}.wasm"));
        let Some(lang) = LANGUAGES.iter().find(|l| (l.detect)(&folder)) else {
            if is_source_folder(&folder) {
                let supported: Vec<_> = LANGUAGES.iter().map(|l| l.name).collect();
                let error = format!(
                    "{}: not a function folder kfn can build (supported: {})",
                    folder.display(),
                    supported.join(", ")
                );
                eprintln!("kfn build: {error}");
                results.push((name, Built::Failed { error }));
            }
            continue;
        };
        let sources = newest_mtime(&folder).max(extra_newest);
        let built_at = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
        if !force && built_at.is_some() && built_at >= sources {
            eprintln!("kfn build: {} is up to date", wasm.display());
            results.push((name, Built::Fresh));
            continue;
        }
        if !checked.contains(&lang.name) {
            if let Err(error) = (lang.check_toolchain)(&folder) {
                eprintln!("kfn build: {name}: {error}");
                results.push((name, Built::Failed { error }));
                continue;
            }
            checked.push(lang.name);
        }
        eprintln!(
            "kfn build: building {} ({}) ...",
            folder.display(),
            lang.name
        );
        let started = std::time::Instant::now();
        // Build to a temporary file and rename, so a watching kfn never loads a
        // half-written .wasm.
        let tmp = wasm.with_extension("wasm.tmp");
        match (lang.build)(&folder, &name, &tmp).and_then(|()| {
            std::fs::rename(&tmp, &wasm).map_err(|e| format!("moving the result into place: {e}"))
        }) {
            Ok(()) => {
                let ms = started.elapsed().as_millis();
                eprintln!(
                    "kfn build: {} built in {:.1} s",
                    wasm.display(),
                    ms as f64 / 1000.0
                );
                results.push((name, Built::Built { ms }));
            }
            Err(error) => {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("kfn build: {name}: {error}");
                results.push((name, Built::Failed { error }));
            }
        }
    }
    Ok(results)
}

fn is_source_folder(folder: &Path) -> bool {
    [
        "package.json",
        "pyproject.toml",
        "app.py",
        "go.mod",
        "Makefile",
        "main.c",
    ]
    .iter()
    .any(|f| folder.join(f).exists())
}

/// The newest modification time of any file under `path`, skipping build output.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}
