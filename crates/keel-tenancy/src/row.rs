//! Column conversions between the two backends' storage conventions (SQLite: TEXT UUIDs and
//! INTEGER unix milliseconds; Postgres: native uuid and timestamptz).

use crate::TenancyError;
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn uuid(s: &str) -> Result<Uuid, TenancyError> {
    Uuid::parse_str(s).map_err(|e| {
        TenancyError::Storage(keel_storage::StorageError::Query(keel_storage::sqlx::Error::Decode(Box::new(e))))
    })
}
