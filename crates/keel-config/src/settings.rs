//! The settings every Keel process shares, loaded from one place.

use crate::{DatabaseTarget, PoolSettings, Problems, Reader, Secret, Source};
use std::net::SocketAddr;

/// `KEEL_ENV`: production makes some settings mandatory and changes defaults (JSON logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// A developer's machine or a test (the default).
    Development,
    /// A deployed service.
    Production,
}

/// `KEEL_LOG_FORMAT`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors (the production default).
    Json,
    /// Human-readable lines (the development default).
    Pretty,
}

/// `INTERNAL_API_SECRET` must be long enough that guessing it is hopeless.
pub const MIN_INTERNAL_SECRET_LEN: usize = 32;

/// The settings every Keel process shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `KEEL_BIND`: where the API listens (default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// `DATABASE_URL`: PostgreSQL, or SQLite at `./data/keel.db` when unset.
    pub database: DatabaseTarget,
    /// `KEEL_DB_MAX_CONNECTIONS`, `KEEL_DB_MIN_CONNECTIONS`, `KEEL_DB_ACQUIRE_TIMEOUT`: the pool.
    pub pool: PoolSettings,
    /// `KEEL_ENV`: development (default) or production.
    pub environment: Environment,
    /// `INTERNAL_API_SECRET`: required in production, at least [`MIN_INTERNAL_SECRET_LEN`] long.
    pub internal_api_secret: Option<Secret>,
    /// `RUST_LOG`: the tracing filter (default `info`).
    pub log_filter: String,
    /// `KEEL_LOG_FORMAT`: json or pretty (default by environment).
    pub log_format: LogFormat,
    /// `KEEL_EMBEDDED_WORKER`: run the worker inside the API process (default: on for SQLite,
    /// off for PostgreSQL).
    pub embedded_worker: bool,
    /// `KEEL_AUTO_MIGRATE`: install or upgrade the schema at startup (default true).
    pub auto_migrate: bool,
}

impl Settings {
    /// Reads the shared settings; problems go into `r` so the caller can add its own
    /// crate-specific settings before reporting everything at once.
    pub fn read(r: &mut Reader<'_>) -> Settings {
        let bind = r.parse(
            "KEEL_BIND",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "an address like 127.0.0.1:8080 or 0.0.0.0:8080",
        );
        let database = match DatabaseTarget::parse(r.raw("DATABASE_URL").as_deref()) {
            Ok(t) => t,
            Err(msg) => {
                r.problem("DATABASE_URL", msg);
                DatabaseTarget::parse(None).unwrap_or(DatabaseTarget::Sqlite { path: "./data/keel.db".into() })
            }
        };
        let pool = PoolSettings::read(r);
        let environment = match r.raw("KEEL_ENV").map(|v| v.trim().to_ascii_lowercase()) {
            None => Environment::Development,
            Some(v) if v == "development" || v == "dev" => Environment::Development,
            Some(v) if v == "production" || v == "prod" => Environment::Production,
            Some(v) => {
                r.problem("KEEL_ENV", format!("must be development or production, got {v:?}"));
                Environment::Development
            }
        };
        let internal_api_secret = r.raw("INTERNAL_API_SECRET").map(Secret::new);
        match (&internal_api_secret, environment) {
            (None, Environment::Production) => r.problem(
                "INTERNAL_API_SECRET",
                format!("is required when KEEL_ENV=production: set it to a random string of at least {MIN_INTERNAL_SECRET_LEN} characters (e.g. openssl rand -hex 32)"),
            ),
            (Some(s), _) if s.expose().len() < MIN_INTERNAL_SECRET_LEN => r.problem(
                "INTERNAL_API_SECRET",
                format!("is too short ({} characters): use at least {MIN_INTERNAL_SECRET_LEN}", s.expose().len()),
            ),
            _ => {}
        }
        let log_filter = r.string("RUST_LOG", "info");
        let default_format = match environment {
            Environment::Production => LogFormat::Json,
            Environment::Development => LogFormat::Pretty,
        };
        let log_format = match r.raw("KEEL_LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => default_format,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "pretty" => LogFormat::Pretty,
            Some(v) => {
                r.problem("KEEL_LOG_FORMAT", format!("must be json or pretty, got {v:?}"));
                default_format
            }
        };
        let embedded_worker = r.bool("KEEL_EMBEDDED_WORKER", !database.is_postgres());
        let auto_migrate = r.bool("KEEL_AUTO_MIGRATE", true);
        Settings {
            bind,
            database,
            pool,
            environment,
            internal_api_secret,
            log_filter,
            log_format,
            embedded_worker,
            auto_migrate,
        }
    }

    /// Reads only the shared settings and reports.
    pub fn load(source: &dyn Source) -> Result<Settings, Problems> {
        let mut r = Reader::new(source);
        let s = Settings::read(&mut r);
        r.finish().map(|()| s)
    }

    /// True when `KEEL_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}
