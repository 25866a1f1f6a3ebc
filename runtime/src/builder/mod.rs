//! `kfn build`: turns function source folders into the `.wasm` files the runtime
//! loads. A folder `functions/NAME/` builds to `functions/NAME.wasm`; it is rebuilt
//! only when its sources, the WIT contract or the recipe changed since the build that
//! wrote the `.wasm` there, judged by content hashes ([`stamp`]), not file times.
//!
//! Each language lives in its own module with the same three parts — `detect(folder)`,
//! `check_toolchain(folder)` (installs what it can; an error names the exact install
//! command) and `build(job)` — and [`LANGUAGES`] lists them in detection order. The
//! shared parts: [`wit`] (the one place that knows where the contract is), `tools`
//! (running tools, componentizing in-process) and [`stamp`] (build records, which
//! also carry a failed build's error to a running `kfn up`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod c;
mod go;
mod js;
mod python;
mod rust;
pub mod stamp;
mod tools;
pub mod wit;

pub use rust::WASM_TARGET;
pub use tools::tools_dir;
pub use wit::Contract;

/// One function to build.
pub struct Job<'a> {
    /// Its source folder.
    pub folder: &'a Path,
    /// Its name (the folder's).
    pub name: &'a str,
    /// Where to write the component.
    pub wasm: &'a Path,
    /// The WIT contract to build against.
    pub contract: &'a Contract,
}

/// One supported source language.
pub struct Language {
    pub name: &'static str,
    /// Whether `folder` holds a function in this language.
    pub detect: fn(&Path) -> bool,
    /// Checks (or installs) the toolchain; the error says exactly what to run.
    pub check_toolchain: fn(&Path) -> Result<(), String>,
    /// Builds the job's folder into its `wasm` (a component). The toolchain's output
    /// goes to the terminal; the error carries the part that says what is wrong, with
    /// the file and line where the toolchain gives them.
    pub build: fn(&Job<'_>) -> Result<(), String>,
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
    #[error("{0}")]
    Contract(String),
}

/// The outcome for one function folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    Fresh,
    Built { ms: u128 },
    Failed { error: String },
}

/// Builds every stale function folder under `dir` against the project's contract
/// ([`Contract::for_functions`]). Prints progress to stderr and records each outcome
/// ([`stamp`]). With `only`, just those functions are considered (what an app binds).
pub fn build_dir(
    dir: &Path,
    force: bool,
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<(String, Built)>, BuildError> {
    // Absolute, because toolchains run inside each function folder.
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
    if only.is_some_and(BTreeSet::is_empty) || folders.is_empty() {
        return Ok(Vec::new());
    }
    let contract = Contract::for_functions(dir).map_err(BuildError::Contract)?;
    let contract_text = contract.text();

    let mut checked: Vec<&str> = Vec::new();
    let mut results = Vec::new();
    for folder in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.is_some_and(|only| !only.contains(&name)) || folder == contract.dir {
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
                record(dir, &name, String::new(), Err(&error));
                results.push((name, Built::Failed { error }));
            }
            continue;
        };
        let inputs = stamp::inputs_hash(&folder, &contract_text, lang.name);
        let last = stamp::read(&stamp::path(dir, &name));
        if !force && stamp::is_fresh(last.as_ref(), &inputs, &wasm) {
            eprintln!("kfn build: {} is up to date", wasm.display());
            results.push((name, Built::Fresh));
            continue;
        }
        if !checked.contains(&lang.name) {
            if let Err(error) = (lang.check_toolchain)(&folder) {
                eprintln!("kfn build: {name}: {error}");
                record(dir, &name, inputs, Err(&error));
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
        let job = Job {
            folder: &folder,
            name: &name,
            wasm: &tmp,
            contract: &contract,
        };
        match (lang.build)(&job).and_then(|()| {
            std::fs::rename(&tmp, &wasm).map_err(|e| format!("moving the result into place: {e}"))
        }) {
            Ok(()) => {
                let ms = started.elapsed().as_millis();
                eprintln!(
                    "kfn build: {} built in {:.1} s",
                    wasm.display(),
                    ms as f64 / 1000.0
                );
                record(dir, &name, inputs, Ok(&wasm));
                results.push((name, Built::Built { ms }));
            }
            Err(error) => {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("kfn build: {name} failed: {error}");
                record(dir, &name, inputs, Err(&error));
                results.push((name, Built::Failed { error }));
            }
        }
    }
    Ok(results)
}

/// Writes the build record of `name` (a failure to write it only costs a rebuild).
fn record(dir: &Path, name: &str, inputs: String, outcome: Result<&Path, &str>) {
    let stamp = stamp::Stamp {
        kfn: env!("CARGO_PKG_VERSION").into(),
        inputs,
        wasm: outcome.ok().and_then(stamp::file_hash),
        error: outcome.err().map(str::to_string),
        at_ms: crate::record::now_ms(),
    };
    if let Err(e) = stamp::write(dir, name, &stamp) {
        eprintln!("kfn build: warning: {e}");
    }
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
