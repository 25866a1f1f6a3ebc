//! JavaScript functions: a folder with a `package.json` that says which world it
//! targets, built with componentize-js (the SpiderMonkey-based StarlingMonkey engine
//! plus the function's ES module, pre-initialised with wizer) into a component.
//!
//! ```json
//! {
//!   "type": "module",
//!   "main": "app.js",
//!   "kfn": { "world": "function" },
//!   "devDependencies": { "@bytecodealliance/componentize-js": "0.23.0" }
//! }
//! ```
//!
//! componentize-js is installed *in the function folder* by `npm ci` (or
//! `npm install` when there is no package-lock.json), so each function pins its own
//! toolchain version. The build runs
//! `node node_modules/.bin/componentize-js <main> --wit <project>/wit --world-name <world>
//! --disable http fetch-event -o <wasm>`: without wasi:http, whose imports kfn's linker
//! does not provide (it links WASI p2 clocks, random, stdio, and the kfn `host`).
//!
//! componentize-js reports a syntax error without its place ("failed to parse JS
//! source, encountered [1] errors"), so when it fails kfn asks `node --check` about
//! each source file and reports the first file, line and column that does not parse.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::tools::{run_capturing, sources, strip_ansi};
use super::{Job, Language};
use crate::wasm::World;

/// The componentize-js version the templates and examples pin.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// The oldest Node.js componentize-js (and its parser) runs on.
const MIN_NODE_MAJOR: u32 = 20;
const NODE_INSTALL: &str = "install Node.js 20 or newer with npm (Debian/Ubuntu with the NodeSource repository: `sudo apt-get install -y nodejs`; Debian 13+/Ubuntu 24.04+: `sudo apt-get install -y nodejs npm`)";
/// WASI features componentize-js includes by default that kfn guests do not need.
const DISABLED_FEATURES: &[&str] = &["http", "fetch-event"];

pub const LANGUAGE: Language = Language {
    name: "javascript",
    // Any package.json: `build` says what is missing if it has no "kfn" section.
    detect: |folder| folder.join("package.json").is_file(),
    check_toolchain,
    build,
};

fn manifest(folder: &Path) -> Result<serde_json::Value, String> {
    let path = folder.join("package.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}

fn check_toolchain(folder: &Path) -> Result<(), String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|_| format!("`node` was not found on PATH; {NODE_INSTALL}"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < MIN_NODE_MAJOR {
        return Err(format!(
            "Node.js {version} is too old for componentize-js; {NODE_INSTALL}"
        ));
    }
    if Command::new("npm").arg("--version").output().is_err() {
        return Err(format!("`npm` was not found on PATH; {NODE_INSTALL}"));
    }
    install_dependencies(folder)
}

/// Runs `npm ci` (or `npm install` without a lock file) when `node_modules` is missing
/// or older than the lock file. Output goes to the terminal.
fn install_dependencies(folder: &Path) -> Result<(), String> {
    let lock = folder.join("package-lock.json");
    let installed = folder.join("node_modules/.package-lock.json");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let up_to_date = cli(folder).exists()
        && match (mtime(&lock), mtime(&installed)) {
            (Some(lock), Some(installed)) => installed >= lock,
            (None, _) => true,
            (Some(_), None) => false,
        };
    if up_to_date {
        return Ok(());
    }
    let args: &[&str] = if lock.exists() {
        &["ci", "--no-audit", "--no-fund"]
    } else {
        &["install", "--no-audit", "--no-fund"]
    };
    eprintln!(
        "kfn build: installing {}'s build tools: npm {} (in {})",
        folder
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        args.join(" "),
        folder.display()
    );
    let status = Command::new("npm")
        .args(args)
        .current_dir(folder)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run npm: {e}; {NODE_INSTALL}"))?;
    if !status.success() {
        return Err(format!(
            "`npm {}` failed in {} ({status}); run it there yourself to see why",
            args[0],
            folder.display()
        ));
    }
    if !cli(folder).exists() {
        return Err(format!(
            "{}: package.json does not depend on componentize-js; add it with `npm install --save-dev --save-exact @bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}`",
            folder.display()
        ));
    }
    Ok(())
}

fn cli(folder: &Path) -> PathBuf {
    folder.join("node_modules/.bin/componentize-js")
}

fn build(job: &Job<'_>) -> Result<(), String> {
    let (folder, wasm) = (job.folder, job.wasm);
    let manifest = manifest(folder)?;
    let world = manifest["kfn"]["world"].as_str().unwrap_or_default();
    if World::named(world).is_none() {
        return Err(format!(
            "{}: set \"kfn\": {{\"world\": \"function\"}} (or {}) in package.json",
            folder.display(),
            World::names()[1..]
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    let main = manifest["main"].as_str().unwrap_or("app.js");
    if !folder.join(main).is_file() {
        return Err(format!(
            "{}: the module {main} (package.json \"main\") does not exist",
            folder.display()
        ));
    }
    // Another folder may have been the one whose toolchain was checked.
    install_dependencies(folder)?;
    let built = run_capturing(
        Command::new("node")
            .arg(cli(folder))
            .arg(main)
            .arg("--wit")
            .arg(&job.contract.dir)
            .args(["--world-name", world, "--disable"])
            .args(DISABLED_FEATURES)
            .arg("-o")
            .arg(std::path::absolute(wasm).unwrap_or_else(|_| wasm.to_path_buf()))
            .current_dir(folder),
    );
    match built {
        Ok(_) if wasm.exists() => Ok(()),
        Ok(_) => Err("componentize-js wrote no component".into()),
        Err(failed) => Err(syntax_error(folder).unwrap_or(failed.message)),
    }
}

/// The first syntax error in the folder's JavaScript, as `file:line:column: message`,
/// according to `node --check`.
fn syntax_error(folder: &Path) -> Option<String> {
    let mut files = sources(folder, "js");
    files.extend(sources(folder, "mjs"));
    files.into_iter().find_map(|file| {
        let out = Command::new("node")
            .arg("--check")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        (!out.status.success())
            .then(|| node_check_message(&file, &String::from_utf8_lossy(&out.stderr)))
    })
}

/// `node --check` prints `<file>:<line>`, the line, a caret under the column and then
/// `SyntaxError: <message>`; this makes one line of it.
fn node_check_message(file: &Path, stderr: &str) -> String {
    let stderr = strip_ansi(stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let line = lines.iter().find_map(|l| {
        let (path, n) = l.rsplit_once(':')?;
        (Path::new(path) == file).then(|| n.trim().parse::<u32>().ok())?
    });
    let column = lines
        .iter()
        .find(|l| l.trim_start().starts_with('^'))
        .map(|l| l.len() - l.trim_start().len() + 1);
    let message = lines
        .iter()
        .find(|l| l.contains("Error:"))
        .map_or("does not parse", |l| l.trim());
    let place = match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    };
    format!("{}{place}: {message}", file.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_check_output_becomes_file_line_column_and_message() {
        let file = Path::new("/p/functions/f/app.js");
        let stderr = "/p/functions/f/app.js:4\n  return [ msg.value;\n                   ^\n\nSyntaxError: Unexpected token ';'\n    at wrapSafe (node:internal/modules/cjs/loader:1469:18)\n\nNode.js v20.19.2\n";
        assert_eq!(
            node_check_message(file, stderr),
            "/p/functions/f/app.js:4:20: SyntaxError: Unexpected token ';'"
        );
    }
}
