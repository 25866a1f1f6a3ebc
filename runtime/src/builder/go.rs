//! Go functions: a Go module (`go.mod`, module path `wit_component`) built with the
//! standard Go toolchain (1.25 or newer; no TinyGo). The exported function lives in the
//! package `export_wit_world` (e.g. `func Process(msg Message) Result[[]Output, string]`)
//! in a file with a marker line `//kfn:world function` (or `consumer`, `supplier`).
//!
//! The build:
//!   1. kfn generates the bindings with wit-bindgen's Go generator, in-process (what
//!      `wit-bindgen go -w W` does): `wit_exports.go` with the `//go:wasmexport` entry
//!      points, and the packages `wit_world`, `kfn_component_host`,
//!      `kfn_component_types`, into `target/kfn/bindings/`; kfn adds `kfn_gc.go` and a
//!      safe-point call at the top of each export (automatic garbage collection would
//!      trap inside `cabi_realloc`: see [`GO_GC_SHIM`]), and copies them into the
//!      module (all but `go.mod`), rewriting only changed files, so editors see them;
//!   2. `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared` makes a reactor core
//!      module (the Go runtime is initialised by `_initialize`, which the component
//!      calls on instantiation);
//!   3. kfn embeds the component type and wraps the module with the preview1 reactor
//!      adapter, in-process with wit-component (what `wasm-tools component embed` and
//!      `component new --adapt` do).
//!
//! Nothing is compiled on the user's machine but the function: before, a first Go
//! build compiled `wasm-tools` and `wit-bindgen-cli` from source (~7.5 minutes).
//!
//! The bindings need `go.bytecodealliance.org/pkg` v0.2.3 from the Go module proxy
//! (wit-bindgen 0.62.0's generator, pinned in runtime/Cargo.toml, is the one whose
//! `cabi_realloc` pauses the adapter's clock and which needs only Go 1.25). The
//! function's `go.sum` pins its hash (the checksum database here does not know that
//! version; the hash was checked against the copy wit-bindgen-go 0.62.0 ships on
//! crates.io, which is byte-identical).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tools::{componentize, generate_bindings, run, sources, world_marker};
use super::{Job, Language};

pub const LANGUAGE: Language = Language {
    name: "go",
    detect: |folder| folder.join("go.mod").exists(),
    check_toolchain,
    build,
};

/// Oldest Go that builds the bindings (`//go:wasmexport`, and the go.mod they write).
const MIN_GO: (u32, u32) = (1, 25);

