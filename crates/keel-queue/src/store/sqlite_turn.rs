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
    per_file(&TURNS, path)
}

/// What every store on the database file at `path` shares in this process (its write turn,
/// its wakeup), from `map`. Keyed by the file however its path is spelt (`./keel.db`, an
/// absolute path, a symlink), so that two stores a host built from differently written URLs
/// still share them.
pub(crate) fn per_file<T: Clone + Default>(map: &Mutex<HashMap<PathBuf, T>>, path: &Path) -> T {
    let key = file_key(path);
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key).or_default().clone()
}

/// The file's canonical path. A file not created yet (a lazily connected pool opens it on
/// first use) is keyed by its directory's canonical path and its name, which is what
/// canonicalising gives once it exists: otherwise a store built before the file existed and
/// one built after would key the same file apart. A path whose directory does not resolve
/// either keys as an absolute path.
fn file_key(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_turn_and_wakeup_per_file_however_its_path_is_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keel.db");
        std::fs::write(&file, b"").unwrap();
        let turn = for_file(&file);
        let mut spellings = vec![dir.path().join(".").join("keel.db")];
        #[cfg(unix)]
        {
            let link = dir.path().join("link.db");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            spellings.push(link);
        }
        let wake = crate::wake::for_sqlite_file(&file).notify();
        for other in spellings {
            assert!(Arc::ptr_eq(&turn, &for_file(&other)), "{} shares the turn of {}", other.display(), file.display());
            let other_wake = crate::wake::for_sqlite_file(&other).notify();
            assert!(Arc::ptr_eq(&wake, &other_wake), "{} shares the wakeup of {}", other.display(), file.display());
        }
        let elsewhere = dir.path().join("other.db");
        std::fs::write(&elsewhere, b"").unwrap();
        assert!(!Arc::ptr_eq(&turn, &for_file(&elsewhere)), "another file has a turn of its own");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_not_created_yet_keys_as_it_will_once_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        // Through a symlinked directory, as a relative path or a deployment's `current` link
        // would be: the spelling differs from the file's canonical path.
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let before = for_file(&link.join("later.db"));
        std::fs::write(real.join("later.db"), b"").unwrap();
        let after = for_file(&real.join("later.db"));
        assert!(Arc::ptr_eq(&before, &after), "the turn taken before the file existed is the one after");
    }
}
