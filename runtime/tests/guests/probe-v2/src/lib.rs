//! probe v2: the same guest as probe, with output prefix `probe-v2:` and header
//! `probe-version: 2`; tests use the pair to observe hot reload.
const VERSION: u32 = 2;
include!("../../probe/src/probe.rs");
