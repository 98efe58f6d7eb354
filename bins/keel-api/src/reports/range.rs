//! Date parameters: `YYYY-MM-DD` days and `YYYY-MM` months, checked for order and span.

use crate::ApiError;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

pub(crate) fn day(field: &str, raw: Option<&str>) -> Result<NaiveDate, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::bad_param(field, "is required, as YYYY-MM-DD"))?;
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_param(field, format!("must be a date like 2026-01-31, got {raw:?}")))
}

pub(crate) fn month(field: &str, raw: Option<&str>) -> Result<NaiveDate, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::bad_param(field, "is required, as YYYY-MM"))?;
    NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_param(field, format!("must be a month like 2026-01, got {raw:?}")))
}

pub(crate) fn start_of(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The first day of the month after `d`'s.
pub(crate) fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

/// `[from, to]` inclusive days → `[start, end)` instants, refusing reversed or too-wide ranges.
pub(crate) fn span(from: NaiveDate, to: NaiveDate, max_days: u32) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    if to < from {
        return Err(ApiError::invalid("to", "must not be before from"));
    }
    let days = (to - from).num_days() + 1;
    if days > max_days as i64 {
        return Err(ApiError::invalid(
            "to",
            format!("the range covers {days} days; at most {max_days} are allowed (KEEL_REPORT_MAX_DAYS)"),
        ));
    }
    Ok((start_of(from), start_of(to) + chrono::Duration::days(1)))
}
