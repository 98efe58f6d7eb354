//! `GET /api/admin/dashboard?month=YYYY-MM`: exact KPIs for one month, cached five minutes per
//! org and month in keel-orgcache's `dashboard` bucket and invalidated by tag whenever that
//! org's invoices or payments change, so a total never lags a write the user just made. The
//! forecast is a separate, labelled field and never mixed into actual amounts.

use super::range::{month, next_month, start_of};
use super::revenue::{exact_json, totals};
use super::source::{Grouping, Kind};
use crate::auth::Principal;
use crate::extract::{param, query_pairs};
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::Datelike;
use keel_money::{Forecast, Rounding};
use keel_orgcache::{CacheValue, LoadError, Tag};
use keel_tenancy::Permission;
use serde_json::{json, Value};

/// The tag every dashboard entry carries; invoice and payment writes invalidate it.
pub(crate) const DASHBOARD_TAG: &str = "billing";

struct Kpis(Value);

impl CacheValue for Kpis {
    fn weight(&self) -> usize {
        self.0.to_string().len()
    }
}

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    p.require(Permission::ReportsView)?;
    let q = query_pairs(raw.as_deref());
    let first = month("month", param(&q, "month"))?;
    let key = format!("dashboard:{}", first.format("%Y-%m"));
    let tag = Tag::new(DASHBOARD_TAG).map_err(ApiError::internal)?;
    let st = state.clone();
    let org = p.org_id;
    let cached =
        state
            .cache
            .get_or_load(org, crate::cache::DASHBOARD, &key, &[tag], || async move {
                compute(&st, org, first).await.map(Kpis)
            })
            .await
            .map_err(|e| match e {
                LoadError::Failed { error, .. } => (*error).clone(),
                other => ApiError::internal(other),
            })?;
    let mut body = cached.value().0.clone();
    body["as_of"] = json!(cached.as_of().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    body["cached"] = json!(cached.was_hit());
    Ok(Json(body))
}

async fn compute(state: &AppState, org: keel_ids::OrgId, first: chrono::NaiveDate) -> Result<Value, ApiError> {
    let (start, end) = (start_of(first), start_of(next_month(first)));
    let invoices = totals(state, Kind::Invoices, org, start, end, Grouping::Status).await?;
    let payments = totals(state, Kind::Payments, org, start, end, Grouping::Status).await?;
    let open = invoices.groups.get("open").map(exact_json).unwrap_or(json!({"count": 0, "totals": []}));
    // Forecast: month-end payments at the month's daily rate so far (current month only).
    let now = chrono::Utc::now();
    let forecast = if now >= start && now < end {
        let days_in_month = (next_month(first) - first).num_days();
        let elapsed = (now.date_naive() - first).num_days() + 1;
        let projected: Vec<Value> = payments
            .overall
            .per_currency
            .iter()
            .filter_map(|c| c.total.mul_ratio(days_in_month, elapsed, Rounding::HalfEven).ok())
            .map(|m| {
                let f = Forecast::new(m);
                json!({"currency": m.currency().code(), "minor": m.minor(), "formatted": f.to_string()})
            })
            .collect();
        json!({"label": "forecast: month-end payments at this month's daily rate so far", "basis": "forecast", "totals": projected})
    } else {
        Value::Null
    };
    Ok(json!({
        "month": format!("{:04}-{:02}", first.year(), first.month()),
        "invoices": exact_json(&invoices.overall),
        "open_invoices": open,
        "payments": exact_json(&payments.overall),
        "forecast": forecast,
    }))
}
