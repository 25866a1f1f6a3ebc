//! C functions: a folder of `.c` files, one of which names its world with a marker
//! line `// kfn:world function` (or `consumer`, `supplier`).
//!
//! The build, all intermediates in `<folder>/target/kfn/`:
//!   1. `wit-bindgen c --world W` generates `W.h`, `W.c` and `W_component_type.o`
//!      (the component type, as a custom section) from `wit/kfn.wit`;
//!   2. clang compiles the folder's `.c` files with them for `wasm32-wasi`
//!      (`-mexec-model=reactor`, wasi-libc and compiler-rt from Debian);
//!   3. `wasm-tools component new --adapt` wraps the core module into a component with
//!      the `wasi_snapshot_preview1` reactor adapter (preview1 calls -> WASI 0.2).
//!
//! Why preview1 + adapter rather than clang's `wasm32-wasip2` target: Debian 12's
//! wasi-libc (2022) has no wasip2 sysroot and its default clang (14) no such target.
//!
//! The helpers shared with Go (the pinned tools, the adapter, the WIT folder, the world
//! marker) live here too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Language;

pub const LANGUAGE: Language = Language {
    name: "c",
    // A folder with a go.mod is Go even if it carries a stray .c file.
    detect: |folder| !folder.join("go.mod").exists() && !sources(folder, "c").is_empty(),
    check_toolchain,
    build,
};

/// The Debian packages C functions need.
const APT_INSTALL: &str = "apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32";

fn check_toolchain(_folder: &Path) -> Result<(), String> {
    let cc = cc();
    let missing = |what: &str| {
        format!(
            "{what} is missing; C functions need clang, lld, wasi-libc and compiler-rt for wasm32. On Debian/Ubuntu run: {APT_INSTALL}"
        )
    };
    let print = |arg: &str| -> Result<String, String> {
        let out = Command::new(&cc)
            .args(["--target=wasm32-wasi", arg])
            .output()
            .map_err(|_| missing(&format!("the C compiler `{cc}`")))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // clang answers a bare name when it cannot find the file.
    let found = |p: &str| Path::new(p).is_absolute() && Path::new(p).exists();
    if !found(&print("-print-file-name=crt1-reactor.o")?) {
        return Err(missing("wasi-libc (the wasm32-wasi C library)"));
    }
    if !found(&print("-print-libgcc-file-name")?) {
        return Err(missing(
            "compiler-rt for wasm32 (libclang_rt.builtins-wasm32.a)",
        ));
    }
    if !found(&print("-print-prog-name=wasm-ld")?) {
        return Err(missing("the wasm linker `wasm-ld` (lld)"));
    }
    WASM_TOOLS.ensure()?;
    WIT_BINDGEN.ensure()?;
    reactor_adapter().map(|_| ())
}

fn build(folder: &Path, _name: &str, wasm: &Path) -> Result<(), String> {
    let c_files = sources(folder, "c");
    let (world, work, bindings) = generate_bindings(folder, &c_files, "main.c", &["c", "--world"])?;

    let core = work.join("core.wasm");
    let mut cc = Command::new(self::cc());
    cc.args([
        "--target=wasm32-wasi",
        "-mexec-model=reactor",
        "-O2",
        "-Wall",
        "-Wl,--strip-debug",
    ])
    .arg("-I")
    .arg(&bindings)
    .arg("-I")
    .arg(folder)
    .args(
        std::env::var("KFN_CFLAGS")
            .unwrap_or_default()
            .split_whitespace(),
    )
    .arg("-o")
    .arg(&core)
    .args(&c_files)
    .arg(bindings.join(format!("{world}.c")))
    .arg(bindings.join(format!("{world}_component_type.o")));
    run(&mut cc)?;

    componentize(&core, wasm)
}

/// The C compiler: `$KFN_CC` if set, else `clang`. (Not `$CC`: that usually names the
/// host compiler, often gcc, which cannot target wasm.)
fn cc() -> String {
    std::env::var("KFN_CC")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "clang".into())
}

// ---- shared with go.rs -------------------------------------------------------------

