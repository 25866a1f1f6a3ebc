//! C functions: a folder of `.c` files, one of which names its world with a marker
//! line `// kfn:world function` (or `consumer`, `supplier`).
//!
//! The build, all intermediates in `<folder>/target/kfn/`:
//!   1. kfn generates `W.h`, `W.c` and `W_component_type.o` (the component type, as a
//!      custom section) from the contract with wit-bindgen's C generator, in-process
//!      (what `wit-bindgen c --world W` does);
//!   2. clang compiles the folder's `.c` files with them for `wasm32-wasi`
//!      (`-mexec-model=reactor`, wasi-libc and compiler-rt from Debian);
//!   3. kfn wraps the core module into a component with the `wasi_snapshot_preview1`
//!      reactor adapter (preview1 calls -> WASI 0.2), in-process with wit-component
//!      (what `wasm-tools component new --adapt` does).
//!
//! Why preview1 + adapter rather than clang's `wasm32-wasip2` target: Debian 12's
//! wasi-libc (2022) has no wasip2 sysroot and its default clang (14) no such target.

use std::path::Path;
use std::process::Command;

use super::tools::{componentize, generate_bindings, run, sources, world_marker};
use super::{Job, Language};

pub const LANGUAGE: Language = Language {
    name: "c",
    // A folder with a go.mod is Go even if it carries a stray .c file.
    detect: |folder| !folder.join("go.mod").exists() && !sources(folder, "c").is_empty(),
    check_toolchain,
    build,
};

/// The Debian packages C functions need.
pub const APT_INSTALL: &str = "apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32";

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
    Ok(())
}

fn build(job: &Job<'_>) -> Result<(), String> {
    let folder = job.folder;
    let c_files = sources(folder, "c");
    let world = world_marker(folder, &c_files, "main.c")?;
    let work = folder.join("target").join("kfn");
    let bindings = work.join("bindings");
    generate_bindings(
        job.contract,
        &world,
        wit_bindgen_c::Opts::default().build(),
        &bindings,
    )?;

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
    // wit-bindgen names the files after the world in snake case.
    .arg(bindings.join(format!("{}.c", world.replace('-', "_"))))
    .arg(bindings.join(format!("{}_component_type.o", world.replace('-', "_"))))
    .current_dir(folder);
    run(&mut cc)?;

    // The object file carries the component type already.
    componentize(&core, None, job.wasm)
}

/// The C compiler: `$KFN_CC` if set, else `clang`. (Not `$CC`: that usually names the
/// host compiler, often gcc, which cannot target wasm.)
fn cc() -> String {
    std::env::var("KFN_CC")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "clang".into())
}
