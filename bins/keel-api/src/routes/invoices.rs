//! `/api/admin/invoices`: create (single and bulk, idempotent), list with filters, payments.

use super::openapi::{BadRequest, InProgress, Invalid, NotFound, TooLarge};
use super::schema;
use crate::auth::Principal;
use crate::extract::{param, query_pairs, JsonAfterAuth};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keel_billing::{
    BillingError, BillingStore, Created, Idempotency, Invoice, InvoiceStatus, LineItem, ListFilter, NewInvoice,
    Payment, Rendered, MAX_AMOUNT_MINOR,
};
use keel_money::Currency;
use keel_tenancy::Permission;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::openapi::schema::Object;
use utoipa::openapi::Array;
use utoipa::{IntoParams, ToSchema};

/// Arrays in request bodies are capped here (bulk creates, line items).
pub(crate) const MAX_ITEMS: usize = 1000;
pub(crate) const DEFAULT_LIMIT: i64 = 50;
pub(crate) const MAX_LIMIT: i64 = 200;
/// Longest customer name, in characters (after trimming).
const MAX_CUSTOMER_NAME_CHARS: usize = 200;
/// Longest line description, in characters (after trimming).
const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most units on one line.
const MAX_QUANTITY: i64 = 1_000_000;
/// Longest list search (`q`), in characters.
const MAX_QUERY_CHARS: usize = 200;
/// Longest `Idempotency-Key`, in bytes (visible ASCII, so characters too).
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// `Retry-After` of a 409 for an Idempotency-Key still in use: the first request normally
/// finishes within this, and its answer is then replayed.
const IN_PROGRESS_RETRY_AFTER_S: u64 = 1;

/// The billing store on the state's database (a cheap handle: the pool is shared).
fn billing(state: &AppState) -> Arc<dyn BillingStore> {
    keel_billing::open(state.db.clone())
}

/// A stored value this build does not recognise is a 500 (logged, never sent); storage
/// failures map as storage errors (503 when the database is unavailable).
impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Storage(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

/// One line of a new invoice.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineItemIn {
    /// What was sold; printable text, may span lines.
    #[schema(schema_with = description_schema)]
    description: String,
    #[schema(schema_with = quantity_schema)]
    quantity: i64,
    /// Price of one unit in the currency's minor units (cents for USD).
    #[schema(schema_with = unit_amount_schema)]
    unit_amount_minor: i64,
}

/// A new invoice.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvoiceIn {
    /// Printable text on one line.
    #[schema(schema_with = customer_name_schema)]
    customer_name: String,
    /// An ISO 4217 code keel-money knows (`USD`); lower case is accepted too.
    #[schema(schema_with = currency_schema)]
    currency: String,
    /// `draft` (the default) or `open`.
    #[serde(default)]
    #[schema(schema_with = new_status_schema, required = false)]
    status: Option<InvoiceStatus>,
    #[schema(schema_with = line_items_schema)]
    line_items: Vec<LineItemIn>,
}

/// Several new invoices, created together or not at all.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkIn {
    #[schema(schema_with = invoices_schema)]
    invoices: Vec<InvoiceIn>,
}

/// `X-Org-Id`: the org the request acts in (one of the caller's); without it, the session's
/// active org or the token's. Documentation only: the principal extractor reads the header.
#[derive(IntoParams)]
#[into_params(names("X-Org-Id"), parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct OrgHeader(#[param(nullable = false)] Option<uuid::Uuid>);

/// `Idempotency-Key`: a create with a key used in the last 24 hours replays the first answer
/// (`Idempotency-Replayed: true`). Documentation only: [`idempotency`] reads the header.
#[derive(IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyHeader(#[param(schema_with = idempotency_key_schema)] Option<String>);

/// The list's query. Documentation only: [`list_for`] reads the raw query, so a bad value is a
/// problem naming the parameter rather than the extractor's.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListQuery {
    /// Page size; 50 when absent.
    #[param(schema_with = limit_schema)]
    limit: Option<i64>,
    /// Invoices to skip.
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Only invoices in this state.
    #[param(schema_with = status_filter_schema)]
    status: Option<String>,
    /// Search in customer names and invoice numbers.
    #[param(schema_with = q_schema)]
    q: Option<String>,
}

