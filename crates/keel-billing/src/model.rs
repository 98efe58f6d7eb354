//! The values the billing store takes and gives: invoices, line items, payments, idempotent
//! create outcomes, list filters, and the amount bound every write is held to.

use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use serde::{Deserialize, Serialize};

/// The largest amount, in minor units, that any billing write accepts: a line's unit amount,
/// a line's quantity × unit amount, an invoice total, a payment. 15 digits (under $10 trillion
/// in cents, ¥1 quadrillion): far above any real invoice, and below 2^53, so every stored
/// amount is exact as a JSON number even in JavaScript. The same bound is a CHECK (PostgreSQL)
/// or trigger (SQLite) in migration 0002, so no path around the API stores more.
///
/// Reports sum in i128 ([`keel_money::Totals`]): the largest amount (< 2^50) times the most rows
/// a count can hold (u64, < 2^64) stays under 2^114, far inside i128, so no data these writes
/// accept can overflow a report.
pub const MAX_AMOUNT_MINOR: i64 = 999_999_999_999_999;

/// An invoice's lifecycle state. Rows holding any other text are an error, never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum InvoiceStatus {
    /// Being prepared; not yet sent.
    Draft,
    /// Sent and awaiting payment.
    Open,
    /// Payments cover the total.
    Paid,
    /// Cancelled; takes no payments.
    Void,
}

impl InvoiceStatus {
    /// The stored and serialized form (`draft`, `open`, `paid`, `void`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }

    /// The status named by `s`, or `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Self::Draft),
            "open" => Some(Self::Open),
            "paid" => Some(Self::Paid),
            "void" => Some(Self::Void),
            _ => None,
        }
    }
}

/// One line of an invoice, stored as JSON in the invoice row (`line_items`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    /// What was sold.
    pub description: String,
    /// How many units.
    pub quantity: i64,
    /// Price of one unit in the currency's minor units (cents for USD).
    pub unit_amount_minor: i64,
}

/// A validated invoice ready to insert (built by the caller from its input; amounts within
/// [`MAX_AMOUNT_MINOR`]).
#[derive(Debug, Clone)]
pub struct NewInvoice {
    /// The customer's name, 1 to 200 characters.
    pub customer_name: String,
    /// ISO 4217 code.
    pub currency: &'static str,
    /// `draft` or `open`.
    pub status: InvoiceStatus,
    /// The sum of the lines, in minor units.
    pub total_minor: i64,
    /// The lines, at least one.
    pub line_items: Vec<LineItem>,
}

impl NewInvoice {
    /// The invoice this becomes once stored under `number` at `now`.
    pub(crate) fn stored(&self, org: OrgId, number: String, now: DateTime<Utc>) -> Invoice {
        Invoice {
            id: uuid::Uuid::now_v7(),
            org_id: org,
            number,
            status: self.status,
            customer_name: self.customer_name.clone(),
            currency: self.currency.to_owned(),
            total_minor: self.total_minor,
            line_items: self.line_items.clone(),
            created_at: now,
        }
    }
}

/// A stored invoice.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invoice {
    /// UUIDv7, so ids sort by creation.
    pub id: uuid::Uuid,
    /// The owning org.
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub org_id: OrgId,
    /// `INV-YYYYMMDD-0001`, unique per org.
    pub number: String,
    /// Lifecycle state.
    pub status: InvoiceStatus,
    /// The customer's name.
    pub customer_name: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The sum of the lines, in minor units.
    pub total_minor: i64,
    /// The lines.
    pub line_items: Vec<LineItem>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A stored payment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payment {
    /// UUIDv7.
    pub id: uuid::Uuid,
    /// The invoice paid.
    pub invoice_id: uuid::Uuid,
    /// The amount, in the invoice's currency's minor units.
    pub amount_minor: i64,
    /// The invoice's currency.
    pub currency: String,
    /// When it was recorded.
    pub paid_at: DateTime<Utc>,
    /// The invoice's status after this payment (`paid` once fully paid).
    pub invoice_status: InvoiceStatus,
}

/// An `Idempotency-Key` and the hash of the request that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key, 1 to 200 characters.
    pub key: String,
    /// A hash of the canonical request body: the same key with another body is refused.
    pub request_hash: String,
}

/// The answer remembered for an idempotent create: its HTTP status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The status first answered (201).
    pub status: u16,
    /// The body first answered.
    pub body: String,
}

/// Renders the answer to remember for a create, from the invoices it made.
pub type Render = dyn Fn(&[Invoice]) -> Rendered + Send + Sync;

/// What a create did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// New invoices, in input order.
    New(Vec<Invoice>),
    /// The Idempotency-Key was used before with the same request: the first answer.
    Replay(Rendered),
    /// The key was used before with a different request.
    KeyReused,
    /// A request with the same key is still being processed (it held the key longer than the
    /// store's idempotency wait): retry shortly, and the retry gets its answer.
    InProgress,
}

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// `INV-YYYYMMDD-0001`: four digits at least, more when a day passes 9,999.
pub fn format_number(day: &str, n: i64) -> String {
    format!("INV-{day}-{n:04}")
}

/// Which invoices a list returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    /// Only this status.
    pub status: Option<InvoiceStatus>,
    /// Free text, matched literally (LIKE wildcards escaped) against customer and number.
    pub q: Option<&'a str>,
    /// Page size.
    pub limit: i64,
    /// Rows skipped; past the end gives an empty page.
    pub offset: i64,
}

/// One page of invoices, newest first, and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoicePage {
    /// The page.
    pub items: Vec<Invoice>,
    /// Matching invoices across all pages.
    pub total: i64,
}

/// `%`, `_` and `\` are matched as themselves: the term never becomes a pattern.
pub fn like_pattern(term: &str) -> String {
    let mut s = String::with_capacity(term.len() + 2);
    s.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}
