//! Date parameters: `YYYY-MM-DD` days and `YYYY-MM` months, checked for the supported range,
//! order and span.
//!
//! Reports accept dates from [`FIRST_DAY`] to [`LAST_DAY`] (documented in the API's
//! configuration guide). chrono parses years up to ±262143, where adding a day to the last date
//! overflowed (a panic), and PostgreSQL's `timestamptz` stops at 4713 BC (a "timestamp out of
//! range" error, a 500); no invoice predates the Unix epoch, and four-digit years are what
//! `YYYY-MM-DD` promises.

use crate::ApiError;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// The first day a report may ask for.
pub(crate) const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};
/// The last day a report may ask for.
pub(crate) const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => panic!("9999-12-31 is a date"),
};

fn supported(field: &str, d: NaiveDate, shown: &str) -> Result<NaiveDate, ApiError> {
    if (FIRST_DAY..=LAST_DAY).contains(&d) {
        Ok(d)
    } else {
        Err(ApiError::invalid(field, format!("must be from {FIRST_DAY} to {LAST_DAY}, got {shown}")))
    }
}

pub(crate) fn day(field: &str, raw: Option<&str>) -> Result<NaiveDate, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::bad_param(field, "is required, as YYYY-MM-DD"))?;
    let d = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_param(field, format!("must be a date like 2026-01-31, got {raw:?}")))?;
    supported(field, d, raw.trim())
}

pub(crate) fn month(field: &str, raw: Option<&str>) -> Result<NaiveDate, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::bad_param(field, "is required, as YYYY-MM"))?;
    let d = NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_param(field, format!("must be a month like 2026-01, got {raw:?}")))?;
    supported(field, d, raw.trim())
}

pub(crate) fn start_of(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The first day of the month after `d`'s (in range for every supported `d`).
pub(crate) fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

/// `[from, to]` inclusive days → `[start, end)` instants, refusing reversed or too-wide ranges.
/// Both days are in the supported range, so the end (one day after `to`) cannot overflow.
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
    let end = to.succ_opt().ok_or_else(|| ApiError::invalid("to", format!("must be at most {LAST_DAY}")))?;
    Ok((start_of(from), start_of(end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn dates_outside_the_supported_range_are_422_naming_the_field() {
        for raw in ["+262142-12-31", "-4714-01-01", "1969-12-31", "10000-01-01", "-262143-01-01"] {
            let Err(e) = day("from", Some(raw)) else { panic!("{raw} accepted") };
            // Unparseable forms stay 400; parseable dates outside the range are 422.
            assert!(matches!(e.status, StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST), "{raw}");
            assert_eq!(e.errors[0].field, "from", "{raw}");
        }
        let e = day("to", Some("+262142-12-31")).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.errors[0].message.contains("1970-01-01") && e.errors[0].message.contains("9999-12-31"));
        for raw in ["-262143-01", "1969-12", "+10000-01"] {
            let e = month("month", Some(raw)).unwrap_err();
            assert_eq!(e.errors[0].field, "month", "{raw}");
        }
        assert_eq!(day("from", Some("1970-01-01")).unwrap(), FIRST_DAY);
        assert_eq!(month("month", Some("9999-12")).unwrap(), NaiveDate::from_ymd_opt(9999, 12, 1).unwrap());
        let (_, end) = span(LAST_DAY, LAST_DAY, 1).unwrap();
        assert_eq!(end, start_of(NaiveDate::from_ymd_opt(10000, 1, 1).unwrap()));
        assert_eq!(
            next_month(NaiveDate::from_ymd_opt(9999, 12, 1).unwrap()),
            NaiveDate::from_ymd_opt(10000, 1, 1).unwrap()
        );
    }
}
