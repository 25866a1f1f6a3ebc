//! Window kinds: how a record goes into its key's windows, one file per kind. Each
//! takes the key's windows, the record (timestamp and numbers) and the watermark that
//! decides lateness (stream time including the record), updates or creates windows,
//! and says which windows the record was late for. A new kind is a new file here, an
//! arm in [`add`] and [`current`], and its row in [`super::spec`].

mod session;
mod sliding;
mod time;

use super::spec::{Bounds, Kind, Spec};
use super::state::{KeyWindows, Slot};

/// The windows a record was late for, and whether it was late for all of them.
pub type Lateness = Option<(Vec<Bounds>, bool)>;

/// `watermark` includes the record; `before` is the watermark before it.
pub fn add(
    spec: &Spec,
    w: &mut KeyWindows<'_>,
    ts: i64,
    values: &[f64],
    watermark: i64,
    before: i64,
) -> Result<Lateness, String> {
    match spec.kind {
        Kind::Tumbling { size } => Ok(time::add(size, size, spec.grace, w, ts, values, watermark)),
        Kind::Hopping { size, advance } => Ok(time::add(
            size, advance, spec.grace, w, ts, values, watermark,
        )),
        Kind::Sliding { difference } => {
            sliding::add(difference, spec.grace, w, ts, values, watermark)
        }
        Kind::Session { gap } => Ok(session::add(spec, gap, w, ts, values, watermark, before)),
    }
}

/// A key's *current* window as of `watermark`, what a store's SSE route serves: for
/// tumbling windows the one holding the watermark (`None` for its slot when it has no
/// record yet but the window before it had: the key is shown as empty rather than
/// vanishing at each boundary); for hopping windows the oldest (fullest) one holding
/// the watermark; for sliding windows the latest that has ended; for sessions the
/// latest session.
pub fn current<'a>(
    spec: &Spec,
    windows: &[(Bounds, &'a Slot)],
    watermark: i64,
) -> Option<(Bounds, Option<&'a Slot>)> {
    match spec.kind {
        Kind::Tumbling { size } => {
            let start = watermark - watermark.rem_euclid(size);
            let bounds = (start, start.saturating_add(size));
            match windows.iter().find(|(b, _)| *b == bounds) {
                Some((_, slot)) => Some((bounds, Some(*slot))),
                None => windows
                    .iter()
                    .any(|(b, _)| *b == (start - size, start))
                    .then_some((bounds, None)),
            }
        }
        Kind::Hopping { size, .. } => windows
            .iter()
            .find(|((start, _), _)| *start > watermark.saturating_sub(size) && *start <= watermark)
            .map(|(b, s)| (*b, Some(*s))),
        Kind::Sliding { difference } => windows
            .iter()
            .rev()
            .find(|((start, _), _)| *start <= watermark.saturating_sub(difference))
            .map(|(b, s)| (*b, Some(*s))),
        Kind::Session { .. } => windows.last().map(|(b, s)| (*b, Some(*s))),
    }
}

/// `Lateness` from the late windows out of `total`.
fn lateness(late: Vec<Bounds>, total: usize) -> Lateness {
    let all = late.len() == total;
    (!late.is_empty()).then_some((late, all))
}
