//! The settings every Keel process shares, loaded from one place.

use crate::{DatabaseTarget, Problems, Reader, Secret, Source};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `INTERNAL_API_SECRET` must be long enough that guessing it is hopeless.
pub const MIN_INTERNAL_SECRET_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database: DatabaseTarget,
    pub environment: Environment,
    pub internal_api_secret: Option<Secret>,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub embedded_worker: bool,
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

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}
