//! Which functions exist: a name exists if `<dir>/NAME.wasm` is a file or `<dir>/NAME/`
//! is a folder (a source folder `kfn build` can build).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The functions folder as the user wrote it and as resolved on disk.
#[derive(Debug)]
pub struct Catalog {
    /// As written in kfn.yaml (for messages), without a trailing `/`.
    shown: String,
    /// Resolved against the yaml file's folder.
    dir: PathBuf,
}

impl Catalog {
    /// A catalog of `dir`, or the message to show when it is not a folder.
    pub fn open(shown: &str, dir: &Path) -> Result<Catalog, String> {
        let shown = match shown.trim_end_matches('/') {
            "" => shown.to_owned(),
            trimmed => trimmed.to_owned(),
        };
        if !dir.is_dir() {
            return Err(format!(
                "functions folder '{shown}' not found (relative to this file's folder): create it or fix functions.dir"
            ));
        }
        Ok(Catalog {
            shown,
            dir: dir.to_owned(),
        })
    }

    /// `Ok` if the function exists, else the message naming what was looked for.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if self.dir.join(format!("{name}.wasm")).is_file() || self.dir.join(name).is_dir() {
            return Ok(());
        }
        let available = self.available();
        let available = if available.is_empty() {
            format!(
                "'{}' has no .wasm files or function folders yet",
                self.shown
            )
        } else {
            format!(
                "available: {}",
                available.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        Err(format!(
            "function '{name}' not found: no {dir}/{name}.wasm and no {dir}/{name}/ source folder ({available})",
            dir = self.shown
        ))
    }

    /// Every function name in the folder. Hidden folders and Cargo's `target/` are left
    /// out: the functions folder is a Cargo workspace of its own.
    fn available(&self) -> BTreeSet<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return BTreeSet::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let is_dir = entry.file_type().ok()?.is_dir();
                if is_dir {
                    (!name.starts_with('.') && name != "target").then_some(name)
                } else {
                    name.strip_suffix(".wasm").map(str::to_owned)
                }
            })
            .collect()
    }
}
