//! Only tells cargo to rebuild kfn when the files it embeds change (see
//! `src/assets.rs`): `include_dir!` sees edits to files it embedded, but not files
//! added to or removed from the folders. Nothing is built here.

fn main() {
    for dir in ["templates", "../wit", "../static"] {
        println!("cargo::rerun-if-changed={dir}");
    }
}
