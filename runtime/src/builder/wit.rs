//! The one place that knows where a project's WIT contract is.
//!
//! A project has one `wit/kfn.wit`, found by walking up from its functions folder
//! (`functions/../wit` in a `kfn init` project and in this repository). When there is
//! none, `kfn new` and `kfn build` put the contract this kfn speaks
//! ([`crate::assets::WIT`]) beside the functions folder and say so, so that every
//! toolchain finds it where it looks: kfn passes the folder to componentize-js,
//! componentize-py and the in-process C and Go binding generators, and a Rust
//! function's `wit_bindgen::generate!` names it by a relative path that `kfn new`
//! writes into its `lib.rs`.

use std::path::{Component, Path, PathBuf};

use wit_parser::{Resolve, WorldId};

use crate::assets;

/// A project's WIT folder (holding `kfn.wit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub dir: PathBuf,
}

impl Contract {
    /// The nearest `wit/kfn.wit` in `start` or a folder above it.
    pub fn find(start: &Path) -> Option<Contract> {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        start
            .ancestors()
            .map(|dir| dir.join("wit"))
            .find(|wit| wit.join("kfn.wit").is_file())
            .map(|dir| Contract { dir })
    }

    /// The contract of the functions in `functions_dir`: [`Contract::find`], else the
    /// embedded one written to `wit/kfn.wit` beside `functions_dir` (announced on
    /// stderr). A found contract of another version is used, with a warning.
    pub fn for_functions(functions_dir: &Path) -> Result<Contract, String> {
        if let Some(found) = Contract::find(functions_dir) {
            if let Some(warning) = found.version_warning() {
                eprintln!("kfn: warning: {warning}");
            }
            return Ok(found);
        }
        let functions_dir =
            std::path::absolute(functions_dir).unwrap_or_else(|_| functions_dir.to_path_buf());
        let root = functions_dir.parent().unwrap_or(&functions_dir);
        let contract = Contract::write(root)?;
        eprintln!(
            "kfn: wrote the function contract ({}) to {}",
            assets::WIT_PACKAGE,
            contract.file().display()
        );
        Ok(contract)
    }

    /// Writes the embedded contract to `<root>/wit/kfn.wit` (replacing what is there).
    pub fn write(root: &Path) -> Result<Contract, String> {
        let dir = root.join("wit");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("kfn.wit"), assets::WIT))
            .map_err(|e| format!("writing {}: {e}", dir.join("kfn.wit").display()))?;
        Ok(Contract { dir })
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("kfn.wit")
    }

    /// The contract's text (empty if unreadable: the toolchains then say why).
    pub fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap_or_default()
    }

    /// A warning when the project's contract is not the package this kfn runs.
    pub fn version_warning(&self) -> Option<String> {
        let text = self.text();
        let package = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .map(|p| p.trim_end_matches(';').trim().to_string())?;
        if package == assets::WIT_PACKAGE {
            return None;
        }
        // 0.1.x only adds to 0.1.0: what was built against an older one still loads.
        let older = package
            .strip_prefix("kfn:component@0.1.")
            .zip(assets::WIT_PACKAGE.strip_prefix("kfn:component@0.1."));
        Some(match older {
            Some((theirs, ours)) if theirs.parse::<u32>().ok() < ours.parse::<u32>().ok() => {
                format!(
                    "{} declares {package}, older than the {} this kfn runs: its functions load, but newer worlds (aggregator, batch-function) need the new contract; `kfn init --wit` writes it",
                    self.file().display(),
                    assets::WIT_PACKAGE
                )
            }
            _ => format!(
                "{} declares {package} but this kfn runs {}; functions built against it may not load. `kfn init --wit` writes the current contract",
                self.file().display(),
                assets::WIT_PACKAGE
            ),
        })
    }

    /// The parsed package and the id of `world` in it.
    pub fn world(&self, world: &str) -> Result<(Resolve, WorldId), String> {
        let mut resolve = Resolve::default();
        let (package, _) = resolve
            .push_path(&self.dir)
            .map_err(|e| format!("{}: {e:#}", self.dir.display()))?;
        let id = resolve
            .select_world(&[package], Some(world))
            .map_err(|e| format!("{}: world {world}: {e:#}", self.dir.display()))?;
        Ok((resolve, id))
    }

    /// How a function folder (`folder`, below the contract's parent) names the WIT
    /// folder relatively, e.g. `../../wit`: what a Rust function's
    /// `wit_bindgen::generate!` needs.
    pub fn relative_from(&self, folder: &Path) -> String {
        let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
        let root = self.dir.parent().unwrap_or(&self.dir);
        match folder.strip_prefix(root) {
            Ok(below) => {
                let ups = below
                    .components()
                    .filter(|c| matches!(c, Component::Normal(_)))
                    .count();
                let mut rel = "../".repeat(ups);
                rel.push_str("wit");
                rel
            }
            // Not below it: an absolute path still works on this machine.
            Err(_) => self.dir.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_is_found_above_or_put_beside_the_functions_folder() {
        let project = tempfile::tempdir().unwrap();
        let functions = project.path().join("app").join("functions");
        std::fs::create_dir_all(&functions).unwrap();
        assert_eq!(Contract::find(&functions), None);

        let contract = Contract::for_functions(&functions).unwrap();
        assert_eq!(contract.dir, project.path().join("app").join("wit"));
        assert_eq!(
            std::fs::read_to_string(contract.file()).unwrap(),
            assets::WIT
        );
        assert_eq!(contract.version_warning(), None);
        assert_eq!(Contract::find(&functions.join("f")), Some(contract.clone()));
        assert_eq!(contract.relative_from(&functions.join("f")), "../../wit");
        contract
            .world("function")
            .expect("the embedded contract parses");

        std::fs::write(contract.file(), "package kfn:component@9.9.9;\n").unwrap();
        assert!(contract.version_warning().unwrap().contains("9.9.9"));
    }
}
