//! `DATABASE_URL`: which backend, and where.

use crate::Secret;
use std::fmt;
use std::path::PathBuf;

/// The default embedded database, relative to the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "./data/keel.db";

/// Which database a process uses, parsed from `DATABASE_URL`. `Display` and `Debug` hide any
/// password, so a target can be logged as it is.
#[derive(Clone)]
pub enum DatabaseTarget {
    /// Embedded SQLite at this path (created on first start).
    Sqlite {
        /// The database file; its directory is created when the pool opens.
        path: PathBuf,
    },
    /// PostgreSQL; the URL may carry a password, so it is kept as a secret.
    Postgres {
        /// The whole connection URL, as given.
        url: Secret,
    },
}

impl DatabaseTarget {
    /// Parses `DATABASE_URL`. `None` (unset) means the embedded default.
    /// The error message never repeats the URL, which may hold a password.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        let Some(raw) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::Sqlite { path: PathBuf::from(DEFAULT_SQLITE_PATH) });
        };
        let Some((scheme, rest)) = raw.split_once(':') else {
            return Err("is not a URL: use postgres://user@host:5432/db, sqlite://path/to/keel.db, or leave it unset for ./data/keel.db".into());
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => {
                let Some(after) = rest.strip_prefix("//") else {
                    return Err("must look like postgres://user@host:5432/dbname".into());
                };
                let authority = after.split(['/', '?']).next().unwrap_or("");
                let host = authority.rsplit('@').next().unwrap_or("");
                if host.is_empty() && !after.contains("host=") {
                    return Err("names no host: use postgres://user@host:5432/dbname".into());
                }
                if let Some(port) = host.rsplit_once(':').map(|(_, p)| p) {
                    if !port.is_empty() && port.parse::<u16>().is_err() && !host.starts_with('[') {
                        return Err("has a port that is not a number from 1 to 65535".into());
                    }
                }
                Ok(Self::Postgres { url: Secret::new(raw) })
            }
            "sqlite" => {
                let path = rest.trim_start_matches("//");
                let path = path.split('?').next().unwrap_or("");
                if path.is_empty() || path == ":memory:" {
                    return Err("must name a file, like sqlite://./data/keel.db (an in-memory database would lose every job on restart)".into());
                }
                Ok(Self::Sqlite { path: PathBuf::from(path) })
            }
            other => Err(format!(
                "has unknown scheme {:?}: Keel speaks postgres:// and sqlite://",
                other.chars().take(20).collect::<String>()
            )),
        }
    }

    /// True for PostgreSQL, which several processes can share (SQLite: one host only).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// `sqlite` or `postgres`, as reported in health output and logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// Shows the target with any password replaced by `***`, safe for logs.
impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite {}", path.display()),
            Self::Postgres { url } => f.write_str(&redact_url(url.expose())),
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `url` (any PostgreSQL URL on a server) pointed at database `name`, keeping its query string
/// (`sslmode=` and the like). Test kits and benchmarks use it to reach a database they created.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// `postgres://user:pw@host/db?password=x` → `postgres://user:***@host/db?password=***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let auth_end = out[start..].find(['/', '?']).map(|i| start + i).unwrap_or(out.len());
        if let Some(at) = out[start..auth_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}
