//! keel-health integration tests: one binary, one module per concern.

// The whole binary is test code; clippy.toml allows unwrap in tests but cannot see that helper
// functions outside `#[test]` bodies are test code too.
#![allow(clippy::unwrap_used)]

/// The components every test database of this binary has installed.
#[allow(dead_code)]
const SCHEMAS: &[&keel_storage::Schema] = &[];

mod config;
mod database;
mod deadline;
mod flight;
mod handler;
mod registry;
mod report;
mod sections;
mod state;
mod support;
