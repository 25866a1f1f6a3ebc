// A test guest for the `aggregator` world. Included by agg-probe/src/lib.rs and
// agg-probe-v2/src/lib.rs, which define `VERSION` first (both read the same state).
//
// It is the templates' aggregate (records, and bytes of their values) with test
// hooks, driven by the UTF-8 input value:
//   trap         -> add panics (a trap)
//   refuse       -> add returns Err("agg-probe refuses 'refuse'")
//   grow:N       -> the state gets N more bytes of padding (limits.state)
//   finish-trap  -> counted, and finish panics until a `heal` record comes
//   heal         -> counted, and finish works again
//   anything else-> counted
// finish: {"records":N,"bytes":B,"version":VERSION}
//
// State: [1] records:u64 bytes:u64 broken:u8 padding...

wit_bindgen::generate!({
    world: "aggregator",
    path: "../../../../wit",
});

struct Component;

struct State {
    records: u64,
    bytes: u64,
    broken: bool,
    padding: usize,
}

fn read(s: &[u8]) -> Result<State, String> {
    match s {
        [1, rest @ ..] if rest.len() >= 17 => Ok(State {
            records: u64::from_le_bytes(rest[..8].try_into().unwrap()),
            bytes: u64::from_le_bytes(rest[8..16].try_into().unwrap()),
            broken: rest[16] == 1,
            padding: rest.len() - 17,
        }),
        _ => Err(format!("agg-probe: unreadable state of {} bytes", s.len())),
    }
}

fn write(s: &State) -> Vec<u8> {
    let mut out = vec![1];
    out.extend_from_slice(&s.records.to_le_bytes());
    out.extend_from_slice(&s.bytes.to_le_bytes());
    out.push(u8::from(s.broken));
    out.resize(out.len() + s.padding, 0);
    out
}

impl Guest for Component {
    fn init() -> Vec<u8> {
        write(&State { records: 0, bytes: 0, broken: false, padding: 0 })
    }

    fn add(state: Vec<u8>, msg: Message) -> Result<Vec<u8>, String> {
        let mut s = read(&state)?;
        let value = String::from_utf8_lossy(&msg.value);
        match value.as_ref() {
            "trap" => panic!("agg-probe: asked to trap"),
            "refuse" => return Err("agg-probe refuses 'refuse'".into()),
            "finish-trap" => s.broken = true,
            "heal" => s.broken = false,
            v => {
                if let Some(n) = v.strip_prefix("grow:") {
                    s.padding += n.parse::<usize>().map_err(|e| e.to_string())?;
                }
            }
        }
        s.records += 1;
        s.bytes += msg.value.len() as u64;
        Ok(write(&s))
    }

    fn merge(a: Vec<u8>, b: Vec<u8>) -> Result<Vec<u8>, String> {
        let (a, b) = (read(&a)?, read(&b)?);
        Ok(write(&State {
            records: a.records + b.records,
            bytes: a.bytes + b.bytes,
            broken: a.broken || b.broken,
            padding: a.padding + b.padding,
        }))
    }

    fn finish(state: Vec<u8>) -> Result<Vec<u8>, String> {
        let s = read(&state)?;
        if s.broken {
            panic!("agg-probe: finish asked to trap");
        }
        Ok(format!(r#"{{"records":{},"bytes":{},"version":{VERSION}}}"#, s.records, s.bytes).into_bytes())
    }
}

export!(Component);
