//! A step whose function runs in several instances at once (`limits.instances`):
//! each read batch is cut into contiguous chunks, the binding's own thread runs the
//! first and a small pool of threads the others, each chunk on an instance of its
//! own, all on the one version of the function [`Worker::pin`]ned for the batch. The
//! outcomes are put back together in input order, so what follows (delivery, offsets,
//! dead letters) cannot tell it from one instance.
//!
//! Only steps that keep no state in the host ([`Step::restartable`]) are forked: a
//! chunk after one that paused has its outcomes thrown away and its records handled
//! again, as the loop does with a batch handed over after a paused one.

use tokio::sync::watch;

use super::{Outcome, Step};
use crate::record::Record;
use crate::wasm::Worker;

/// Fewest records worth a chunk of their own: below it, the hand-off to another
/// thread costs more than the calls it saves.
const MIN_CHUNK: usize = 64;

/// A step that can be copied onto another instance of its function.
pub trait Fork: Step + Sized + 'static {
    /// The same step on a fresh instance of the same function.
    fn fork(&self) -> Self;
    /// Its function, if it has one (a repartition step without one has none).
    fn worker(&mut self) -> Option<&mut Worker>;
}

/// `lead` and its forks, sharing each batch.
pub struct Parallel<S> {
    lead: S,
    helpers: Vec<S>,
    pool: Option<rayon::ThreadPool>,
    functions: usize,
}

impl<S: Fork> Parallel<S> {
    /// `step` over `instances` instances (at least one); the threads of the others are
    /// named `kfn-<name>-<i>`. A step without a function, or a pool that cannot be
    /// started (logged), stays on one.
    pub fn new(mut step: S, instances: usize, name: &str) -> Self {
        let function = step.worker().is_some();
        let pool = match instances > 1 && step.restartable() && function {
            true => pool(instances - 1, name),
            false => None,
        };
        let helpers: Vec<S> = match pool {
            Some(_) => (1..instances).map(|_| step.fork()).collect(),
            None => Vec::new(),
        };
        Self {
            functions: usize::from(function) + helpers.len(),
            lead: step,
            helpers,
            pool,
        }
    }

    /// Instances of the function the batches are shared among (0: it has none).
    pub fn instances(&self) -> usize {
        self.functions
    }
}

/// `threads` threads named `kfn-<name>-<i>`, or `None` (logged) if they cannot start.
fn pool(threads: usize, name: &str) -> Option<rayon::ThreadPool> {
    let prefix = format!("kfn-{name}");
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{prefix}-{}", i + 1))
        .build()
        .inspect_err(|e| {
            tracing::warn!(binding = %name, error = %e, "cannot start the function's other instances; running one");
        })
        .ok()
}

impl<S: Fork> Step for Parallel<S> {
    fn handle(&mut self, record: &mut Record) -> Outcome {
        self.lead.handle(record)
    }

    fn handle_batch(&mut self, batch: &mut [Record], outcomes: &mut Vec<Outcome>) {
        let chunks = (1 + self.helpers.len()).min(batch.len().div_ceil(MIN_CHUNK));
        let (Some(pool), true) = (&self.pool, chunks > 1) else {
            return self.lead.handle_batch(batch, outcomes);
        };
        let Some(pin) = self.lead.worker().map(Worker::pin) else {
            return self.lead.handle_batch(batch, outcomes);
        };
        let mut parts = batch.chunks_mut(batch.len().div_ceil(chunks));
        let first = parts.next().unwrap_or_default();
        let mut later: Vec<Vec<Outcome>> = Vec::new();
        later.resize_with(chunks - 1, Vec::new);
        let lead = &mut self.lead;
        let helpers = &mut self.helpers;
        pool.in_place_scope(|scope| {
            for ((helper, part), out) in helpers.iter_mut().zip(parts).zip(&mut later) {
                if let Some(w) = helper.worker() {
                    w.pin_to(pin.clone());
                }
                scope.spawn(move |_| {
                    helper.handle_batch(part, out);
                    if let Some(w) = helper.worker() {
                        w.unpin();
                    }
                });
            }
            lead.handle_batch(first, outcomes);
        });
        if let Some(w) = self.lead.worker() {
            w.unpin();
        }
        for part in later {
            if matches!(outcomes.last(), Some(Outcome::Pause { .. })) {
                return;
            }
            outcomes.extend(part);
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        self.lead.changed()
    }

    fn restartable(&self) -> bool {
        self.lead.restartable()
    }
}
