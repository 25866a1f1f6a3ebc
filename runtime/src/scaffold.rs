//! `kfn init` and `kfn new`: a project, or a function folder, from the templates
//! inside the binary ([`assets::TEMPLATES`]).
//!
//! - `kfn init [DIR]`: `kfn.yaml` (a commented example), `functions/` (a Cargo
//!   workspace for Rust functions), the `wit/` contract, `kfn.schema.json` (editor
//!   completion for kfn.yaml) and a `.gitignore`; `project/` among the templates.
//! - `kfn new WORLD NAME --lang L`: `<functions>/NAME/` from `<lang>/<world>/`, with
//!   `{{name}}` replaced by the function's name and `{{wit}}` by the relative path to
//!   the project's contract (what a Rust function's `generate!` reads). The contract
//!   is put beside the functions folder when the project has none
//!   ([`Contract::for_functions`]). A Rust function also joins the members of the
//!   functions workspace (`functions/Cargo.toml`) when there is one.

use std::path::{Path, PathBuf};

use include_dir::Dir;

use crate::assets;
use crate::builder::Contract;

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0}")]
    BadName(String),
    #[error("{0} already exists; pick another name or delete it")]
    Exists(String),
    #[error("no {lang} template for a {world}; languages: {available}")]
    NoTemplate {
        lang: String,
        world: String,
        available: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Contract(String),
}

/// The template folder of `kfn init`; every other top-level folder is a language.
const PROJECT: &str = "project";

/// The languages `kfn new` has templates for.
pub fn languages() -> Vec<String> {
    let mut langs: Vec<String> = assets::TEMPLATES
        .dirs()
        .filter_map(|d| d.path().file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n != PROJECT)
        .collect();
    langs.sort();
    langs
}

