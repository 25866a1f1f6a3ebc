//! A failed `kfn build` reaches the running app: a Python and a JavaScript syntax
//! error show on `/api/functions` as status `error` with the user's file and line,
//! while the version built before keeps processing records. And a `.wasm` that is not
//! what the last build wrote is rebuilt, however new it is.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{eventually, produce, producer, read_n, reader};

const LONG: Duration = Duration::from_secs(60);

fn kfn(args: &[&str], functions: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kfn"))
        .args(args)
        .arg("--dir")
        .arg(functions)
        .output()
        .expect("kfn runs")
}

/// Replaces line `n` (1-based) of `file`.
fn break_line(file: &Path, n: usize, with: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[n - 1] = with;
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_show_with_file_and_line_while_the_old_version_serves() {
    let dir = tempfile::tempdir().unwrap();
    let functions = dir.path().join("functions");
    std::fs::create_dir_all(&functions).unwrap();
    for (name, lang) in [("py", "python"), ("js", "js")] {
        let new = Command::new(env!("CARGO_BIN_EXE_kfn"))
            .args(["new", "function", name, "--lang", lang, "--dir"])
            .arg(&functions)
            .output()
            .unwrap();
        assert!(
            new.status.success(),
            "{}",
            String::from_utf8_lossy(&new.stderr)
        );
    }
    // The contract is put beside the functions folder (the temp dir has none above).
    assert!(dir.path().join("wit/kfn.wit").is_file());
    let built = kfn(&["build"], &functions);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let again = kfn(&["build"], &functions);
    let again = String::from_utf8_lossy(&again.stderr);
    assert!(again.matches("is up to date").count() == 2, "{again}");

    let yaml = "kafka: { brokers: embedded }\nbindings:\n  py: { function: py, in: P, out: P-out }\n  js: { function: js, in: J, out: J-out }\n";
    let app = common::start_app(dir.path(), yaml, &[]).await;
    let p = producer(&app.bootstrap);
    let (py_out, js_out) = (
        reader(&app.bootstrap, "P-out"),
        reader(&app.bootstrap, "J-out"),
    );
    produce(&p, "P", Some("k"), "one", None).await;
    produce(&p, "J", Some("k"), "one", None).await;
    assert_eq!(read_n(&py_out, 1, LONG).await[0].value, "one");
    assert_eq!(read_n(&js_out, 1, LONG).await[0].value, "one");

    // Line 9 of the Python template is `class WitWorld(...)`, line 8 of the JavaScript
    // one is inside `process`.
    break_line(
        &functions.join("py/app.py"),
        9,
        "class WitWorld(wit_world.WitWorld)",
    );
    break_line(&functions.join("js/app.js"), 8, "  return [ msg.value;");
    let failed = kfn(&["build"], &functions);
    assert!(!failed.status.success(), "the broken build fails");

    let expected = [
        (
            "py",
            format!("{}:9:", functions.join("py/app.py").display()),
        ),
        (
            "js",
            format!("{}:8:", functions.join("js/app.js").display()),
        ),
    ];
    let list = eventually(LONG, "both build errors on /api/functions", async || {
        let list = common::get_json(app.http_addr, "/api/functions").await;
        let shown = expected.iter().all(|(name, place)| {
            list.as_array().unwrap().iter().any(|f| {
                f["name"] == *name
                    && f["status"] == "error"
                    && f["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains(place.as_str()) && e.contains("still running"))
            })
        });
        shown.then_some(list)
    })
    .await;
    let py = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "py")
        .unwrap();
    assert!(
        py["last_error"].as_str().unwrap().contains("SyntaxError"),
        "{py}"
    );

    // The old versions still serve.
    produce(&p, "P", Some("k"), "two", None).await;
    produce(&p, "J", Some("k"), "two", None).await;
    assert_eq!(read_n(&py_out, 1, LONG).await[0].value, "two");
    assert_eq!(read_n(&js_out, 1, LONG).await[0].value, "two");
    app.shutdown().await;

    // A .wasm that is not what the last build wrote is rebuilt, however new it is.
    std::fs::write(
        functions.join("py/app.py"),
        std::fs::read_to_string(functions.join("py/app.py"))
            .unwrap()
            .replace(
                "class WitWorld(wit_world.WitWorld)\n",
                "class WitWorld(wit_world.WitWorld):\n",
            ),
    )
    .unwrap();
    let fixed = kfn(&["build"], &functions);
    assert!(!fixed.status.success(), "js is still broken");
    std::fs::write(
        functions.join("py.wasm"),
        b"garbage, newer than the sources",
    )
    .unwrap();
    let rebuilt = kfn(&["build"], &functions);
    let rebuilt = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(rebuilt.contains("py.wasm built in"), "{rebuilt}");
}
