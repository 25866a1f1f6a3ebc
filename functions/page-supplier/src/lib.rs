//! page-supplier: a kfn *supplier*. The runtime calls `supply` on the binding's
//! schedule (`every:` in kfn.yaml); each call emits one random PageEvent such as
//! `{"name":"P1","user":"U2","date":"2026-11-25T06:01:02.345Z","duration":1234}`.

// Generate the bindings for the `supplier` world of the WIT contract.
wit_bindgen::generate!({
    world: "supplier",
    path: "../../wit",
});
// The world `use`s the WIT types, so `Message` and `Output` are now in scope;
// the host imports live in `kfn::component::host`.

use kfn::component::host;
use serde::Serialize;

#[derive(Serialize)]
struct PageEvent {
    name: &'static str,
    user: &'static str,
    date: String,
    duration: u64,
}

struct PageSupplier;

impl Guest for PageSupplier {
    fn supply() -> Result<Vec<Output>, String> {
        // One 64-bit random number from WASI gives us all the randomness we need.
        let r = getrandom::u64().map_err(|e| format!("no randomness: {e}"))?;
        let event = PageEvent {
            name: if r & 1 == 0 { "P1" } else { "P2" },
            user: if r & 2 == 0 { "U1" } else { "U2" },
            date: rfc3339_utc(host::now_ms()),
            duration: (r >> 2) % 9000, // 0..9000 ms
        };
        let value = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        Ok(vec![Output {
            topic: None, // the binding's `out` topic
            key: Some(event.name.as_bytes().to_vec()),
            value,
            headers: vec![],
        }])
    }
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_utc(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year, from March 1st
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

// Tell wit-bindgen which type implements the world's exports.
export!(PageSupplier);
