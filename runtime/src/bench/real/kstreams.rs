//! The Kafka Streams contenders' program, `runtime/bench/kstreams` (Maven, Kafka
//! Streams 4.4.0 like the test oracle in `runtime/tests/kstreams`, so `~/.m2` already
//! has its artifacts): built into `target/kstreams-bench.jar`, with its dependency
//! jars in `target/lib/`, when the jar is missing or older than a source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::Context;

/// The project folder: under the working directory (the repository root) if it is
/// there, else in the checkout this kfn was built from.
pub fn project() -> PathBuf {
    let here = PathBuf::from("runtime/bench/kstreams");
    if here.join("pom.xml").exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/kstreams")
}

/// The jar, built first if needed.
pub fn jar() -> anyhow::Result<PathBuf> {
    let project = project();
    anyhow::ensure!(
        project.join("pom.xml").exists(),
        "{}/pom.xml is missing: run kfn bench from the kfn repository",
        project.display()
    );
    let jar = project.join("target/kstreams-bench.jar");
    if !fresh(&project, &jar) {
        build(&project)?;
        anyhow::ensure!(
            fresh(&project, &jar),
            "mvn package succeeded but {} is missing or stale",
            jar.display()
        );
    }
    Ok(std::fs::canonicalize(&jar)?)
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn newest_source(project: &Path) -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else {
                *newest = (*newest).max(mtime(&path));
            }
        }
    }
    let mut newest = mtime(&project.join("pom.xml"));
    walk(&project.join("src"), &mut newest);
    newest
}

fn fresh(project: &Path, jar: &Path) -> bool {
    let lib = std::fs::read_dir(project.join("target/lib")).is_ok_and(|mut d| d.next().is_some());
    lib && mtime(jar).is_some_and(|t| Some(t) > newest_source(project))
}

fn build(project: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(project.join("target"))?;
    let log = project.join("target/mvn.log");
    let started = Instant::now();
    // Offline first: enough when ~/.m2 has every artifact, and fails at once if not.
    for offline in [true, false] {
        eprintln!(
            "kfn bench: building {} (mvn{} package) ...",
            project.display(),
            if offline { " -o" } else { "" }
        );
        let mut cmd = Command::new("mvn");
        cmd.args(["-q", "-B", "-Dstyle.color=never"]);
        if offline {
            cmd.arg("-o");
        }
        let out = cmd.arg("package").current_dir(project).output().context(
            "cannot run mvn (the Kafka Streams contenders need Java 17+ and Maven: \
             apt-get install -y openjdk-17-jdk-headless maven; or pass --no-kafka-streams)",
        )?;
        let mut text = out.stdout;
        text.extend_from_slice(&out.stderr);
        std::fs::write(&log, &text)?;
        if out.status.success() {
            eprintln!(
                "kfn bench: built the Kafka Streams contender in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
    }
    anyhow::bail!(
        "`mvn package` in {} failed; its output: {}",
        project.display(),
        log.display()
    )
}