fn check_toolchain(_folder: &Path) -> Result<(), String> {
    let out = Command::new("go").arg("version").output().map_err(|_| {
        "`go` was not found on PATH; install Go 1.25 or newer (https://go.dev/dl/), then run `kfn build` again"
            .to_string()
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "go version go1.26.8 linux/amd64"
    let version = text
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix("go")
                .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .and_then(|v| {
            let mut parts = v.split(['.', 'r', 'b']).map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        });
    match version {
        Some(v) if v >= MIN_GO => Ok(()),
        _ => Err(format!(
            "Go functions need Go {}.{} or newer (`go version` says: {}); install it from https://go.dev/dl/",
            MIN_GO.0,
            MIN_GO.1,
            text.trim()
        )),
    }
}

fn build(job: &Job<'_>) -> Result<(), String> {
    let folder = job.folder;
    let go_files = sources(folder, "go");
    let world = world_marker(folder, &go_files, "export_wit_world/<file>.go")?;
    let work = folder.join("target").join("kfn");
    let bindings = work.join("bindings");
    generate_bindings(
        job.contract,
        &world,
        wit_bindgen_go::Opts::default().build(),
        &bindings,
    )?;
    collect_only_at_safe_points(&bindings)?;
    sync_generated(&bindings, folder)?;

    let core = work.join("core.wasm");
    run(Command::new("go")
        .args(["build", "-trimpath", "-buildmode=c-shared"])
        // The bindings' runtime package links to runtime.sbrk.
        .arg("-ldflags=-checklinkname=0")
        .arg("-o")
        .arg(&core)
        .arg(".")
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .current_dir(folder))?;

    componentize(&core, Some((job.contract, &world)), job.wasm)
}

/// Go's garbage collector reads the clocks and polls timers, and a collection can start
/// or finish inside any allocation. The host copies arguments (and `config` results)
/// into the guest through `cabi_realloc`, where the component model forbids calling
/// imports: a collection there traps with "cannot leave component instance". The
/// bindings pause only the adapter's monotonic clock around it, which is not enough
/// (wasmtime issue 14318, unfixed in the adapter at the time of writing).
///
/// So kfn switches automatic collection off (`SetGCPercent(-1)`) and collects at the
/// start of every exported call, where imports are allowed, once the heap has doubled
/// since the last collection (what GOGC=100 does). Garbage made during one call is
/// collected at the start of a later one.
const GO_GC_SHIM: &str = r#"// Code generated by kfn build. DO NOT EDIT.
//
// Automatic garbage collection is off: a collection inside cabi_realloc (where the
// host copies arguments in) would call imports, which traps. kfnSafePoint, called
// first thing in every exported function, collects once the heap has doubled since
// the last collection.

package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const kfnMinHeap = 4 << 20

var (
	kfnHeap   = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	kfnNextGC = uint64(kfnMinHeap)
)

func init() {
	debug.SetGCPercent(-1)
}

func kfnSafePoint() {
	metrics.Read(kfnHeap)
	if kfnHeap[0].Value.Uint64() < kfnNextGC {
		return
	}
	runtime.GC()
	metrics.Read(kfnHeap)
	kfnNextGC = max(kfnMinHeap, 2*kfnHeap[0].Value.Uint64())
}
"#;

/// Adds `kfn_gc.go` ([`GO_GC_SHIM`]) to the generated bindings and a call to
/// `kfnSafePoint()` at the top of each exported function in `wit_exports.go`.
fn collect_only_at_safe_points(bindings: &Path) -> Result<(), String> {
    let exports = bindings.join("wit_exports.go");
    let text = std::fs::read_to_string(&exports)
        .map_err(|e| format!("reading {}: {e}", exports.display()))?;
    let mut out = String::with_capacity(text.len() + 256);
    let (mut patched, mut export) = (0, false);
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(name) = line.trim().strip_prefix("//go:wasmexport ") {
            export = !name.starts_with("cabi_post_");
        } else if export && line.starts_with("func ") && line.trim_end().ends_with('{') {
            out.push_str("\tkfnSafePoint()\n");
            patched += 1;
            export = false;
        }
    }
    if patched == 0 {
        return Err(format!(
            "{}: found no exported function to patch (has the Go generator changed?)",
            exports.display()
        ));
    }
    std::fs::write(&exports, out)
        .and_then(|()| std::fs::write(bindings.join("kfn_gc.go"), GO_GC_SHIM))
        .map_err(|e| format!("writing the bindings in {}: {e}", bindings.display()))
}

/// Copies the generated files (all but `go.mod`, which is the user's) into `folder`,
/// each marked as generated in its first line, writing only those whose content
/// changed so unchanged bindings keep their mtime.
fn sync_generated(generated: &Path, folder: &Path) -> Result<(), String> {
    fn files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, base, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut rels = Vec::new();
    files(generated, generated, &mut rels);
    for rel in rels.iter().filter(|r| *r != Path::new("go.mod")) {
        let mut bytes = std::fs::read(generated.join(rel))
            .map_err(|e| format!("reading generated {}: {e}", rel.display()))?;
        // Build records skip files that say they are generated in their first line
        // (they follow from the contract); the generator's `empty.s` files do not.
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        if !first.windows(11).any(|w| w == b"DO NOT EDIT") {
            bytes.splice(
                0..0,
                b"// Code generated by wit-bindgen (copied by kfn build). DO NOT EDIT.\n"
                    .iter()
                    .copied(),
            );
        }
        let dest = folder.join(rel);
        if std::fs::read(&dest).is_ok_and(|old| old == bytes) {
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&dest, bytes).map_err(|e| format!("writing {}: {e}", dest.display()))?;
    }
    Ok(())
}
