//! Runs a stage's wasm calls on a dedicated OS thread.
//!
//! Guest calls are synchronous and may run up to their CPU-time limit, and
//! wasmtime-wasi's synchronous bindings `block_on` their async internals (stdio
//! writes, polls), which panics on a tokio worker thread. So each binding's worker
//! lives on its own thread and the async loop sends it batches of work; batching
//! keeps the hand-off cost (a channel send and a wake-up) off the per-record path.

use std::sync::mpsc;
use std::thread::JoinHandle;

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// Owns `S` on a thread of its own and runs closures on it, one at a time.
pub struct Dedicated<S> {
    jobs: Option<mpsc::Sender<Job<S>>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Send + 'static> Dedicated<S> {
    pub fn spawn(name: &str, mut state: S) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job<S>>();
        let thread = std::thread::Builder::new()
            .name(format!("kfn-{name}"))
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the thread and returns its result.
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce(&mut S) -> R + Send + 'static) -> R {
        self.start(f).await
    }

    /// Hands `f` to the thread now (jobs run in the order started) and returns a
    /// future of its result, so the caller can go on meanwhile.
    pub fn start<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> impl Future<Output = R> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job<S> = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        let sent = self.jobs.as_ref().map(|j| j.send(job));
        assert!(matches!(sent, Some(Ok(()))), "the worker thread has exited");
        // The sender is dropped only if the job panicked: a bug in kfn, not a guest
        // failure (guest traps are values), so it propagates.
        async move { rx.await.expect("the worker thread panicked") }
    }
}

impl<S> Drop for Dedicated<S> {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
