//! {{name}}: a kfn *aggregator*: a windowed aggregate whose state kfn keeps.
//!
//! Use it in an `analytics:` stage of kfn.yaml:
//!
//! ```yaml
//! analytics:
//!   my-store: { in: my-topic, key: /name, window: { tumbling: 1m }, aggregate: { function: {{name}} } }
//! ```
//!
//! kfn calls `add` for each record and each window it falls in, `merge` when two
//! session windows become one, and `finish` when a window changed (for the dashboard
//! and queries) and when it closes (the value sent to `out`). The state is bytes you
//! define: kfn stores them with the window, writes them to the stage's changelog,
//! restores them after a restart and hands them to the next version of this function
//! when you rebuild it. So start them with a format version: a later version that
//! changes the format can still read (or knowingly refuse) the old one.
//!
//! This one counts records and their bytes: `{"records":3,"bytes":240}`.

wit_bindgen::generate!({ world: "aggregator", path: "{{wit}}" });
// `Message` and `Guest` are now in scope; host calls are in `kfn::component::host`.

struct Component;

/// The first byte of every state this version writes.
const FORMAT: u8 = 1;

/// The state: what the window has seen so far.
struct State {
    records: u64,
    bytes: u64,
}

impl State {
    fn read(bytes: &[u8]) -> Result<State, String> {
        match bytes {
            [FORMAT, rest @ ..] if rest.len() == 16 => Ok(State {
                records: u64::from_le_bytes(rest[..8].try_into().unwrap()),
                bytes: u64::from_le_bytes(rest[8..].try_into().unwrap()),
            }),
            // An error refuses the record (it is dead-lettered) and leaves the window's
            // state as it was: nothing is lost while you ship a version that reads it.
            [other, ..] => Err(format!(
                "unreadable state (format {other}, {} bytes): this version reads format {FORMAT}",
                bytes.len()
            )),
            [] => Err("empty state".into()),
        }
    }

    fn write(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out
    }
}

impl Guest for Component {
    /// A window with no record yet. `merge(init(), s)` must be `s`.
    fn init() -> Vec<u8> {
        State { records: 0, bytes: 0 }.write()
    }

    /// `msg` joins a window. Return Err("why") for a record you cannot use.
    fn add(state: Vec<u8>, msg: Message) -> Result<Vec<u8>, String> {
        let mut s = State::read(&state)?;
        s.records += 1;
        s.bytes += msg.value.len() as u64;
        Ok(s.write())
    }

    /// Two windows' states as one (session windows merging).
    fn merge(a: Vec<u8>, b: Vec<u8>) -> Result<Vec<u8>, String> {
        let (a, b) = (State::read(&a)?, State::read(&b)?);
        Ok(State { records: a.records + b.records, bytes: a.bytes + b.bytes }.write())
    }

    /// The window's value, as JSON.
    fn finish(state: Vec<u8>) -> Result<Vec<u8>, String> {
        let s = State::read(&state)?;
        Ok(format!(r#"{{"records":{},"bytes":{}}}"#, s.records, s.bytes).into_bytes())
    }
}

export!(Component);
