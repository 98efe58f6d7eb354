//! Wakeups: how an idle worker learns at once that a job became runnable.
//!
//! A [`Wakeup`] wakes every task currently waiting on it. Waiters must arm their
//! `Notified` future *before* they look for work (see `worker::job_loop`), so a wake that
//! lands between "found nothing" and "start waiting" is not lost. Polling remains the fallback.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::Notify;

/// A signal that jobs may have become runnable; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Wakeup(Arc<Notify>, Arc<AtomicU64>);

impl Wakeup {
    /// A fresh signal no one waits on yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every task waiting now (a task not yet waiting polls instead).
    pub fn wake(&self) {
        self.1.fetch_add(1, Ordering::AcqRel);
        self.0.notify_waiters();
    }

    /// How many wakes so far: a claim loop that is not waiting compares it to tell whether
    /// jobs may have become runnable since it last looked (see [`crate::Claim::after`]).
    pub fn generation(&self) -> u64 {
        self.1.load(Ordering::Acquire)
    }

    /// The shared notifier, for a waiter that arms `notified()` before checking for work.
    pub fn notify(&self) -> Arc<Notify> {
        self.0.clone()
    }
}

/// One wakeup per SQLite file in this process, so an API handler's enqueue wakes the
/// embedded worker even when each built its own store on the same database.
static SQLITE_WAKEUPS: LazyLock<Mutex<HashMap<PathBuf, Wakeup>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

pub(crate) fn for_sqlite_file(path: &Path) -> Wakeup {
    crate::store::sqlite_turn::per_file(&SQLITE_WAKEUPS, path)
}
