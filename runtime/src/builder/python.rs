//! Python functions: a folder with an `app.py` (and optionally a `requirements.txt` of
//! pure-Python packages), built with componentize-py, which bundles CPython, the app
//! and its packages into a component:
//! `componentize-py -d <project>/wit -w <world> componentize app -p <folder> -o <wasm>`.
//!
//! `app.py` defines `class WitWorld(wit_world.WitWorld)` with the world's export
//! (`process`, `consume` or `supply`); the world is read from which of those it
//! defines, or from a line `# kfn-world: supplier` when that is ambiguous.
//!
//! componentize-py is installed once into a virtualenv in kfn's tool cache
//! (`~/.cache/kfn/tools/python-venv`, see [`tools_dir`]), never into the system Python. Packages from `requirements.txt` go to the function's own
//! `target/python-deps`, as platform-independent wheels only: native extensions built
//! for Linux cannot run inside a WebAssembly component.
//!
//! componentize-py runs the app inside its own CPython, where the function's folder
//! is `/0` (and the packages `/1`); a failure's traceback is translated back to the
//! user's paths and summed up as `file:line: error`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::tools::{run_capturing, strip_ansi, tools_dir};
use super::{Job, Language};
use crate::wasm::{WORLDS, World};

/// The componentize-py version kfn installs.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
const PYTHON_INSTALL: &str = "install Python 3.9+ with venv support (Debian/Ubuntu: `sudo apt-get install -y python3 python3-venv`)";

pub const LANGUAGE: Language = Language {
    name: "python",
    detect: |folder| folder.join("app.py").is_file(),
    check_toolchain,
    build,
};

/// The virtualenv with componentize-py.
fn venv_dir() -> PathBuf {
    tools_dir().join("python-venv")
}

fn venv_bin(venv: &Path, tool: &str) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join(format!("{tool}.exe"))
    } else {
        venv.join("bin").join(tool)
    }
}

fn installed_version(venv: &Path) -> Option<String> {
    let out = Command::new(venv_bin(venv, "componentize-py"))
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "componentize-py 0.25.1"
    text.split_whitespace().nth(1).map(str::to_string)
}

fn check_toolchain(_folder: &Path) -> Result<(), String> {
    let venv = venv_dir();
    if installed_version(&venv).as_deref() == Some(COMPONENTIZE_PY_VERSION) {
        return Ok(());
    }
    let pip_install = format!(
        "{} -m pip install componentize-py=={COMPONENTIZE_PY_VERSION}",
        venv_bin(&venv, "python").display()
    );
    if !venv_bin(&venv, "python").exists() {
        let python = ["python3", "python"]
            .into_iter()
            .find(|p| Command::new(p).arg("--version").output().is_ok())
            .ok_or_else(|| format!("`python3` was not found on PATH; {PYTHON_INSTALL}"))?;
        eprintln!(
            "kfn build: creating a Python virtualenv for componentize-py (once): {python} -m venv {}",
            venv.display()
        );
        let ok = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !venv_bin(&venv, "python").exists() {
            let _ = std::fs::remove_dir_all(&venv);
            return Err(format!(
                "`{python} -m venv {}` failed; {PYTHON_INSTALL}",
                venv.display()
            ));
        }
    }
    eprintln!("kfn build: installing componentize-py (once): {pip_install}");
    let ok = Command::new(venv_bin(&venv, "python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
        ])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match installed_version(&venv) {
        Some(v) if ok && v == COMPONENTIZE_PY_VERSION => Ok(()),
        _ => Err(format!(
            "installing componentize-py failed; run `{pip_install}` yourself to see why"
        )),
    }
}

/// The world `app.py` targets: a `# kfn-world: NAME` line, else the one world whose
/// export it defines.
fn world(app: &Path) -> Result<&'static str, String> {
    let source = std::fs::read_to_string(app).map_err(|e| format!("{}: {e}", app.display()))?;
    let mut found = Vec::new();
    for raw in source.lines() {
        let line = raw.trim();
        if let Some(named) = line.strip_prefix("# kfn-world:") {
            let named = named.trim();
            return World::named(named).map(World::name).ok_or_else(|| {
                format!(
                    "{}: unknown world '{named}' in `# kfn-world:` ({})",
                    app.display(),
                    World::names().join(", ")
                )
            });
        }
        for w in &WORLDS {
            // WIT's `process-batch` is Python's `process_batch`.
            let def = format!("def {}(", w.export.replace('-', "_"));
            // A method (indented: in `class WitWorld`), not a module-level helper
            // that happens to share the name.
            let method = raw.starts_with(char::is_whitespace);
            if method && line.starts_with(&def) && !found.contains(&w.name) {
                found.push(w.name);
            }
        }
    }
    // `finish` is a common name: it says aggregator only beside the other three.
    let aggregator = ["def init(", "def add(", "def merge("]
        .iter()
        .all(|d| source.lines().any(|l| l.trim().starts_with(d)));
    if !aggregator {
        found.retain(|w| *w != World::Aggregator.name());
    }
    match found[..] {
        [world] => Ok(world),
        _ => Err(format!(
            "{}: cannot tell the world: define exactly one of {} in class WitWorld, or add a line `# kfn-world: function` (or {})",
            app.display(),
            WORLDS
                .iter()
                .map(|w| format!("`{}`", w.python))
                .collect::<Vec<_>>()
                .join(", "),
            World::names()[1..].join(" / ")
        )),
    }
}

