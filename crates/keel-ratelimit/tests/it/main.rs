//! Integration tests through the public API: the tower layer end to end on a fake clock.

// The team rule (clippy.toml) lets tests unwrap; helpers outside `#[test]` fns need it said here.
#![allow(clippy::unwrap_used)]

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = &[&keel_ratelimit::SCHEMA];

mod extract;
mod headers;
mod outcomes;
mod shared;
mod stacking;
mod support;
