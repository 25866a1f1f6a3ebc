//! What an installed `kfn` carries inside the binary, so it works in any folder with
//! no source tree: the WIT contract, the templates of `kfn new` and `kfn init`, and
//! the dashboard.
//!
//! They are embedded from the repository at build time (`include_dir!`; `build.rs`
//! makes new files count), which works for `cargo install --path runtime` and for
//! `cargo install --git`, both of which build inside a checkout.

use include_dir::{Dir, include_dir};

/// `wit/kfn.wit`: the contract between the runtime and functions.
pub const WIT: &str = include_str!("../../wit/kfn.wit");

/// The WIT package name and version, as in the file's `package` line.
pub const WIT_PACKAGE: &str = "kfn:component@0.1.2";

/// `runtime/templates`: `<language>/<world>/` for `kfn new`, `project/` for `kfn init`.
pub static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// `static/`: the dashboard.
pub static DASHBOARD: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../static");

/// The content type of a dashboard file, by extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("md" | "txt" | "LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_contract_is_the_package_it_names() {
        assert!(
            WIT.contains(&format!("package {WIT_PACKAGE};")),
            "update WIT_PACKAGE to match wit/kfn.wit"
        );
        assert!(DASHBOARD.get_file("index.html").is_some());
        assert!(TEMPLATES.get_dir("rust/function").is_some());
    }
}
