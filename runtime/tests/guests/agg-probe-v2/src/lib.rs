//! agg-probe v2: agg-probe reporting version 2, reading the same state: tests swap
//! one for the other under load.
const VERSION: u32 = 2;
include!("../../agg-probe/src/agg.rs");