/// One page of the org's invoices, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct InvoiceList {
    items: Vec<Invoice>,
    /// Matching invoices across all pages.
    total: i64,
    limit: i64,
    offset: i64,
}

/// A bulk create's answer: the invoices, in the order sent.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedInvoices<'a> {
    items: &'a [Invoice],
}

fn idempotency_key_schema() -> Object {
    schema::string(1, MAX_IDEMPOTENCY_KEY_LEN)
}
fn limit_schema() -> Object {
    schema::integer(1, MAX_LIMIT)
}
fn status_filter_schema() -> Object {
    let all = [InvoiceStatus::Draft, InvoiceStatus::Open, InvoiceStatus::Paid, InvoiceStatus::Void];
    schema::one_of(&all.map(InvoiceStatus::as_str))
}
fn q_schema() -> Object {
    schema::string(0, MAX_QUERY_CHARS)
}
fn description_schema() -> Object {
    schema::string(1, MAX_DESCRIPTION_CHARS)
}
fn quantity_schema() -> Object {
    schema::integer(1, MAX_QUANTITY)
}
fn unit_amount_schema() -> Object {
    schema::integer(0, MAX_AMOUNT_MINOR)
}
fn customer_name_schema() -> Object {
    schema::string(1, MAX_CUSTOMER_NAME_CHARS)
}
fn currency_schema() -> Object {
    let codes: Vec<&str> = Currency::all().map(Currency::code).collect();
    schema::one_of(&codes)
}
fn new_status_schema() -> Object {
    schema::one_of(&[InvoiceStatus::Draft.as_str(), InvoiceStatus::Open.as_str()])
}
fn line_items_schema() -> Array {
    schema::array_of("LineItemIn", 1, MAX_ITEMS)
}
fn invoices_schema() -> Array {
    schema::array_of("InvoiceIn", 1, MAX_ITEMS)
}
fn payment_amount_schema() -> Object {
    schema::integer(1, MAX_AMOUNT_MINOR)
}

/// Free text that databases store as given: no control characters. PostgreSQL refuses NUL in
/// `text` outright and SQLite's `length()` stops at it, so a NUL reached the database as an
/// error (a 500) instead of a 422; other controls have no place in names either. Descriptions
/// may span lines.
fn plain_text(field: &str, s: &str, multiline: bool) -> Result<(), ApiError> {
    match s.chars().find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
        Some(c) => Err(ApiError::invalid_field(
            field.to_owned(),
            format!("must not contain control characters (found U+{:04X}); send printable text", u32::from(c)),
        )),
        None => Ok(()),
    }
}

