//! `GET /api/admin/reports/revenue?from=&to=&group_by=month|status[&format=csv]`: exact totals
//! per currency (never mixed) and exact counts, from invoices and payments.

use super::range::{day, span};
use crate::auth::Principal;
use crate::extract::{param, query_pairs};
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keel_billing::report::{Grouping, Kind, ReportQuery};
use keel_billing::BillingError;
use keel_money::{GroupedWideTotals, PagedError, WideTotal, WideTotals};
use keel_tenancy::Permission;
use serde::Serialize;

/// The report's query. Documentation only: the handler reads the raw query so each bad value is
/// a problem naming its parameter.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct RevenueQuery {
    /// First day, inclusive (1970-01-01 to 9999-12-31; the span is capped by KEEL_REPORT_MAX_DAYS).
    #[param(schema_with = day_schema)]
    from: String,
    /// Last day, inclusive.
    #[param(schema_with = day_schema)]
    to: String,
    /// `month` when absent.
    #[param(schema_with = group_by_schema)]
    group_by: Option<String>,
    /// `json` when absent.
    #[param(schema_with = format_schema)]
    format: Option<String>,
}

fn day_schema() -> utoipa::openapi::schema::Object {
    crate::routes::date_schema(super::range::FIRST_DAY, super::range::LAST_DAY)
}
fn group_by_schema() -> utoipa::openapi::schema::Object {
    crate::routes::one_of(&["month", "status"])
}
fn format_schema() -> utoipa::openapi::schema::Object {
    crate::routes::one_of(&["json", "csv"])
}

#[utoipa::path(
    get,
    path = "/api/admin/reports/revenue",
    tag = "reports",
    summary = "Exact revenue totals per currency, by month or status (JSON or CSV)",
    params(crate::routes::OrgHeader, RevenueQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Exact totals: invoices and payments, per group and overall, per currency",
            content((Revenue = "application/json"), (String = "text/csv"))),
        (status = 400, response = crate::routes::BadRequest),
        (status = 422, response = crate::routes::Invalid),
    )
)]
pub(crate) async fn revenue(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    p.require(Permission::ReportsView)?;
    let q = query_pairs(raw.as_deref());
    let from = day("from", param(&q, "from"))?;
    let to = day("to", param(&q, "to"))?;
    let grouping = match param(&q, "group_by").unwrap_or("month") {
        "month" => Grouping::Month,
        "status" => Grouping::Status,
        other => return Err(ApiError::invalid("group_by", format!("must be month or status, got {other:?}"))),
    };
    let csv = match param(&q, "format").unwrap_or("json") {
        "json" => false,
        "csv" => true,
        other => return Err(ApiError::invalid("format", format!("must be json or csv, got {other:?}"))),
    };
    let (start, end) = span(from, to, state.config.report_max_days)?;
    let invoices = totals(&state, Kind::Invoices, p.org_id, start, end, grouping).await?;
    let payments = totals(&state, Kind::Payments, p.org_id, start, end, grouping).await?;
    if csv {
        // Computed in full before the first byte: a failure can never leave a partial CSV.
        let mut out = String::from("section,group,currency,count,total_minor,total\n");
        for (section, t) in [("invoices", &invoices), ("payments", &payments)] {
            for (g, totals) in &t.groups {
                csv_rows(&mut out, section, g, totals);
            }
            csv_rows(&mut out, section, "ALL", &t.overall);
        }
        let mut res = out.into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        return Ok(res);
    }
    // Typed, not a serde_json::Value: a Value cannot hold an integer past 64 bits, and a
    // total may be one.
    Ok(Json(Revenue {
        from: from.to_string(),
        to: to.to_string(),
        group_by: if grouping == Grouping::Month { "month" } else { "status" },
        invoices: Grouped::of(&invoices),
        payments: Grouped::of(&payments),
    })
    .into_response())
}

/// The revenue report (JSON): invoices issued and payments received in the range.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Revenue<'a> {
    #[schema(format = Date)]
    from: String,
    #[schema(format = Date)]
    to: String,
    #[schema(schema_with = group_by_schema)]
    group_by: &'static str,
    invoices: Grouped<'a>,
    payments: Grouped<'a>,
}

/// Totals per group (a month `YYYY-MM` or a status) and overall.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Grouped<'a> {
    groups: Vec<Group<'a>>,
    overall: Exact<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Group<'a> {
    key: &'a str,
    count: u64,
    totals: &'a [WideTotal],
}

/// `{"count": rows, "totals": [per currency]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Exact<'a> {
    count: u64,
    totals: &'a [WideTotal],
}

impl<'a> Exact<'a> {
    pub(crate) fn of(t: &'a WideTotals) -> Self {
        Exact { count: t.rows, totals: &t.per_currency }
    }
}

impl<'a> Grouped<'a> {
    fn of(g: &'a GroupedWideTotals<String>) -> Self {
        Grouped {
            groups: g.groups.iter().map(|(k, t)| Group { key: k, count: t.rows, totals: &t.per_currency }).collect(),
            overall: Exact::of(&g.overall),
        }
    }
}

pub(crate) async fn totals(
    state: &AppState,
    kind: Kind,
    org: keel_ids::OrgId,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    grouping: Grouping,
) -> Result<GroupedWideTotals<String>, ApiError> {
    let size = state.report_page_size;
    let source = state.reports.clone();
    let query = ReportQuery { kind, org, from: start, until: end, grouping };
    // Wide (i128) sums: see the module doc for why no stored data can overflow them.
    keel_money::sum_pages_by_wide(|cursor| {
        let source = source.clone();
        async move { source.page(query, cursor, size).await }
    })
    .await
    .map_err(report_failed)
}

/// Any page failing fails the report with a 5xx problem: never a partial or zero total.
fn report_failed(e: PagedError<BillingError>) -> ApiError {
    let unavailable = matches!(&e, PagedError::Page { source, .. } if source.is_unavailable());
    let mut a = if unavailable {
        ApiError::unavailable("the report's data source is unavailable; no partial totals are returned", 5)
    } else {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "report-failed",
            "Report failed",
            "the report could not read all of its data, so no totals are returned (a partial total would look complete)",
        )
    };
    a.internal = Some(e.to_string());
    a
}

fn csv_rows(out: &mut String, section: &str, group: &str, t: &WideTotals) {
    for c in &t.per_currency {
        out.push_str(&format!(
            "{section},{},{},{},{},{}\n",
            csv_field(group),
            c.currency.code(),
            c.count,
            c.minor,
            c.plain()
        ));
    }
}

/// Quotes a field when it holds a separator, quote or newline, and defuses spreadsheet
/// formulas (a leading `=`, `+`, `-` or `@`).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
