//! What the recipes share: where kfn keeps the tools it installs, running a tool with
//! its output on the terminal *and* kept for the error message, turning a core module
//! into a component in-process, and the `kfn:world` marker of C and Go sources.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wit_component::{ComponentEncoder, StringEncoding};

use super::wit::Contract;
use crate::wasm::World;

/// Where kfn keeps the tools it installs (the componentize-py virtualenv): `$KFN_TOOLS_DIR`,
/// else `$XDG_CACHE_HOME/kfn/tools`, else `~/.cache/kfn/tools`. A per-user cache, not
/// a folder of the project or of kfn's source tree: an installed kfn has neither, and
/// one install serves every project.
pub fn tools_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("KFN_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("kfn").join("tools")
}

/// Runs `cmd` with its output on the terminal; an error names the command and carries
/// the part of its error output that says what is wrong (for the dashboard, which
/// has no terminal).
pub fn run(cmd: &mut Command) -> Result<(), String> {
    run_capturing(cmd).map(|_| ()).map_err(|f| f.message)
}

/// A tool that failed: the message for the user, and all it wrote to stderr.
pub struct Failed {
    pub message: String,
    pub stderr: String,
}

/// [`run`], returning what the command wrote to stderr (it is also shown).
pub fn run_capturing(cmd: &mut Command) -> Result<Vec<String>, Failed> {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failed {
            message: format!("cannot run `{shown}`: {e}"),
            stderr: String::new(),
        })?;
    let mut lines = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut terminal = std::io::stderr();
        for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
            let _ = terminal.write_all(&line);
            let _ = terminal.write_all(b"\n");
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
    }
    let status = child.wait().map_err(|e| Failed {
        message: format!("waiting for `{shown}`: {e}"),
        stderr: String::new(),
    })?;
    if status.success() {
        return Ok(lines);
    }
    let program = Path::new(cmd.get_program())
        .file_name()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let message = match excerpt(&lines) {
        Some(what) => format!("{program} failed ({status}):\n{what}"),
        None => format!("`{shown}` failed ({status})"),
    };
    Err(Failed {
        message,
        stderr: lines.join("\n"),
    })
}

/// The lines of a tool's error output worth showing where there is no terminal: from
/// the first line that reports an error (rustc, clang, go, node and Python all put
/// the file and line there or right below), at most a dozen; else the last dozen.
pub fn excerpt(lines: &[String]) -> Option<String> {
    const MAX: usize = 12;
    let clean: Vec<String> = lines
        .iter()
        .map(|l| strip_ansi(l).trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    if clean.is_empty() {
        return None;
    }
    let is_error = |l: &str| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("error")
            || lower.contains(": error")
            || lower.contains("syntax error")
            || lower.contains("error:")
            || l.contains("Error: ")
            || l.starts_with("Traceback")
    };
    let start = clean
        .iter()
        .position(|l| is_error(l))
        .unwrap_or(clean.len().saturating_sub(MAX));
    Some(
        clean[start..]
            .iter()
            .take(MAX)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `text` without ANSI escape sequences (colours, cursor moves).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The `wasi_snapshot_preview1` reactor adapter of the wasmtime kfn embeds, so the
/// adapter's WASI imports are ones the host provides. It turns a core module's
/// preview1 calls into WASI 0.2 ones.
const REACTOR_ADAPTER: &[u8] =
    wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

/// Core module (preview1 imports) -> component at `wasm`, in-process: what
/// `wasm-tools component embed` (when `embed` names the world; C objects carry their
/// component type already) and `wasm-tools component new --adapt` do.
pub fn componentize(
    core: &Path,
    embed: Option<(&Contract, &str)>,
    wasm: &Path,
) -> Result<(), String> {
    let mut module = std::fs::read(core).map_err(|e| format!("reading {}: {e}", core.display()))?;
    if let Some((contract, world)) = embed {
        let (resolve, world) = contract.world(world)?;
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .map_err(|e| {
                format!(
                    "embedding the component type into {}: {e:#}",
                    core.display()
                )
            })?;
    }
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| encoder.adapter("wasi_snapshot_preview1", REACTOR_ADAPTER))
        .and_then(|encoder| encoder.encode())
        .map_err(|e| format!("making a component of {}: {e:#}", core.display()))?;
    std::fs::write(wasm, component).map_err(|e| format!("writing {}: {e}", wasm.display()))
}

/// Generates `world`'s bindings with a wit-bindgen generator (what `wit-bindgen c` /
/// `wit-bindgen go` do) into a fresh `out` folder.
pub fn generate_bindings(
    contract: &Contract,
    world: &str,
    mut generator: Box<dyn wit_bindgen_core::WorldGenerator>,
    out: &Path,
) -> Result<(), String> {
    let (mut resolve, world_id) = contract.world(world)?;
    let mut files = wit_bindgen_core::Files::default();
    generator
        .generate(&mut resolve, world_id, &mut files)
        .map_err(|e| format!("generating the {world} bindings: {e:#}"))?;
    let _ = std::fs::remove_dir_all(out);
    for (name, contents) in files.iter() {
        let path = out.join(name);
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, contents))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The world named by a `// kfn:world NAME` line in one of `files`.
pub fn world_marker(folder: &Path, files: &[PathBuf], suggest: &str) -> Result<String, String> {
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
            if World::named(world).is_none() {
                return Err(format!(
                    "{}: `kfn:world {world}` names no world; use one of: {}",
                    file.display(),
                    World::names().join(", ")
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
            "{}: no world marker; add a line `// kfn:world function` (or {}) to {suggest}",
            folder.display(),
            World::names()[1..].join(", ")
        )
    })
}

/// The files ending in `.ext` under `folder`, sorted, skipping build output and
/// installed packages (`target/`, `node_modules/`) and hidden folders.
pub fn sources(folder: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = super::stamp::walk(folder)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_starts_at_the_first_error_without_colours() {
        let lines: Vec<String> = [
            "   Compiling f v0.1.0",
            "\u{1b}[1m\u{1b}[38;5;9merror[E0425]\u{1b}[0m: cannot find value `x` in this scope",
            " --> src/lib.rs:7:9",
            "",
            "error: could not compile `f`",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            excerpt(&lines).unwrap(),
            "error[E0425]: cannot find value `x` in this scope\n --> src/lib.rs:7:9\nerror: could not compile `f`"
        );
        assert_eq!(excerpt(&[]), None);
    }
}
