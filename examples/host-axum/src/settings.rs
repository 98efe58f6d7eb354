//! The service's settings, read from the environment with every problem reported at once.

use keel_config::{DatabaseTarget, Problems, Reader, Source};
use keel_ratelimit::Quota;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the SQLite database lives when `DATABASE_URL` is unset: no setup needed.
pub const DEFAULT_SQLITE_PATH: &str = "./data/host-axum.db";
/// The public listener's default address.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
/// The metrics listener's default address: loopback, so only the host's own scraper reaches it.
pub const DEFAULT_METRICS_BIND: &str = "127.0.0.1:3001";
/// The notes routes' quota per client network: generous for people, a wall for a loop.
pub const DEFAULT_RATE_LIMIT: &str = "60/1m,burst=30";

/// What the service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST_AXUM_BIND`: the public listener.
    pub bind: SocketAddr,
    /// `HOST_AXUM_METRICS_BIND`: `/metrics`, on a listener of its own.
    pub metrics_bind: SocketAddr,
    /// `DATABASE_URL`: `postgres://…`, `sqlite://path`, or unset for [`DEFAULT_SQLITE_PATH`].
    pub database: DatabaseTarget,
    /// `HOST_AXUM_RATE_LIMIT`: `<requests>/<period>[,burst=<n>]` per client network.
    pub rate_limit: Quota,
    /// `HOST_AXUM_LOG_FORMAT`: `json` for log collectors; anything else is human-readable.
    pub json_logs: bool,
}

impl Settings {
    /// Reads the settings from `source` (the process environment in `main`).
    pub fn from_source(source: &dyn Source) -> Result<Settings, Problems> {
        let mut r = Reader::new(source);
        let bind = r.parse("HOST_AXUM_BIND", default_addr(DEFAULT_BIND), "an address like 127.0.0.1:3000");
        let metrics_bind =
            r.parse("HOST_AXUM_METRICS_BIND", default_addr(DEFAULT_METRICS_BIND), "an address like 127.0.0.1:3001");
        if metrics_bind == bind && bind.port() != 0 {
            r.problem("HOST_AXUM_METRICS_BIND", "must differ from HOST_AXUM_BIND: metrics never share the public port");
        }
        let database = match r.raw("DATABASE_URL") {
            None => DatabaseTarget::Sqlite { path: PathBuf::from(DEFAULT_SQLITE_PATH) },
            Some(url) => DatabaseTarget::parse(Some(&url)).unwrap_or_else(|why| {
                r.problem("DATABASE_URL", why);
                DatabaseTarget::Sqlite { path: PathBuf::from(DEFAULT_SQLITE_PATH) }
            }),
        };
        let default_quota = DEFAULT_RATE_LIMIT.parse().expect("the default quota parses");
        let rate_limit = r.parse("HOST_AXUM_RATE_LIMIT", default_quota, "a quota like 60/1m,burst=30");
        let json_logs = r.string("HOST_AXUM_LOG_FORMAT", "pretty").eq_ignore_ascii_case("json");
        r.finish()?;
        Ok(Settings { bind, metrics_bind, database, rate_limit, json_logs })
    }
}

fn default_addr(s: &str) -> SocketAddr {
    s.parse().expect("the default addresses parse")
}
