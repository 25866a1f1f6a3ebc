//! `kfn new`: a new function folder from a template in `runtime/templates/<lang>/<world>/`,
//! with `{{name}}` replaced by the function's name. A Rust function is also added to
//! the members of the functions workspace (`functions/Cargo.toml`) when there is one.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "'{0}' is not a valid function name: use 1-64 of a-z, 0-9 and '-', starting with a letter"
    )]
    BadName(String),
    #[error("{0} already exists; pick another name or delete it")]
    Exists(String),
    #[error("no {lang} template for a {world} (looked in {dir}); languages: {available}")]
    NoTemplate {
        lang: String,
        world: String,
        dir: String,
        available: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Where the templates are: beside the crate's sources (kfn runs from its repository).
pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// Creates `<dir>/<name>/` for a `world` function in `lang`; returns the folder.
pub fn new_function(
    templates: &Path,
    dir: &Path,
    world: &str,
    name: &str,
    lang: &str,
) -> Result<PathBuf, ScaffoldError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let template = templates.join(lang).join(world);
    if !template.is_dir() {
        let available = std::fs::read_dir(templates)
            .map(|rd| {
                let mut v: Vec<String> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v.join(", ")
            })
            .unwrap_or_default();
        return Err(ScaffoldError::NoTemplate {
            lang: lang.to_string(),
            world: world.to_string(),
            dir: template.display().to_string(),
            available,
        });
    }
    let target = dir.join(name);
    if target.exists() || dir.join(format!("{name}.wasm")).exists() {
        return Err(ScaffoldError::Exists(target.display().to_string()));
    }
    copy_tree(&template, &target, name)?;
    if lang == "rust" {
        add_workspace_member(&dir.join("Cargo.toml"), name)?;
    }
    Ok(target)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn copy_tree(from: &Path, to: &Path, name: &str) -> Result<(), ScaffoldError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst, name)?;
        } else {
            let bytes = std::fs::read(&src).map_err(io(&src))?;
            let out = match String::from_utf8(bytes) {
                Ok(text) => text.replace("{{name}}", name).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            std::fs::write(&dst, out).map_err(io(&dst))?;
        }
    }
    Ok(())
}

/// Adds `name` to `members = [...]` of a cargo workspace manifest, if there is one.
fn add_workspace_member(manifest: &Path, name: &str) -> Result<(), ScaffoldError> {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Ok(());
    };
    let Some(start) = text.find("members = [") else {
        return Ok(());
    };
    let insert_at = start + "members = [".len();
    let updated = format!("{}\"{name}\", {}", &text[..insert_at], &text[insert_at..]);
    std::fs::write(manifest, updated).map_err(io(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_function_is_created_and_joins_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"a\"]\n",
        )
        .unwrap();
        let folder =
            new_function(&templates_dir(), dir.path(), "function", "hello-fn", "rust").unwrap();
        let manifest = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"hello-fn\""), "{manifest}");
        assert!(
            !std::fs::read_to_string(folder.join("src/lib.rs"))
                .unwrap()
                .contains("{{name}}")
        );
        let ws = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert!(ws.contains("members = [\"hello-fn\", \"a\"]"), "{ws}");

        let again =
            new_function(&templates_dir(), dir.path(), "function", "hello-fn", "rust").unwrap_err();
        assert!(matches!(again, ScaffoldError::Exists(_)));
        assert!(matches!(
            new_function(&templates_dir(), dir.path(), "function", "Bad_Name", "rust"),
            Err(ScaffoldError::BadName(_))
        ));
        let err = new_function(&templates_dir(), dir.path(), "function", "x", "cobol")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rust"), "lists the languages: {err}");
    }
}
