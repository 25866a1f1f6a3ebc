//! Python functions: a folder with an `app.py` (and optionally a `requirements.txt` of
//! pure-Python packages), built with componentize-py, which bundles CPython, the app
//! and its packages into a component:
//! `componentize-py -d <repo>/wit -w <world> componentize app -p <folder> -o <wasm>`.
//!
//! `app.py` defines `class WitWorld(wit_world.WitWorld)` with the world's export
//! (`process`, `consume` or `supply`); the world is read from which of those it
//! defines, or from a line `# kfn-world: supplier` when that is ambiguous.
//!
//! componentize-py is installed once into a virtualenv in the repository's git-ignored
//! `target/kfn-tools/python-venv` (or `$KFN_TOOLS_DIR/python-venv`), never into the
//! system Python. Packages from `requirements.txt` go to the function's own
//! `target/python-deps`, as platform-independent wheels only: native extensions built
//! for Linux cannot run inside a WebAssembly component.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Language;

/// The componentize-py version kfn installs.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
const PYTHON_INSTALL: &str = "install Python 3.9+ with venv support (Debian/Ubuntu: `sudo apt-get install -y python3 python3-venv`)";
const EXPORTS: &[(&str, &str)] = &[
    ("function", "process"),
    ("consumer", "consume"),
    ("supplier", "supply"),
];

pub const LANGUAGE: Language = Language {
    name: "python",
    detect: |folder| folder.join("app.py").is_file(),
    check_toolchain,
    build,
};

/// Where the virtualenv with componentize-py lives for functions in `folder`.
fn venv_dir(folder: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("KFN_TOOLS_DIR") {
        return Ok(PathBuf::from(dir).join("python-venv"));
    }
    let wit = super::js::find_wit_dir(folder)?;
    let root = wit.parent().unwrap_or(&wit);
    Ok(root.join("target/kfn-tools/python-venv"))
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

fn check_toolchain(folder: &Path) -> Result<(), String> {
    let venv = venv_dir(folder)?;
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
    for line in source.lines().map(str::trim) {
        if let Some(named) = line.strip_prefix("# kfn-world:") {
            let named = named.trim();
            return EXPORTS
                .iter()
                .find(|(w, _)| *w == named)
                .map(|(w, _)| *w)
                .ok_or_else(|| {
                    format!(
                        "{}: unknown world '{named}' in `# kfn-world:` (function, consumer or supplier)",
                        app.display()
                    )
                });
        }
        for (world, export) in EXPORTS {
            if line.starts_with(&format!("def {export}(")) && !found.contains(world) {
                found.push(*world);
            }
        }
    }
    match found[..] {
        [world] => Ok(world),
        _ => Err(format!(
            "{}: cannot tell the world: define exactly one of `def process(self, msg)`, `def consume(self, msg)` or `def supply(self)` in class WitWorld, or add a line `# kfn-world: function` (or consumer / supplier)",
            app.display()
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

fn build(folder: &Path, _name: &str, wasm: &Path) -> Result<(), String> {
    let world = world(&folder.join("app.py"))?;
    let wit = super::js::find_wit_dir(folder)?;
    let venv = venv_dir(folder)?;
    let deps = install_requirements(folder, &venv)?;
    let mut cmd = Command::new(venv_bin(&venv, "componentize-py"));
    cmd.arg("-d")
        .arg(&wit)
        .args(["-w", world, "componentize", "app", "-p"])
        .arg(folder);
    if let Some(deps) = deps {
        cmd.arg("-p").arg(deps);
    }
    let status = cmd
        .arg("-o")
        .arg(std::path::absolute(wasm).unwrap_or_else(|_| wasm.to_path_buf()))
        .current_dir(folder)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run componentize-py: {e}"))?;
    if !status.success() || !wasm.exists() {
        return Err(format!(
            "componentize-py failed ({status}); fix the errors above and run `kfn build` again"
        ));
    }
    Ok(())
}