/// A command-line tool kfn installs from crates.io into [`tools_dir`], at a pinned
/// version, the first time a build needs it.
pub(super) struct Tool {
    pub bin: &'static str,
    pub krate: &'static str,
    pub version: &'static str,
    /// Only the features kfn uses: the default features take several times as long to
    /// compile.
    pub features: &'static str,
}

/// `component embed` and `component new`.
pub(super) const WASM_TOOLS: Tool = Tool {
    bin: "wasm-tools",
    krate: "wasm-tools",
    version: "1.263.0",
    features: "component",
};

/// The C and Go binding generators. 0.62.0 because its Go bindings use
/// `go.bytecodealliance.org/pkg` v0.2.3, the first release whose `cabi_realloc` pauses
/// the adapter's clock (Go's allocator reads the clock; an import called from
/// `cabi_realloc` is a trap) and, unlike later ones, needs only Go 1.25.
pub(super) const WIT_BINDGEN: Tool = Tool {
    bin: "wit-bindgen",
    krate: "wit-bindgen-cli",
    version: "0.62.0",
    features: "c,go",
};

/// The version of the `wasi_snapshot_preview1` adapter: the wasmtime the runtime embeds
/// (runtime/Cargo.toml), so the adapter's WASI imports are ones the host provides.
const ADAPTER_VERSION: &str = "48.0.8";

/// Where kfn keeps the tools it installs: `target/kfn-tools` of the kfn repository
/// (git-ignored, reused across builds), or `$KFN_TOOLS_DIR`.
/// Reads the world from the `kfn:world` marker in `files`, and generates its bindings
/// with `wit-bindgen <generator...> <world>` into a fresh `<folder>/target/kfn/bindings`.
/// Returns the world, the work folder and the bindings folder.
pub(super) fn generate_bindings(
    folder: &Path,
    files: &[PathBuf],
    marker_home: &str,
    generator: &[&str],
) -> Result<(String, PathBuf, PathBuf), String> {
    let world = world_marker(folder, files, marker_home)?;
    let wit = wit_dir(folder)?;
    let work = folder.join("target").join("kfn");
    let bindings = work.join("bindings");
    let _ = std::fs::remove_dir_all(&bindings);
    std::fs::create_dir_all(&bindings)
        .map_err(|e| format!("creating {}: {e}", bindings.display()))?;
    run(Command::new(WIT_BINDGEN.path())
        .args(generator)
        .arg(&world)
        .arg("--out-dir")
        .arg(&bindings)
        .arg(&wit))?;
    Ok((world, work, bindings))
}

pub(super) fn tools_dir() -> PathBuf {
    match std::env::var_os("KFN_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("kfn-tools"),
    }
}

impl Tool {
    pub fn path(&self) -> PathBuf {
        tools_dir().join("bin").join(self.bin)
    }

    fn install_command(&self) -> String {
        format!(
            "cargo install --locked --root {} {}@{} --no-default-features --features {}",
            tools_dir().display(),
            self.krate,
            self.version,
            self.features
        )
    }

    /// Whether the pinned version is installed; if not, installs it (a few minutes,
    /// once), with cargo's progress on the terminal.
    pub fn ensure(&self) -> Result<(), String> {
        let path = self.path();
        let installed = Command::new(&path)
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w == self.version)
            });
        if installed {
            return Ok(());
        }
        eprintln!(
            "kfn build: installing {} {} into {} (once; takes a few minutes): {}",
            self.krate,
            self.version,
            tools_dir().display(),
            self.install_command()
        );
        let ok = Command::new("cargo")
            .args(["install", "--locked", "--root"])
            .arg(tools_dir())
            .arg(format!("{}@{}", self.krate, self.version))
            .args(["--no-default-features", "--features", self.features])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok && path.exists() {
            Ok(())
        } else {
            Err(format!(
                "installing {} {} failed; run it yourself to see why: {}",
                self.krate,
                self.version,
                self.install_command()
            ))
        }
    }
}