/// Validates one invoice; `at` prefixes field paths (`invoices[3].`).
fn validate(inv: &InvoiceIn, at: &str) -> Result<NewInvoice, ApiError> {
    let name = inv.customer_name.trim();
    if name.is_empty() || name.chars().count() > MAX_CUSTOMER_NAME_CHARS {
        return Err(ApiError::invalid_field(
            format!("{at}customer_name"),
            format!("must be 1 to {MAX_CUSTOMER_NAME_CHARS} characters"),
        ));
    }
    plain_text(&format!("{at}customer_name"), name, false)?;
    let currency = Currency::from_code(&inv.currency)
        .map_err(|e| ApiError::invalid_field(format!("{at}currency"), e.to_string()))?;
    let status = inv.status.unwrap_or(InvoiceStatus::Draft);
    if matches!(status, InvoiceStatus::Paid | InvoiceStatus::Void) {
        return Err(ApiError::invalid_field(
            format!("{at}status"),
            "new invoices are draft or open; paid follows payments, void is an action",
        ));
    }
    if inv.line_items.is_empty() || inv.line_items.len() > MAX_ITEMS {
        return Err(ApiError::invalid_field(format!("{at}line_items"), format!("must hold 1 to {MAX_ITEMS} items")));
    }
    // Every amount is bounded by MAX_AMOUNT_MINOR, so a report summing any number of them
    // cannot overflow (see its doc); i128 here, because quantity × unit may pass i64 before
    // the bound refuses it.
    let max = i128::from(MAX_AMOUNT_MINOR);
    let mut total: i128 = 0;
    for (i, li) in inv.line_items.iter().enumerate() {
        let f = |name: &str| format!("{at}line_items[{i}].{name}");
        let d = li.description.trim();
        if d.is_empty() || d.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(ApiError::invalid_field(
                f("description"),
                format!("must be 1 to {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        plain_text(&f("description"), d, true)?;
        if !(1..=MAX_QUANTITY).contains(&li.quantity) {
            return Err(ApiError::invalid_field(f("quantity"), format!("must be from 1 to {MAX_QUANTITY}")));
        }
        if li.unit_amount_minor < 0 {
            return Err(ApiError::invalid_field(f("unit_amount_minor"), "must not be negative"));
        }
        if li.unit_amount_minor > MAX_AMOUNT_MINOR {
            return Err(ApiError::invalid_field(
                f("unit_amount_minor"),
                format!("must be at most {MAX_AMOUNT_MINOR} minor units (the largest amount Keel accepts)"),
            ));
        }
        let line = i128::from(li.quantity) * i128::from(li.unit_amount_minor);
        if line > max {
            return Err(ApiError::invalid_field(
                f("unit_amount_minor"),
                format!("quantity × unit_amount_minor is {line}; a line may be at most {MAX_AMOUNT_MINOR} minor units"),
            ));
        }
        total += line;
        if total > max {
            return Err(ApiError::invalid_field(
                format!("{at}line_items"),
                format!("the invoice total passes {MAX_AMOUNT_MINOR} minor units (the largest amount Keel accepts) at line {i}; split it into several invoices"),
            ));
        }
    }
    let total = i64::try_from(total).map_err(ApiError::internal)?;
    let line_items = inv
        .line_items
        .iter()
        .map(|li| LineItem {
            description: li.description.clone(),
            quantity: li.quantity,
            unit_amount_minor: li.unit_amount_minor,
        })
        .collect();
    Ok(NewInvoice { customer_name: name.to_owned(), currency: currency.code(), status, total_minor: total, line_items })
}

fn idempotency(headers: &HeaderMap, body: &impl Serialize) -> Result<Option<Idempotency>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let key =
        v.to_str().ok().map(str::trim).filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN).ok_or_else(
            || {
                ApiError::bad_param(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
                )
            },
        )?;
    let canonical = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok(Some(Idempotency { key: key.to_owned(), request_hash: hex::encode(Sha256::digest(&canonical)) }))
}

async fn create_common(
    state: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    body: &impl Serialize,
    items: Vec<NewInvoice>,
    bulk: bool,
) -> Result<Response, ApiError> {
    let idem = idempotency(headers, body)?;
    let now = chrono::Utc::now();
    let store = billing(state);
    if let Some(i) = &idem {
        if let Some(found) = store.find_idempotent(p.org_id, i, now).await? {
            return Ok(replay(found));
        }
    }
    let render = move |inv: &[Invoice]| {
        let body =
            if bulk { serde_json::to_string(&CreatedInvoices { items: inv }) } else { serde_json::to_string(&inv[0]) };
        Rendered { status: 201, body: body.unwrap_or_default() }
    };
    // The key is claimed inside the create's transaction: racing requests with one key create
    // once; the others replay its answer, or get 409 while it is still running.
    let created = store.create(p.org_id, &items, idem.as_ref(), now, &render).await?;
    Ok(match created {
        Created::New(inv) => {
            invalidate_billing(state, p.org_id).await;
            let Rendered { status, body } = render(&inv);
            json_response(status, body, false)
        }
        other => replay(other),
    })
}

fn replay(c: Created) -> Response {
    match c {
        Created::Replay(Rendered { status, body }) => json_response(status, body, true),
        Created::KeyReused => ApiError::invalid(
            "Idempotency-Key",
            "was already used with a different request in the last 24 hours; use a new key",
        )
        .into_response(),
        // The IETF Idempotency-Key draft's answer to a concurrent request with the same key.
        Created::InProgress => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry after Retry-After seconds to get its answer",
            );
            e.retry_after_s = Some(IN_PROGRESS_RETRY_AFTER_S);
            e.into_response()
        }
        Created::New(_) => ApiError::internal("replay of a new creation").into_response(),
    }
}

