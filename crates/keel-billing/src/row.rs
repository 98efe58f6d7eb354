//! Conversions between the backends' column conventions (SQLite: TEXT UUIDs, INTEGER unix ms).

use chrono::{DateTime, TimeZone, Utc};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn uuid(s: &str) -> Result<uuid::Uuid, sqlx::Error> {
    uuid::Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
