//! Conversions from stored columns to values. Anything unrecognised is a [`BillingError`],
//! never a default (SQLite: TEXT UUIDs, INTEGER unix ms, TEXT JSON; PostgreSQL: native types).

use crate::{BillingError, InvoiceStatus, LineItem};
use chrono::{DateTime, TimeZone, Utc};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(
    table: &'static str,
    id: &str,
    column: &'static str,
    v: i64,
) -> Result<DateTime<Utc>, BillingError> {
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or_else(|| BillingError::bad(table, id, column, format!("{v} (out of range for unix milliseconds)")))
}

pub(crate) fn uuid(table: &'static str, id: &str, column: &'static str, s: &str) -> Result<uuid::Uuid, BillingError> {
    uuid::Uuid::parse_str(s).map_err(|_| BillingError::bad(table, id, column, format!("{s:?} (not a UUID)")))
}

pub(crate) fn status(table: &'static str, id: &str, s: &str) -> Result<InvoiceStatus, BillingError> {
    InvoiceStatus::parse(s).ok_or_else(|| BillingError::bad(table, id, "status", format!("{s:?}")))
}

pub(crate) fn line_items(id: &str, v: serde_json::Value) -> Result<Vec<LineItem>, BillingError> {
    serde_json::from_value(v)
        .map_err(|e| BillingError::bad("keel_invoices", id, "line_items", format!("unparseable line items ({e})")))
}

pub(crate) fn line_items_text(id: &str, s: &str) -> Result<Vec<LineItem>, BillingError> {
    serde_json::from_str(s)
        .map_err(|e| BillingError::bad("keel_invoices", id, "line_items", format!("unparseable line items ({e})")))
}

/// A remembered HTTP status: anything outside 100..=599 was not written by this store.
pub(crate) fn http_status(key: &str, v: i32) -> Result<u16, BillingError> {
    u16::try_from(v)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| BillingError::bad("keel_idempotency_keys", key, "status", v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrecognised_values_are_errors_naming_the_column() {
        let e = from_ms("keel_invoices", "x", "created_at", i64::MAX).unwrap_err();
        assert!(e.to_string().contains("created_at"), "{e}");
        assert!(status("keel_invoices", "x", "refunded").unwrap_err().to_string().contains("\"refunded\""));
        assert!(line_items_text("x", "[{\"description\":\"a\"}]").unwrap_err().to_string().contains("line_items"));
        assert!(line_items_text("x", "not json").is_err());
        assert!(http_status("k", 0).is_err());
        assert!(http_status("k", 70_000).is_err());
        assert_eq!(http_status("k", 201).unwrap(), 201);
        assert!(uuid("keel_invoices", "x", "id", "nope").is_err());
        assert_eq!(from_ms("t", "x", "c", 0).unwrap(), DateTime::<Utc>::UNIX_EPOCH);
    }
}