fn json_response(status: u16, body: String, replayed: bool) -> Response {
    let mut res = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    res.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        res.headers_mut().insert("idempotency-replayed", HeaderValue::from_static("true"));
    }
    res
}

#[utoipa::path(
    post,
    path = "/api/admin/invoices",
    tag = "invoices",
    summary = "Create one invoice (honours Idempotency-Key)",
    params(OrgHeader, IdempotencyHeader),
    request_body = InvoiceIn,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created (or the first answer replayed, with `Idempotency-Replayed: true`)", body = Invoice,
            headers(("Idempotency-Replayed" = String, description = "`true` when this answer replays an earlier request's"))),
        (status = 400, response = BadRequest),
        (status = 409, response = InProgress),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: JsonAfterAuth<InvoiceIn>,
) -> Result<Response, ApiError> {
    p.require(Permission::InvoicesManage)?;
    let body = body.parse()?;
    let item = validate(&body, "")?;
    create_common(&state, &p, &headers, &body, vec![item], false).await
}

#[utoipa::path(
    post,
    path = "/api/admin/invoices/bulk",
    tag = "invoices",
    summary = "Create up to 1,000 invoices at once, all or none (honours Idempotency-Key)",
    params(OrgHeader, IdempotencyHeader),
    request_body = BulkIn,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created (or the first answer replayed, with `Idempotency-Replayed: true`)", body = CreatedInvoices,
            headers(("Idempotency-Replayed" = String, description = "`true` when this answer replays an earlier request's"))),
        (status = 400, response = BadRequest),
        (status = 409, response = InProgress),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn create_bulk(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: JsonAfterAuth<BulkIn>,
) -> Result<Response, ApiError> {
    p.require(Permission::InvoicesManage)?;
    let body = body.parse()?;
    if body.invoices.is_empty() || body.invoices.len() > MAX_ITEMS {
        return Err(ApiError::invalid("invoices", format!("must hold 1 to {MAX_ITEMS} invoices")));
    }
    let items = body
        .invoices
        .iter()
        .enumerate()
        .map(|(i, inv)| validate(inv, &format!("invoices[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    create_common(&state, &p, &headers, &body, items, true).await
}

fn int_param(pairs: &[(String, String)], name: &str, default: i64) -> Result<i64, ApiError> {
    match param(pairs, name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            Ok(_) => Err(ApiError::bad_param(name, "must not be negative")),
            Err(_) => Err(ApiError::bad_param(name, format!("must be a whole number, got {v:?}"))),
        },
    }
}

/// `GET /api/admin/invoices?limit=&offset=&status=&q=`.
#[utoipa::path(
    get,
    path = "/api/admin/invoices",
    tag = "invoices",
    summary = "List the active org's invoices, newest first",
    params(OrgHeader, ListQuery),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of invoices", body = InvoiceList),
        (status = 400, response = BadRequest),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<InvoiceList>, ApiError> {
    list_for(&state, &p, raw.as_deref()).await
}

/// The list handler's work once the caller is known (also mounted bare by `keel_api::bench`).
pub(crate) async fn list_for(
    state: &AppState,
    p: &Principal,
    raw: Option<&str>,
) -> Result<Json<InvoiceList>, ApiError> {
    p.require(Permission::InvoicesView)?;
    let pairs = query_pairs(raw);
    let limit = int_param(&pairs, "limit", DEFAULT_LIMIT)?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_param("limit", format!("must be from 1 to {MAX_LIMIT}")));
    }
    let offset = int_param(&pairs, "offset", 0)?;
    let status = match param(&pairs, "status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            InvoiceStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "must be one of draft, open, paid, void"))?,
        ),
    };
    let q = param(&pairs, "q").map(str::trim).filter(|s| !s.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(ApiError::invalid("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    if let Some(q) = q {
        plain_text("q", q, false)?;
    }
    let filter = ListFilter { status, q, limit, offset };
    let keel_billing::InvoicePage { items, total } = billing(state).list(p.org_id, &filter).await?;
    Ok(Json(InvoiceList { items, total, limit, offset }))
}

fn invoice_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::bad_param("id", "must be a UUID"))
}

