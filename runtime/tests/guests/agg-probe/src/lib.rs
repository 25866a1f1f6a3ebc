//! agg-probe v1: the behaviour lives in `agg.rs`, shared with agg-probe-v2.
const VERSION: u32 = 1;
include!("agg.rs");
