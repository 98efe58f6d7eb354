//! Turns for SQLite's single writer within one process.
//!
//! SQLite lets one transaction write at a time; a second `BEGIN IMMEDIATE` waits in SQLite's
//! busy handler, which sleeps (1 ms, then 2, 5, 10 … up to 100 ms) between tries. The worker's
//! claim loop and its completer write back to back, so in a burn-down they kept colliding and
//! sleeping: most of the time went to waiting on a lock that had long been free. Taking turns
//! on an async mutex first hands the lock over the moment it is released. It is shared by every
//! store on the same file in this process (as the wakeups are); another process still meets
//! SQLite's busy timeout, as before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// One process-wide turn per database file.
pub(crate) type WriteTurn = Arc<tokio::sync::Mutex<()>>;

static TURNS: LazyLock<Mutex<HashMap<PathBuf, WriteTurn>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The turn every store on `path` in this process shares.
pub(crate) fn for_file(path: &Path) -> WriteTurn {
    let mut map = TURNS.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}
