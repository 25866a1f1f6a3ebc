//! An installed `kfn` in a folder of its own, as a new user has it: the sources are
//! copied aside, installed from there with `cargo install --root <tmp>`, and the copy
//! is deleted, so nothing the binary needs can come from a source tree. Then, in
//! another temporary folder:
//! `kfn init demo && cd demo && kfn new function f --lang python && kfn new function g
//! --lang rust && kfn new supplier s --lang go && kfn build && kfn up`, and the
//! dashboard is served; then the three are bound (s → f → g) and records flow.
//!
//! Ignored by default (it compiles kfn once more, a few minutes): `scripts/test.sh`
//! runs it with `--ignored`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `cargo install` needs of the repository: the workspace and the crate (whose
/// build embeds `wit/` and `static/`).
const SOURCES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain.toml",
    "wit",
    "static",
    "runtime/Cargo.toml",
    "runtime/build.rs",
    "runtime/src",
    "runtime/templates",
    "runtime/reference",
];

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let name = entry.file_name();
            if name == "target" || name == "node_modules" {
                continue;
            }
            copy(&entry.path(), &to.join(name));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// Runs `cmd` to success, returning its stderr (shown on failure).
fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{shown} failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A command of the installed kfn, in `dir`, with nothing of cargo's in its
/// environment (as from a user's shell).
fn kfn(bin: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_MANIFEST_DIR")
        .env("KFN_LOG", "info");
    cmd
}

/// `kfn up` running until dropped; its dashboard and broker addresses.
struct Up {
    child: Child,
    dashboard: String,
    bootstrap: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        // SIGTERM: a clean stop (as Ctrl-C).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn up(bin: &Path, dir: &Path) -> Up {
    let mut child = kfn(bin, dir)
        .args(["up", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kfn up starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut dashboard, mut bootstrap) = (None, None);
    for line in stdout.by_ref().map_while(Result::ok) {
        println!("kfn up: {line}");
        if let Some(rest) = line.split("dashboard: http://").nth(1) {
            dashboard = Some(rest.trim().to_string());
        }
        if let Some(rest) = line.split("Kafka bootstrap: ").nth(1) {
            bootstrap = rest.split_whitespace().next().map(str::to_string);
        }
        if dashboard.is_some() {
            break;
        }
    }
    // Keep reading: kfn must not write into a closed pipe.
    std::thread::spawn(move || {
        for line in stdout.map_while(Result::ok) {
            println!("kfn up: {line}");
        }
    });
    Up {
        child,
        dashboard: dashboard.expect("kfn up prints its dashboard address"),
        bootstrap: bootstrap.expect("kfn up prints the broker's address"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "installs kfn with cargo install (minutes): scripts/test.sh runs it"]
async fn an_installed_kfn_makes_builds_and_runs_a_project_in_any_folder() {
    let repo = common::repo_root();
    let work = tempfile::tempdir().unwrap();

    // Install from a copy of the sources, then delete the copy.
    let src = work.path().join("kfn-src");
    for path in SOURCES {
        copy(&repo.join(path), &src.join(path));
    }
    let root = work.path().join("root");
    let started = Instant::now();
    run(Command::new(env!("CARGO"))
        .args(["install", "--locked", "--debug", "--quiet", "--path"])
        .arg(src.join("runtime"))
        .arg("--root")
        .arg(&root)
        // The dependencies are the ones this test was built with; the copy builds into
        // target/debug/kfn too (from the same sources).
        .env("CARGO_TARGET_DIR", repo.join("target")));
    println!("cargo install: {:.0} s", started.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&src).unwrap();
    let bin = root.join("bin").join("kfn");

    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    run(kfn(&bin, &home).args(["init", "demo"]));
    let demo = home.join("demo");
    for (world, name, lang) in [
        ("function", "f", "python"),
        ("batch-function", "g", "rust"),
        ("supplier", "s", "go"),
    ] {
        run(kfn(&bin, &demo).args(["new", world, name, "--lang", lang]));
    }
    let built = run(kfn(&bin, &demo)
        .arg("build")
        // Rust guests' dependencies are compiled once per checkout, not per run.
        .env(
            "CARGO_TARGET_DIR",
            repo.join("target").join("installed-guests"),
        ));
    print!("{built}");
    let go_seconds: f64 = built
        .lines()
        .find_map(|l| {
            let rest = l.split("functions/s.wasm built in ").nth(1)?;
            rest.trim_end_matches(" s").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no build time for s in:\n{built}"));
    assert!(
        go_seconds < 60.0,
        "the Go supplier took {go_seconds} s to build (no tools to compile first: under a minute)"
    );

    // The literal sequence: `kfn up` serves the dashboard from inside the binary.
    {
        let app = up(&bin, &demo);
        let addr = app.dashboard.parse().unwrap();
        let (status, page) = common::http(addr, "GET", "/", "").await;
        assert!(
            status == 200 && page.contains("<title>"),
            "{status}: {page}"
        );
        let (status, script) = common::http(addr, "GET", "/static/app.js", "").await;
        assert!(status == 200 && script.contains("function"), "{status}");
        let info = common::get_json(addr, "/api/info").await;
        assert_eq!(info["broker"], "embedded");
    }

    // Bound together, the three move records: s (Go) → f (Python) → g (Rust).
    let config = demo.join("kfn.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap().replace(
        "bindings: {}",
        "bindings:\n  s: { supplier: s, every: 200ms, out: supplied }\n  f: { function: f, in: supplied, out: mid }\n  g: { function: g, in: mid, out: done }",
    );
    std::fs::write(&config, yaml).unwrap();
    run(kfn(&bin, &demo).arg("validate"));
    let app = up(&bin, &demo);
    let done = common::read_n(
        &common::reader(&app.bootstrap, "done"),
        3,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        done.iter().all(|r| r.value.contains("\"source\":\"s\"")),
        "the supplier's records, through both functions: {done:?}"
    );
    let addr = app.dashboard.parse().unwrap();
    let functions = common::get_json(addr, "/api/functions").await;
    for name in ["f", "g", "s"] {
        let f = functions
            .as_array()
            .and_then(|l| l.iter().find(|f| f["name"] == name))
            .unwrap_or_else(|| panic!("{name} missing: {functions}"));
        assert_eq!(f["status"], "ready", "{f}");
    }
    drop(app);
}
