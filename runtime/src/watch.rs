//! The watcher behind hot reload: `functions/*.wasm` (load on create/change, unload
//! on delete), `kfn.yaml` (re-validate; valid, the app applies it live, see
//! `app::live`; invalid, its errors are reported) and the build records of
//! `kfn build` (`functions/.kfn/builds/NAME.json`: a failed build shows on the
//! function's status, with the old version still running). Events are debounced,
//! because editors and compilers write a file in several steps.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::observe::{EventKind, Events};
use crate::wasm::Registry;

/// Quiet time after the last file event before acting on a batch.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches until `shutdown`. Errors starting the watcher are returned; later ones are
/// logged.
pub fn spawn(
    functions_dir: PathBuf,
    config_path: Option<PathBuf>,
    registry: Arc<Registry>,
    events: Events,
    reconfigure: Option<mpsc::UnboundedSender<(String, Config)>>,
    shutdown: CancellationToken,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            // Reads are reported too (kfn's own loads among them): only changes count.
            Ok(event)
                if !matches!(
                    event.kind,
                    notify::EventKind::Access(_) | notify::EventKind::Other
                ) =>
            {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watcher error"),
        })?;
    watcher.watch(&functions_dir, RecursiveMode::NonRecursive)?;
    // Created here if missing, so that the first `kfn build` is seen too.
    let builds = std::path::absolute(crate::builder::stamp::dir(&functions_dir))
        .unwrap_or_else(|_| crate::builder::stamp::dir(&functions_dir));
    if std::fs::create_dir_all(&builds).is_ok() {
        watcher.watch(&builds, RecursiveMode::NonRecursive)?;
    }
    let config_path = config_path.and_then(|p| std::path::absolute(p).ok());
    if let Some(parent) = config_path.as_ref().and_then(|p| p.parent()) {
        watcher.watch(parent, RecursiveMode::NonRecursive)?;
    }

    Ok(tokio::spawn(async move {
        let _watcher = watcher; // dropping it stops the notifications
        let functions_dir = std::path::absolute(&functions_dir).unwrap_or(functions_dir);
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                p = rx.recv() => match p { Some(p) => p, None => return },
            };
            let mut batch = BTreeSet::from([first]);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    p = rx.recv() => match p { Some(p) => { batch.insert(p); } None => return },
                    () = tokio::time::sleep(DEBOUNCE) => break,
                }
            }
            for path in batch {
                let path = std::path::absolute(&path).unwrap_or(path);
                if Some(&path) == config_path.as_ref() {
                    revalidate(&path, &events, reconfigure.as_ref());
                } else if path.parent() == Some(builds.as_path()) {
                    build_finished(&path, &registry);
                } else if let Some(name) = function_name(&functions_dir, &path) {
                    if path.exists() {
                        // Errors are recorded on the function's status by the registry.
                        let _ = registry.load(&name, &path).await;
                    } else {
                        registry.remove(
                            &name,
                            &format!(
                                "{} was deleted; its bindings are paused until it is back",
                                path.display()
                            ),
                        );
                    }
                }
            }
        }
    }))
}

/// `NAME` for `<functions_dir>/NAME.wasm`.
fn function_name(functions_dir: &Path, path: &Path) -> Option<String> {
    if path.parent()? != functions_dir || path.extension()? != "wasm" {
        return None;
    }
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

/// A `kfn build` wrote a build record: a failure goes on the function's status (a
/// success shows when its new `.wasm` loads).
fn build_finished(record: &Path, registry: &Registry) {
    let (Some(name), Some(stamp)) = (
        crate::builder::stamp::function_of(record),
        crate::builder::stamp::read(record),
    ) else {
        return;
    };
    if let Some(error) = stamp.error {
        registry.report_error(&name, format!("build failed: {error}"));
    }
}

/// A changed kfn.yaml: valid, it goes to the app to apply (`app::live`); invalid,
/// its errors are reported and the app runs on as it was.
fn revalidate(
    path: &Path,
    events: &Events,
    reconfigure: Option<&mpsc::UnboundedSender<(String, Config)>>,
) {
    let subject = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match Config::load(path) {
        Ok(config) => match reconfigure {
            Some(tx) => {
                tracing::info!(file = %path.display(), "config changed and is valid; applying it");
                let _ = tx.send((subject, config));
            }
            None => {
                tracing::info!(file = %path.display(), "config changed and is valid; restart kfn to apply it");
                events.emit(
                    EventKind::Config,
                    subject,
                    "changed and valid; restart kfn to apply it",
                );
            }
        },
        Err(errors) => {
            tracing::error!(file = %path.display(), "config changed and is invalid (the running app is unchanged):\n{errors}");
            events.emit(
                EventKind::Config,
                subject,
                format!("changed and INVALID (the running app is unchanged): {errors}"),
            );
        }
    }
}
