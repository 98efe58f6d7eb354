//! `GET /api/admin/dashboard?month=YYYY-MM`: exact KPIs for one month, cached five minutes per
//! org and month in keel-orgcache's `dashboard` bucket and invalidated by tag whenever that
//! org's invoices or payments change, so a total never lags a write the user just made. The
//! forecast is a separate, labelled field and never mixed into actual amounts.

use super::range::{month, next_month, start_of};
use super::revenue::{totals, Exact};
use crate::auth::Principal;
use crate::extract::{param, query_pairs};
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::Datelike;
use keel_billing::report::{Grouping, Kind};
use keel_money::{Rounding, WideTotal, WideTotals};
use keel_orgcache::{CacheValue, LoadError, Tag};
use keel_tenancy::Permission;
use serde::Serialize;

/// The tag every dashboard entry carries; invoice and payment writes invalidate it.
pub(crate) const DASHBOARD_TAG: &str = "billing";

/// The cached figures. Typed, not a serde_json::Value: a Value cannot hold an integer past 64
/// bits, and a total may be one (reports answer in i128; see the module doc).
#[derive(Serialize)]
struct Kpis {
    month: String,
    invoices: WideTotals,
    open_invoices: WideTotals,
    payments: WideTotals,
    forecast: Option<ForecastKpi>,
}

/// A projection, labelled so it is never read as an actual amount.
#[derive(Serialize, utoipa::ToSchema)]
struct ForecastKpi {
    label: &'static str,
    basis: &'static str,
    totals: Vec<ProjectedTotal>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ProjectedTotal {
    currency: &'static str,
    /// Minor units: an integer of any size.
    #[schema(schema_with = crate::routes::wide_integer)]
    minor: i128,
    formatted: String,
}

impl CacheValue for Kpis {
    fn weight(&self) -> usize {
        serde_json::to_vec(self).map_or(1, |v| v.len())
    }
}

/// The answer: the cached figures, and when and whether they came from the cache.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Answer<'a> {
    /// `YYYY-MM`.
    month: &'a str,
    invoices: Exact<'a>,
    open_invoices: Exact<'a>,
    payments: Exact<'a>,
    /// Month-end payments projected at this month's daily rate; only for the current month.
    #[schema(value_type = Option<ForecastKpi>)]
    forecast: &'a Option<ForecastKpi>,
    /// When the figures were computed.
    #[schema(format = DateTime)]
    as_of: String,
    /// Whether they came from the cache.
    cached: bool,
}

/// The dashboard's query. Documentation only: the handler reads the raw query.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct DashboardQuery {
    /// The month, `YYYY-MM` (1970-01 to 9999-12).
    #[param(schema_with = month_schema)]
    month: String,
}

fn month_schema() -> utoipa::openapi::schema::Object {
    let mut o = crate::routes::one_of(&[]);
    o.enum_values = None;
    o.pattern = Some("^[0-9]{4}-(0[1-9]|1[0-2])$".into());
    o.description =
        Some(format!("{} to {}", super::range::FIRST_DAY.format("%Y-%m"), super::range::LAST_DAY.format("%Y-%m")));
    o
}

#[utoipa::path(
    get,
    path = "/api/admin/dashboard",
    tag = "reports",
    summary = "Exact KPIs for a month, cached five minutes; the forecast labelled separately",
    params(crate::routes::OrgHeader, DashboardQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The month's KPIs", body = Answer),
        (status = 400, response = crate::routes::BadRequest),
        (status = 422, response = crate::routes::Invalid),
    )
)]
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
) -> Result<axum::response::Response, ApiError> {
    p.require(Permission::ReportsView)?;
    let q = query_pairs(raw.as_deref());
    let first = month("month", param(&q, "month"))?;
    let key = format!("dashboard:{}", first.format("%Y-%m"));
    let tag = Tag::new(DASHBOARD_TAG).map_err(ApiError::internal)?;
    let st = state.clone();
    let org = p.org_id;
    let cached = state
        .cache
        .get_or_load(org, crate::cache::DASHBOARD, &key, &[tag], || async move { compute(&st, org, first).await })
        .await
        .map_err(|e| match e {
            LoadError::Failed { error, .. } => (*error).clone(),
            other => ApiError::internal(other),
        })?;
    let k = cached.value();
    let answer = Answer {
        month: &k.month,
        invoices: Exact::of(&k.invoices),
        open_invoices: Exact::of(&k.open_invoices),
        payments: Exact::of(&k.payments),
        forecast: &k.forecast,
        as_of: cached.as_of().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        cached: cached.was_hit(),
    };
    Ok(axum::response::IntoResponse::into_response(Json(answer)))
}

async fn compute(state: &AppState, org: keel_ids::OrgId, first: chrono::NaiveDate) -> Result<Kpis, ApiError> {
    let (start, end) = (start_of(first), start_of(next_month(first)));
    let invoices = totals(state, Kind::Invoices, org, start, end, Grouping::Status).await?;
    let payments = totals(state, Kind::Payments, org, start, end, Grouping::Status).await?;
    let open = invoices.groups.get("open").cloned().unwrap_or_default();
    // Forecast: month-end payments at the month's daily rate so far (current month only).
    let now = chrono::Utc::now();
    let forecast = if now >= start && now < end {
        let days_in_month = (next_month(first) - first).num_days();
        let elapsed = (now.date_naive() - first).num_days() + 1;
        let totals = payments
            .overall
            .per_currency
            .iter()
            .map(|c| c.mul_ratio(days_in_month, elapsed, Rounding::HalfEven))
            .collect::<Result<Vec<WideTotal>, _>>()
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|m| ProjectedTotal {
                currency: m.currency.code(),
                minor: m.minor,
                formatted: keel_money::Forecast::new(m.formatted()).to_string(),
            })
            .collect();
        Some(ForecastKpi {
            label: "forecast: month-end payments at this month's daily rate so far",
            basis: "forecast",
            totals,
        })
    } else {
        None
    };
    Ok(Kpis {
        month: format!("{:04}-{:02}", first.year(), first.month()),
        invoices: invoices.overall,
        open_invoices: open,
        payments: payments.overall,
        forecast,
    })
}
