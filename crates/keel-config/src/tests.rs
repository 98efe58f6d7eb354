//! Unit tests: defaults, every problem reported together, secrets never echoed.

use super::*;
use std::time::Duration;

#[test]
fn defaults_are_the_newcomer_setup() {
    let s = Settings::load(&MapSource::default()).unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    assert!(matches!(s.database, DatabaseTarget::Sqlite { ref path } if path.to_str() == Some("./data/keel.db")));
    assert_eq!(s.environment, Environment::Development);
    assert_eq!(s.log_format, LogFormat::Pretty);
    assert!(s.embedded_worker, "SQLite runs the worker in-process by default");
    assert!(s.auto_migrate);
}

#[test]
fn postgres_turns_embedded_worker_off_by_default() {
    let s = Settings::load(&MapSource::new([("DATABASE_URL", "postgres://u:pw@db:5432/keel")])).unwrap();
    assert!(s.database.is_postgres());
    assert!(!s.embedded_worker);
    assert_eq!(s.database.to_string(), "postgres://u:***@db:5432/keel");
}

#[test]
fn all_problems_reported_at_once_without_secrets() {
    let src = MapSource::new([
        ("KEEL_BIND", "nowhere"),
        ("DATABASE_URL", "mysql://root:hunter2@x/db"),
        ("KEEL_ENV", "staging"),
        ("KEEL_EMBEDDED_WORKER", "maybe"),
        ("KEEL_LOG_FORMAT", "xml"),
        ("INTERNAL_API_SECRET", "short-secret-value"),
    ]);
    let err = Settings::load(&src).unwrap_err();
    let vars: Vec<&str> = err.0.iter().map(|p| p.var.as_str()).collect();
    assert_eq!(
        vars,
        ["KEEL_BIND", "DATABASE_URL", "KEEL_ENV", "INTERNAL_API_SECRET", "KEEL_LOG_FORMAT", "KEEL_EMBEDDED_WORKER"]
    );
    let text = err.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("short-secret-value"), "{text}");
    assert!(text.contains("unknown scheme \"mysql\""), "{text}");
}

#[test]
fn production_requires_a_long_secret() {
    let err = Settings::load(&MapSource::new([("KEEL_ENV", "production")])).unwrap_err();
    assert_eq!(err.0[0].var, "INTERNAL_API_SECRET");
    let ok = Settings::load(&MapSource::new([("KEEL_ENV", "production"), ("INTERNAL_API_SECRET", &"x".repeat(32))]))
        .unwrap();
    assert_eq!(ok.log_format, LogFormat::Json);
    assert!(format!("{ok:?}").contains("Secret(***)"));
}

#[test]
fn database_url_forms() {
    assert!(DatabaseTarget::parse(Some("postgres://")).is_err());
    assert!(DatabaseTarget::parse(Some("postgres://host:notaport/db")).is_err());
    assert!(DatabaseTarget::parse(Some("garbage")).is_err());
    assert!(DatabaseTarget::parse(Some("sqlite::memory:")).is_err());
    assert!(matches!(DatabaseTarget::parse(Some("sqlite://tmp/k.db")), Ok(DatabaseTarget::Sqlite { .. })));
    assert!(DatabaseTarget::parse(Some("postgresql://postgres@127.0.0.1:5432/keel")).unwrap().is_postgres());
}

#[test]
fn durations_need_units() {
    assert_eq!(reader::parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(reader::parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(reader::parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(reader::parse_duration("30"), None);
    assert_eq!(reader::parse_duration("x5s"), None);
}

#[test]
fn secret_compare_is_exact() {
    let s = Secret::new("abc");
    assert!(s.matches(b"abc"));
    assert!(!s.matches(b"abd"));
    assert!(!s.matches(b"ab"));
}

#[test]
fn with_database_swaps_the_database_and_keeps_the_query() {
    use crate::with_database;
    assert_eq!(with_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
    assert_eq!(with_database("postgres://u@h/postgres?sslmode=require", "t1"), "postgres://u@h/t1?sslmode=require");
    assert_eq!(with_database("postgres://u@h:5432", "t1"), "postgres://u@h:5432/t1");
}
