//! `keel_db_pool_connections{state}`: the process's database pool, read at scrape time.
//!
//! `keel_db_pool_waiters` (callers queued for a connection) is not exported: sqlx 0.8 keeps
//! its acquire queue private (`Pool` tells only `size()` and `num_idle()`), and every query in
//! Keel runs on the pool directly, so there is no one acquire call to count around. A pool
//! with `in_use` at `keel_db_pool_max_connections` is saturated and callers are queueing.

use super::desc::{FamilyDesc, MetricsError, Sample};
use super::MetricsRegistry;
use keel_storage::Db;

fn sizes(db: &Db) -> (u32, usize, u32) {
    match db {
        Db::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        Db::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
    }
}

/// Registers `keel_db_pool_connections{state="idle"|"in_use"}` and
/// `keel_db_pool_max_connections` for `db`'s pool.
pub fn register_pool_metrics(registry: &MetricsRegistry, db: &Db) -> Result<(), MetricsError> {
    let d = db.clone();
    registry.register(
        FamilyDesc::gauge(
            "keel_db_pool_connections",
            "Open connections of this process's database pool, idle or in use.",
            &["state"],
        )?,
        move || {
            let (size, idle, _) = sizes(&d);
            let idle = idle.min(size as usize);
            vec![Sample::new(["idle"], idle as f64), Sample::new(["in_use"], (size as usize - idle) as f64)]
        },
    )?;
    let d = db.clone();
    registry.register(
        FamilyDesc::gauge(
            "keel_db_pool_max_connections",
            "Most connections this process's database pool opens; in use at this value means callers queue.",
            &[],
        )?,
        move || vec![Sample::new(Vec::<String>::new(), sizes(&d).2 as f64)],
    )
}
