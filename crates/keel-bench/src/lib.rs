//! keel-bench is a binary (`src/main.rs`); this library target is empty and exists so the
//! workspace's `cargo test --workspace` has nothing here to build twice.
