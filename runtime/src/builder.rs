//! `kfn build`: turns function source folders into the `.wasm` files the runtime
//! loads. A folder `functions/NAME/` builds to `functions/NAME.wasm`; it is rebuilt
//! only when the `.wasm` is missing or older than any of its sources (or the WIT).
//!
//! Rust today (`cargo build --target wasm32-wasip2`); a folder in another language is
//! reported as unsupported rather than skipped silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// The wasm target Rust functions are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

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
pub fn build_dir(
    dir: &Path,
    extra_inputs: &[PathBuf],
    force: bool,
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
    let mut target_checked = false;
    let mut results = Vec::new();
    for folder in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wasm = dir.join(format!("{name}.wasm"));
        if !folder.join("Cargo.toml").exists() {
            if is_source_folder(&folder) {
                let error = format!(
                    "{}: only Rust functions (a Cargo.toml) can be built by this version of kfn",
                    folder.display()
                );
                eprintln!("kfn build: {error}");
                results.push((name, Built::Failed { error }));
            }
            continue;
        }
        let sources = newest_mtime(&folder).max(extra_newest);
        let built_at = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
        if !force && built_at.is_some() && built_at >= sources {
            eprintln!("kfn build: {} is up to date", wasm.display());
            results.push((name, Built::Fresh));
            continue;
        }
        if !target_checked {
            ensure_wasm_target(&folder)?;
            target_checked = true;
        }
        eprintln!(
            "kfn build: building {} (rust, {WASM_TARGET}) ...",
            folder.display()
        );
        let started = std::time::Instant::now();
        match build_rust(&folder, &name, &wasm) {
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

fn ensure_wasm_target(cwd: &Path) -> Result<(), BuildError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(cwd)
        .output();
    let Ok(installed) = installed else {
        // No rustup: maybe a distro Rust with the target; let cargo say if not.
        return if Command::new("cargo").arg("--version").output().is_ok() {
            Ok(())
        } else {
            Err(BuildError::NoRustup)
        };
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!(
        "kfn build: installing the {WASM_TARGET} Rust target (once): rustup target add {WASM_TARGET}"
    );
    let ok = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(cwd)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(BuildError::TargetAdd)
    }
}

fn build_rust(folder: &Path, name: &str, wasm: &Path) -> Result<(), String> {
    let manifest = folder.join("Cargo.toml");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .current_dir(folder)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BuildError::NoCargo.to_string(),
            _ => format!("cannot run cargo: {e}"),
        })?;
    if !status.success() {
        return Err(format!(
            "cargo build failed ({status}); fix the errors above and run `kfn build` again"
        ));
    }
    let target_dir = target_dir(&manifest)?;
    let artifact = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    // Copy then rename, so a watching kfn never loads a half-written file.
    let tmp = wasm.with_extension("wasm.tmp");
    std::fs::copy(&artifact, &tmp)
        .and_then(|_| std::fs::rename(&tmp, wasm))
        .map_err(|e| {
            format!(
                "copying {} to {}: {e} (is the crate named '{name}' with crate-type cdylib?)",
                artifact.display(),
                wasm.display()
            )
        })
}

fn target_dir(manifest: &Path) -> Result<PathBuf, String> {
    let out = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata reported no target_directory".into())
}
