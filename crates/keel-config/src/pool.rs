//! Database pool sizing (`KEEL_DB_*`): how many connections a process may hold and how long a
//! caller waits for one.

use crate::Reader;
use std::time::Duration;

/// Most connections `KEEL_DB_MAX_CONNECTIONS` accepts. PostgreSQL's own default
/// `max_connections` is 100 and every connection is a server process; a value above this is a
/// typo, not a plan (a PgBouncer in front is the way to serve more clients).
pub const MAX_DB_CONNECTIONS: u32 = 1_000;

/// Default `KEEL_DB_ACQUIRE_TIMEOUT`: long enough to ride out a burst, short enough that a
/// saturated pool answers 503 instead of hanging a request.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest `KEEL_DB_ACQUIRE_TIMEOUT` accepted: beyond it a request would outlive any sensible
/// client or proxy timeout while waiting for a connection.
pub const MAX_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(300);

/// How a process sizes its database pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// `KEEL_DB_MAX_CONNECTIONS` (1 to [`MAX_DB_CONNECTIONS`]): `None` leaves each backend its
    /// own default (see keel-storage's `PG_MAX_CONNECTIONS` and `SQLITE_MAX_CONNECTIONS`).
    pub max_connections: Option<u32>,
    /// `KEEL_DB_MIN_CONNECTIONS` (default 0, at most the maximum): connections kept open while
    /// idle, so the first requests after a quiet spell do not pay for a connection handshake.
    pub min_connections: u32,
    /// `KEEL_DB_ACQUIRE_TIMEOUT` (default 5s, 1ms to 300s): the longest a caller waits for a
    /// pool connection before it gets an error.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: None, min_connections: 0, acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT }
    }
}

impl PoolSettings {
    /// Reads `KEEL_DB_MAX_CONNECTIONS`, `KEEL_DB_MIN_CONNECTIONS` and `KEEL_DB_ACQUIRE_TIMEOUT`;
    /// problems go into `r`, each naming its variable, and the default stands in for a bad value.
    pub fn read(r: &mut Reader<'_>) -> PoolSettings {
        let d = PoolSettings::default();
        let max_connections = r.raw("KEEL_DB_MAX_CONNECTIONS").map(|_| {
            let v = r.int_in("KEEL_DB_MAX_CONNECTIONS", 10, 1, u64::from(MAX_DB_CONNECTIONS));
            u32::try_from(v).unwrap_or(MAX_DB_CONNECTIONS)
        });
        let min = r.int_in("KEEL_DB_MIN_CONNECTIONS", 0, 0, u64::from(MAX_DB_CONNECTIONS));
        let mut min_connections = u32::try_from(min).unwrap_or(0);
        if let Some(max) = max_connections.filter(|max| min_connections > *max) {
            r.problem(
                "KEEL_DB_MIN_CONNECTIONS",
                format!("is {min_connections}, above KEEL_DB_MAX_CONNECTIONS={max}: set it to at most {max}"),
            );
            min_connections = 0;
        }
        let mut acquire_timeout = r.duration("KEEL_DB_ACQUIRE_TIMEOUT", d.acquire_timeout);
        if acquire_timeout.is_zero() || acquire_timeout > MAX_ACQUIRE_TIMEOUT {
            r.problem(
                "KEEL_DB_ACQUIRE_TIMEOUT",
                format!("must be from 1ms to {}s, got {acquire_timeout:?}", MAX_ACQUIRE_TIMEOUT.as_secs()),
            );
            acquire_timeout = d.acquire_timeout;
        }
        PoolSettings { max_connections, min_connections, acquire_timeout }
    }

    /// The pool's maximum: the setting, or `backend_default` when unset.
    pub fn max_or(&self, backend_default: u32) -> u32 {
        self.max_connections.unwrap_or(backend_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapSource;

    fn read(pairs: &[(&str, &str)]) -> (PoolSettings, Vec<String>) {
        let src = MapSource(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let mut r = Reader::new(&src);
        let s = PoolSettings::read(&mut r);
        let problems = r.into_problems().into_iter().map(|p| format!("{}: {}", p.var, p.message)).collect();
        (s, problems)
    }

    #[test]
    fn unset_leaves_the_backend_default() {
        let (s, problems) = read(&[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s, PoolSettings::default());
        assert_eq!(s.max_or(10), 10);
    }

    #[test]
    fn reads_the_three_settings() {
        let (s, problems) = read(&[
            ("KEEL_DB_MAX_CONNECTIONS", "25"),
            ("KEEL_DB_MIN_CONNECTIONS", "5"),
            ("KEEL_DB_ACQUIRE_TIMEOUT", "750ms"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            s,
            PoolSettings { max_connections: Some(25), min_connections: 5, acquire_timeout: Duration::from_millis(750) }
        );
        assert_eq!(s.max_or(10), 25);
    }

    #[test]
    fn bad_values_are_named_with_the_fix() {
        for (pairs, var, words) in [
            (vec![("KEEL_DB_MAX_CONNECTIONS", "0")], "KEEL_DB_MAX_CONNECTIONS", "from 1 to 1000"),
            (vec![("KEEL_DB_MAX_CONNECTIONS", "ten")], "KEEL_DB_MAX_CONNECTIONS", "whole number"),
            (vec![("KEEL_DB_MAX_CONNECTIONS", "5000")], "KEEL_DB_MAX_CONNECTIONS", "from 1 to 1000"),
            (
                vec![("KEEL_DB_MAX_CONNECTIONS", "4"), ("KEEL_DB_MIN_CONNECTIONS", "8")],
                "KEEL_DB_MIN_CONNECTIONS",
                "at most 4",
            ),
            (vec![("KEEL_DB_MIN_CONNECTIONS", "-1")], "KEEL_DB_MIN_CONNECTIONS", "whole number"),
            (vec![("KEEL_DB_ACQUIRE_TIMEOUT", "5")], "KEEL_DB_ACQUIRE_TIMEOUT", "duration like"),
            (vec![("KEEL_DB_ACQUIRE_TIMEOUT", "0s")], "KEEL_DB_ACQUIRE_TIMEOUT", "from 1ms"),
            (vec![("KEEL_DB_ACQUIRE_TIMEOUT", "1h")], "KEEL_DB_ACQUIRE_TIMEOUT", "from 1ms to 300s"),
        ] {
            let (s, problems) = read(&pairs);
            assert_eq!(problems.len(), 1, "{pairs:?}: {problems:?}");
            assert!(problems[0].starts_with(var) && problems[0].contains(words), "{pairs:?}: {problems:?}");
            assert!(s.min_connections <= s.max_or(u32::MAX), "a bad value falls back to a usable default");
        }
    }
}
