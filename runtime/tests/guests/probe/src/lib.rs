//! probe v1: the behaviour lives in `probe.rs`, shared with probe-v2 (which differs
//! only in `VERSION`).
const VERSION: u32 = 1;
include!("probe.rs");