/// `GET /api/admin/invoices/{id}`.
#[utoipa::path(
    get,
    path = "/api/admin/invoices/{id}",
    tag = "invoices",
    summary = "One invoice of the active org",
    params(OrgHeader, ("id" = uuid::Uuid, Path, description = "The invoice's id")),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The invoice", body = Invoice),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Invoice>, ApiError> {
    p.require(Permission::InvoicesView)?;
    let id = invoice_id(&id)?;
    billing(&state).get(p.org_id, id).await?.map(Json).ok_or_else(|| ApiError::not_found("no such invoice in this org"))
}

/// A payment against an invoice.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentIn {
    /// In the invoice's currency's minor units.
    #[schema(schema_with = payment_amount_schema)]
    amount_minor: i64,
    /// Must match the invoice's currency when given (any case).
    #[serde(default)]
    #[schema(schema_with = currency_schema, required = false)]
    currency: Option<String>,
}

/// `POST /api/admin/invoices/{id}/payments`.
#[utoipa::path(
    post,
    path = "/api/admin/invoices/{id}/payments",
    tag = "invoices",
    summary = "Record a payment against an invoice",
    params(OrgHeader, ("id" = uuid::Uuid, Path, description = "The invoice's id")),
    request_body = PaymentIn,
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Recorded; `invoice_status` is `paid` once payments cover the total", body = Payment),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
    )
)]
pub(crate) async fn add_payment(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: JsonAfterAuth<PaymentIn>,
) -> Result<(StatusCode, Json<Payment>), ApiError> {
    p.require(Permission::BillingManage)?;
    let id = invoice_id(&id)?;
    let body = body.parse()?;
    if body.amount_minor <= 0 {
        return Err(ApiError::invalid("amount_minor", "must be greater than zero"));
    }
    if body.amount_minor > MAX_AMOUNT_MINOR {
        return Err(ApiError::invalid(
            "amount_minor",
            format!("must be at most {MAX_AMOUNT_MINOR} minor units (the largest amount Keel accepts)"),
        ));
    }
    let store = billing(&state);
    let invoice = store.get(p.org_id, id).await?.ok_or_else(|| ApiError::not_found("no such invoice in this org"))?;
    if let Some(c) = &body.currency {
        if !c.eq_ignore_ascii_case(&invoice.currency) {
            return Err(ApiError::invalid(
                "currency",
                format!("must match the invoice's currency {}", invoice.currency),
            ));
        }
    }
    if invoice.status == InvoiceStatus::Void {
        return Err(ApiError::invalid("invoice", "is void and cannot take payments"));
    }
    let payment = store.add_payment(p.org_id, &invoice, body.amount_minor, chrono::Utc::now()).await?;
    invalidate_billing(&state, p.org_id).await;
    Ok((StatusCode::CREATED, Json(payment)))
}

/// After a billing write, cached dashboards of that org (every month) are dropped, so a total
/// never lags a write the same user just made; other instances hear it over the cache bus.
async fn invalidate_billing(state: &AppState, org: keel_ids::OrgId) {
    if let Ok(tag) = keel_orgcache::Tag::new(crate::reports::DASHBOARD_TAG) {
        state.cache.invalidate_tag(org, &tag).await;
    }
}
