//! Column conversions between the two backends' storage conventions (SQLite: TEXT UUIDs and
//! INTEGER unix milliseconds; Postgres: native uuid and timestamptz), and the strict reading of
//! values both store as text (roles, addresses). A value that is not recognised is an error
//! naming its column, never a default: a default would turn corruption, or a row written by a
//! newer release, into a silently wrong answer (a wrong role is a wrong permission).

use crate::{Role, TenancyError};
use chrono::{DateTime, TimeZone, Utc};
use keel_ids::{Email, OrgId, UserId};
use uuid::Uuid;

/// A column holding something this build does not recognise.
pub(crate) fn bad_value(column: &'static str, message: impl Into<String>) -> TenancyError {
    let source: Box<dyn std::error::Error + Send + Sync> = message.into().into();
    TenancyError::Storage(keel_storage::StorageError::Query(sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source,
    }))
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(column: &'static str, v: i64) -> Result<DateTime<Utc>, TenancyError> {
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or_else(|| bad_value(column, format!("{v} is not a representable unix-milliseconds timestamp")))
}

pub(crate) fn uuid(column: &'static str, s: &str) -> Result<Uuid, TenancyError> {
    Uuid::parse_str(s).map_err(|e| bad_value(column, format!("{s:?} is not a UUID ({e})")))
}

pub(crate) fn org_id(column: &'static str, s: &str) -> Result<OrgId, TenancyError> {
    uuid(column, s).map(OrgId::from_uuid)
}

pub(crate) fn user_id(column: &'static str, s: &str) -> Result<UserId, TenancyError> {
    uuid(column, s).map(UserId::from_uuid)
}

/// Exactly a role's stored spelling (`owner`, `manager`, `viewer`): unlike [`Role`]'s
/// `FromStr`, which forgives case and spaces in typed input, a stored value must be one of these.
pub(crate) fn role(column: &'static str, s: &str) -> Result<Role, TenancyError> {
    [Role::Owner, Role::Manager, Role::Viewer]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| bad_value(column, format!("unknown role {s:?} (this build knows owner, manager and viewer)")))
}

/// A stored address must already be in its normalised form (the table's CHECK keeps it lower
/// case); anything else was not written by this code.
pub(crate) fn email(column: &'static str, s: &str) -> Result<Email, TenancyError> {
    match Email::parse(s) {
        Ok(e) if e.as_str() == s => Ok(e),
        Ok(_) => Err(bad_value(column, "the stored address is not in normalised form")),
        // The value itself stays out of the message: errors are logged, addresses never in clear.
        Err(_) => Err(bad_value(column, "the stored value is not an email address")),
    }
}

/// Exactly a token scope's stored spelling (`org`, `operator`).
pub(crate) fn scope(column: &'static str, s: &str) -> Result<crate::TokenScope, TenancyError> {
    [crate::TokenScope::Org, crate::TokenScope::Operator]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| bad_value(column, format!("unknown token scope {s:?} (this build knows org and operator)")))
}

/// A stored activity detail: a JSON object, as written.
pub(crate) fn detail(column: &'static str, s: &str) -> Result<serde_json::Value, TenancyError> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(bad_value(column, "the stored detail is not a JSON object")),
    }
}