/// Creates `<dir>/<name>/` for a `world` function in `lang`; returns the folder.
pub fn new_function(
    dir: &Path,
    world: &str,
    name: &str,
    lang: &str,
) -> Result<PathBuf, ScaffoldError> {
    // The config's rule for function names, and a letter first: a Rust crate, a Go
    // package or a Python module cannot start with a digit.
    crate::config::check_name("function", name)
        .and_then(|()| {
            if name.starts_with(|c: char| c.is_ascii_alphabetic()) && name.len() <= 64 {
                Ok(())
            } else {
                Err(format!(
                    "invalid function name '{name}': start with a letter and use at most 64 characters"
                ))
            }
        })
        .map_err(ScaffoldError::BadName)?;
    let template = assets::TEMPLATES
        .get_dir(format!("{lang}/{world}"))
        .filter(|_| lang != PROJECT)
        .ok_or_else(|| ScaffoldError::NoTemplate {
            lang: lang.to_string(),
            world: world.to_string(),
            available: languages().join(", "),
        })?;
    let target = dir.join(name);
    if target.exists() || dir.join(format!("{name}.wasm")).exists() {
        return Err(ScaffoldError::Exists(target.display().to_string()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let contract = Contract::for_functions(dir).map_err(ScaffoldError::Contract)?;
    let wit = contract.relative_from(&target);
    copy_tree(template, &target, &[("{{name}}", name), ("{{wit}}", &wit)])?;
    if lang == "rust" {
        add_workspace_member(&dir.join("Cargo.toml"), name)?;
    }
    Ok(target)
}

/// Creates a project in `dir` (which may exist, but must not hold a kfn.yaml).
pub fn init(dir: &Path) -> Result<(), ScaffoldError> {
    let config = dir.join("kfn.yaml");
    if config.exists() {
        return Err(ScaffoldError::Exists(config.display().to_string()));
    }
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let app = application_id(
        &absolute
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let project = assets::TEMPLATES
        .get_dir(PROJECT)
        .expect("the project template is embedded");
    copy_tree(project, dir, &[("{{app}}", &app)])?;
    Contract::write(dir).map_err(ScaffoldError::Contract)?;
    let schema = dir.join("kfn.schema.json");
    std::fs::write(&schema, crate::config::json_schema()).map_err(io(&schema))
}

/// A consumer group prefix from a folder name: lower case, `[a-z0-9-]`.
fn application_id(folder: &str) -> String {
    let mut id = String::new();
    for c in folder.chars() {
        match c {
            'a'..='z' | '0'..='9' => id.push(c),
            'A'..='Z' => id.push(c.to_ascii_lowercase()),
            _ if !id.is_empty() && !id.ends_with('-') => id.push('-'),
            _ => {}
        }
    }
    let id = id.trim_end_matches('-');
    if id.is_empty() {
        "kfn-app".into()
    } else {
        id.into()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the files of `template` under `to`, with each `(placeholder, value)` replaced
/// in text files.
fn copy_tree(template: &Dir<'_>, to: &Path, replace: &[(&str, &str)]) -> Result<(), ScaffoldError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for file in template.files() {
        let rel = file
            .path()
            .strip_prefix(template.path())
            .unwrap_or(file.path());
        let dst = to.join(rel);
        let out = match std::str::from_utf8(file.contents()) {
            Ok(text) => replace
                .iter()
                .fold(text.to_string(), |t, (from, with)| t.replace(from, with))
                .into_bytes(),
            Err(_) => file.contents().to_vec(),
        };
        std::fs::write(&dst, out).map_err(io(&dst))?;
    }
    for sub in template.dirs() {
        let rel = sub
            .path()
            .strip_prefix(template.path())
            .unwrap_or(sub.path());
        copy_tree(sub, &to.join(rel), replace)?;
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
    let rest = &text[insert_at..];
    let separator = if rest.trim_start().starts_with(']') {
        ""
    } else {
        ", "
    };
    let updated = format!("{}\"{name}\"{separator}{rest}", &text[..insert_at]);
    std::fs::write(manifest, updated).map_err(io(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_function_is_created_against_the_projects_contract_and_joins_the_workspace() {
        let project = tempfile::tempdir().unwrap();
        let dir = project.path().join("functions");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = [\"a\"]\n").unwrap();
        let folder = new_function(&dir, "function", "hello-fn", "rust").unwrap();
        let manifest = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"hello-fn\""), "{manifest}");
        let lib = std::fs::read_to_string(folder.join("src/lib.rs")).unwrap();
        assert!(!lib.contains("{{"), "{lib}");
        assert!(lib.contains("path: \"../../wit\""), "{lib}");
        assert!(project.path().join("wit/kfn.wit").is_file());
        let ws = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(ws.contains("members = [\"hello-fn\", \"a\"]"), "{ws}");

        let again = new_function(&dir, "function", "hello-fn", "rust").unwrap_err();
        assert!(matches!(again, ScaffoldError::Exists(_)));
        assert!(matches!(
            new_function(&dir, "function", "Bad.Name", "rust"),
            Err(ScaffoldError::BadName(_))
        ));
        assert!(matches!(
            new_function(&dir, "function", "9lives", "rust"),
            Err(ScaffoldError::BadName(_))
        ));
        let err = new_function(&dir, "function", "x", "cobol")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rust") && !err.contains(PROJECT), "{err}");
    }

    #[test]
    fn every_language_has_a_template_for_every_world() {
        for lang in languages() {
            for world in crate::wasm::World::names() {
                assert!(
                    assets::TEMPLATES
                        .get_dir(format!("{lang}/{world}"))
                        .is_some(),
                    "no templates/{lang}/{world}/"
                );
            }
        }
        assert_eq!(languages(), ["c", "go", "js", "python", "rust"]);
    }

    #[test]
    fn init_makes_a_project_whose_config_is_valid() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("My Demo");
        init(&dir).unwrap();
        for file in [
            "kfn.yaml",
            ".gitignore",
            "wit/kfn.wit",
            "kfn.schema.json",
            "functions/Cargo.toml",
        ] {
            assert!(dir.join(file).is_file(), "{file} missing");
        }
        let config = crate::config::Config::load(&dir.join("kfn.yaml")).unwrap();
        assert_eq!(config.kafka.application_id, "my-demo");
        assert!(matches!(init(&dir), Err(ScaffoldError::Exists(_))));

        let folder = new_function(&dir.join("functions"), "function", "f", "rust").unwrap();
        let ws = std::fs::read_to_string(dir.join("functions/Cargo.toml")).unwrap();
        assert!(ws.contains("members = [\"f\"]"), "{ws}");
        assert!(folder.join("Cargo.toml").is_file());
    }
}
