//! Rust functions: a cargo crate (`crate-type = ["cdylib"]`, wit-bindgen) built with
//! `cargo build --release --target wasm32-wasip2`, which emits a component directly.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tools::run;
use super::{Job, Language};

/// The wasm target Rust functions are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

pub const LANGUAGE: Language = Language {
    name: "rust",
    detect: |folder| folder.join("Cargo.toml").exists(),
    check_toolchain,
    build,
};

fn check_toolchain(folder: &Path) -> Result<(), String> {
    if Command::new("cargo").arg("--version").output().is_err() {
        return Err("`cargo` was not found on PATH; install Rust with rustup (https://rustup.rs), then run `kfn build` again".into());
    }
    // rustup runs in the folder so that rust-toolchain.toml picks the toolchain.
    let Ok(installed) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(folder)
        .output()
    else {
        // No rustup: maybe a distro Rust that has the target; cargo will say if not.
        return Ok(());
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
        .current_dir(folder)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {WASM_TARGET}` failed; run it yourself to see why"
        ))
    }
}

fn build(job: &Job<'_>) -> Result<(), String> {
    let (folder, name, wasm) = (job.folder, job.name, job.wasm);
    let manifest = folder.join("Cargo.toml");
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .current_dir(folder))?;
    let artifact = target_dir(&manifest)?
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::copy(&artifact, wasm).map(|_| ()).map_err(|e| {
        format!(
            "copying {}: {e} (is the crate named '{name}' with crate-type cdylib?)",
            artifact.display()
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