/// Installs `requirements.txt` into `folder/target/python-deps` when it changed;
/// returns the folder to add to the module path, if any.
fn install_requirements(folder: &Path, venv: &Path) -> Result<Option<PathBuf>, String> {
    let requirements = folder.join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap_or_default();
    if !wanted
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#'))
    {
        return Ok(None);
    }
    let deps = folder.join("target/python-deps");
    let stamp = deps.join(".kfn-installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(Some(deps));
    }
    let _ = std::fs::remove_dir_all(&deps);
    eprintln!(
        "kfn build: installing {} into {}",
        requirements.display(),
        deps.display()
    );
    let status = Command::new(venv_bin(venv, "python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--platform",
            "any",
            "--target",
        ])
        .arg(&deps)
        .arg("-r")
        .arg(&requirements)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() {
        return Err(format!(
            "installing {} failed ({status}); only pure-Python packages (py3-none-any wheels) can run inside a component",
            requirements.display()
        ));
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(Some(deps))
}

fn build(job: &Job<'_>) -> Result<(), String> {
    let (folder, wasm) = (job.folder, job.wasm);
    let world = world(&folder.join("app.py"))?;
    let venv = venv_dir();
    let deps = install_requirements(folder, &venv)?;
    let mut cmd = Command::new(venv_bin(&venv, "componentize-py"));
    cmd.arg("-d")
        .arg(&job.contract.dir)
        .args(["-w", world, "componentize", "app", "-p"])
        .arg(folder);
    let mut mounts = vec![folder.to_path_buf()];
    if let Some(deps) = deps {
        cmd.arg("-p").arg(&deps);
        mounts.push(deps);
    }
    let built = run_capturing(
        cmd.arg("-o")
            .arg(std::path::absolute(wasm).unwrap_or_else(|_| wasm.to_path_buf()))
            .current_dir(folder),
    );
    match built {
        Ok(_) if wasm.exists() => Ok(()),
        Ok(_) => Err("componentize-py wrote no component".into()),
        Err(failed) => Err(traceback_summary(&failed.stderr, &mounts).unwrap_or(failed.message)),
    }
}

/// From componentize-py's failure output: the innermost `File "...", line N` of the
/// traceback (in the user's files, `/0/...` mapped back to `mounts[0]`, ...) and the
/// exception line, as `file:line: Error: message` followed by the offending line.
fn traceback_summary(output: &str, mounts: &[PathBuf]) -> Option<String> {
    let output = strip_ansi(output);
    let unmount = |path: &str| -> String {
        for (i, mount) in mounts.iter().enumerate() {
            if let Some(rest) = path.strip_prefix(&format!("/{i}/")) {
                return mount.join(rest).display().to_string();
            }
        }
        path.to_string()
    };
    let lines: Vec<&str> = output.lines().collect();
    let (at, file, line) = lines.iter().enumerate().rev().find_map(|(i, l)| {
        // Usually the whole line; componentize-py may put its exception's name first.
        let rest = &l[l.find("File \"")? + "File \"".len()..];
        let (file, rest) = rest.split_once('"')?;
        let line = rest.trim_start_matches(',').trim().strip_prefix("line ")?;
        let line: String = line.chars().take_while(char::is_ascii_digit).collect();
        let user = mounts
            .iter()
            .enumerate()
            .any(|(i, _)| file.starts_with(&format!("/{i}/")));
        user.then(|| (i, unmount(file), line))
    })?;
    let error = lines[at..].iter().map(|l| l.trim()).find(|l| {
        !l.contains("File \"")
            && l.split_once(':').is_some_and(|(kind, _)| {
                (kind.ends_with("Error") || kind.ends_with("Exception")) && !kind.contains(' ')
            })
    })?;
    let code = lines
        .get(at + 1)
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('^') && !l.starts_with("File "));
    Some(match code {
        Some(code) => format!("{file}:{line}: {error}\n    {code}"),
        None => format!("{file}:{line}: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_told_by_the_methods_of_the_class_not_module_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.py");
        let world_of = |source: &str| {
            std::fs::write(&app, source).unwrap();
            world(&app)
        };
        let batch = "class WitWorld(wit_world.WitWorld):\n    def process_batch(self, msgs):\n        return [process(m) for m in msgs]\n\ndef process(msg):\n    return Ok([])\n";
        assert_eq!(world_of(batch), Ok("batch-function"));
        let one =
            "class WitWorld(wit_world.WitWorld):\n    def process(self, msg):\n        return []\n";
        assert_eq!(world_of(one), Ok("function"));
        let both = "class WitWorld:\n    def process(self, msg): ...\n    def process_batch(self, msgs): ...\n";
        assert!(
            world_of(both)
                .unwrap_err()
                .contains("cannot tell the world")
        );
        assert_eq!(
            world_of(&format!("# kfn-world: supplier\n{one}")),
            Ok("supplier")
        );
    }

    #[test]
    fn a_traceback_is_summed_up_in_the_users_file_and_line() {
        // What componentize-py 0.25.1 prints (shortened).
        let output = "Traceback (most recent call last):\n  File \"/venv/bin/componentize-py\", line 8, in <module>\n    sys.exit(script())\nAssertionError:   File \"/0/app.py\", line 7\n    def process(self msg):\n                     ^^^\nSyntaxError: invalid syntax\nCaused by:\n    SyntaxError: invalid syntax (app.py, line 7)\n";
        let mounts = [PathBuf::from("/p/functions/f")];
        assert_eq!(
            traceback_summary(output, &mounts).unwrap(),
            "/p/functions/f/app.py:7: SyntaxError: invalid syntax\n    def process(self msg):"
        );
        assert_eq!(traceback_summary("no traceback here", &mounts), None);
    }
}