/// The `wasi_snapshot_preview1` reactor adapter, taken out of the crates.io crate
/// `wasi-preview1-component-adapter-provider` (which ships it as bytes) by a tiny Rust
/// program, once.
pub(super) fn reactor_adapter() -> Result<PathBuf, String> {
    let dir = tools_dir().join(format!("adapter-{ADAPTER_VERSION}"));
    let adapter = dir.join("wasi_snapshot_preview1.reactor.wasm");
    if adapter.exists() {
        return Ok(adapter);
    }
    eprintln!(
        "kfn build: fetching the wasi_snapshot_preview1 reactor adapter {ADAPTER_VERSION} from crates.io (once)"
    );
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap_or(&dir))
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    };
    // Its own [workspace]: it sits inside the kfn repository's target/ folder.
    write(
        dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"kfn-adapter-extract\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nwasi-preview1-component-adapter-provider = \"={ADAPTER_VERSION}\"\n\n[workspace]\n"
        ),
    )?;
    write(
        dir.join("src").join("main.rs"),
        "fn main() {\n    let out = std::env::args().nth(1).expect(\"output path\");\n    \
         std::fs::write(out, wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)\n        \
         .expect(\"writing the adapter\");\n}\n",
    )?;
    let tmp = dir.join("reactor.wasm.tmp");
    run(Command::new("cargo")
        .args(["run", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--")
        .arg(&tmp)
        .stdin(Stdio::null()))?;
    std::fs::rename(&tmp, &adapter).map_err(|e| format!("moving the adapter into place: {e}"))?;
    Ok(adapter)
}

/// Core module (preview1 imports, component type embedded) -> component at `wasm`.
pub(super) fn componentize(core: &Path, wasm: &Path) -> Result<(), String> {
    let adapter = reactor_adapter()?;
    run(Command::new(WASM_TOOLS.path())
        .args(["component", "new"])
        .arg(core)
        .arg("--adapt")
        .arg(format!("wasi_snapshot_preview1={}", adapter.display()))
        .arg("-o")
        .arg(wasm))
}

/// Runs `cmd` with its output on the terminal; an error names the command.
pub(super) fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{shown}` failed ({status}); fix the errors above and run `kfn build` again"
        ))
    }
}

/// The WIT folder: the nearest `wit/kfn.wit` above the function folder (a project's
/// own contract), else the one in the kfn repository.
pub(super) fn wit_dir(folder: &Path) -> Result<PathBuf, String> {
    let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
    folder
        .ancestors()
        .map(|d| d.join("wit"))
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("wit")])
        .find(|w| w.join("kfn.wit").is_file())
        .ok_or_else(|| {
            format!(
                "no wit/kfn.wit found above {}; kfn builds functions against it",
                folder.display()
            )
        })
}

pub(super) const WORLDS: [&str; 3] = ["function", "consumer", "supplier"];

/// The world named by a `// kfn:world NAME` line in one of `files`.
pub(super) fn world_marker(
    folder: &Path,
    files: &[PathBuf],
    suggest: &str,
) -> Result<String, String> {
    let mut found: Option<(String, PathBuf)> = None;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines() {
            let Some(rest) = line
                .trim()
                .strip_prefix("//")
                .and_then(|l| l.trim_start().strip_prefix("kfn:world"))
            else {
                continue;
            };
            let world = rest.trim();
            if !WORLDS.contains(&world) {
                return Err(format!(
                    "{}: `kfn:world {world}` names no world; use one of: {}",
                    file.display(),
                    WORLDS.join(", ")
                ));
            }
            match &found {
                Some((other, at)) if other != world => {
                    return Err(format!(
                        "{} says `kfn:world {other}` but {} says `kfn:world {world}`; a function has one world",
                        at.display(),
                        file.display()
                    ));
                }
                _ => found = Some((world.to_string(), file.clone())),
            }
        }
    }
    found.map(|(w, _)| w).ok_or_else(|| {
        format!(
            "{}: no world marker; add a line `// kfn:world function` (or consumer, supplier) to {suggest}",
            folder.display()
        )
    })
}

/// The files ending in `.ext` under `folder`, sorted, skipping `target/` and hidden
/// folders.
pub(super) fn sources(folder: &Path, ext: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, ext, out);
                }
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(folder, ext, &mut out);
    out.sort();
    out
}
