//! javascript functions. (Not implemented yet: detection is off, so such folders are
//! reported as unsupported.)

use std::path::Path;

use super::Language;

pub const LANGUAGE: Language = Language {
    name: "javascript",
    detect: |_folder: &Path| false,
    check_toolchain: |_folder: &Path| Err("javascript is not supported yet".into()),
    build: |_folder: &Path, _name: &str, _wasm: &Path| Err("javascript is not supported yet".into()),
};
