//! Invoices: atomic per-org, per-day numbering, idempotent creates, filtered pages, payments.

use crate::row::{from_ms, ms, uuid};
use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use keel_storage::Db;
use serde::Serialize;
use sqlx::{Postgres, Sqlite, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }
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

/// A validated invoice ready to insert (built by the route from the request).
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub customer_name: String,
    pub currency: &'static str,
    pub status: InvoiceStatus,
    pub total_minor: i64,
    pub line_items: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    pub number: String,
    pub status: InvoiceStatus,
    pub customer_name: String,
    pub currency: String,
    pub total_minor: i64,
    pub line_items: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub enum Created {
    New(Vec<Invoice>),
    /// The Idempotency-Key was used before with the same request: the first answer.
    Replay {
        status: u16,
        body: String,
    },
    /// The key was used before with a different request.
    KeyReused,
}

pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: String,
}

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// `INV-YYYYMMDD-0001`: four digits at least, more when a day passes 9,999.
pub fn format_number(day: &str, n: i64) -> String {
    format!("INV-{day}-{n:04}")
}

/// Looks up a remembered answer for an Idempotency-Key within the window.
pub async fn find_idempotent(
    db: &Db,
    org: OrgId,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Created>, sqlx::Error> {
    let since = now - IDEMPOTENCY_WINDOW;
    let row: Option<(String, i32, String)> = match db {
        Db::Postgres(p) => sqlx::query_as(
            "SELECT request_hash, status, response FROM keel_idempotency_keys WHERE org_id = $1 AND key = $2 AND created_at > $3",
        )
        .bind(org.as_uuid())
        .bind(key)
        .bind(since)
        .fetch_optional(p)
        .await?,
        Db::Sqlite(p) => sqlx::query_as(
            "SELECT request_hash, status, response FROM keel_idempotency_keys WHERE org_id = ? AND key = ? AND created_at > ?",
        )
        .bind(org.to_string())
        .bind(key)
        .bind(ms(since))
        .fetch_optional(p)
        .await?,
    };
    Ok(row.map(
        |(h, status, body)| {
            if h == request_hash {
                Created::Replay { status: status as u16, body }
            } else {
                Created::KeyReused
            }
        },
    ))
}

/// Creates invoices in one transaction: numbers from the shared per-org, per-day counter (seeded
/// from numbers that already exist), the rows, and the idempotency record with the rendered
/// answer. Concurrent creates never collide: the counter row serializes them.
pub async fn create(
    db: &Db,
    org: OrgId,
    items: &[NewInvoice],
    idem: Option<Idempotency<'_>>,
    now: DateTime<Utc>,
    render: impl FnOnce(&[Invoice]) -> (u16, String),
) -> Result<Created, sqlx::Error> {
    let day = now.format("%Y%m%d").to_string();
    let n = items.len() as i64;
    let result = match db {
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            let last = allocate_pg(&mut tx, org, &day, n).await?;
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.iter().enumerate() {
                let inv = to_invoice(org, format_number(&day, last - n + 1 + i as i64), it, now);
                sqlx::query(
                    "INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(inv.id)
                .bind(org.as_uuid())
                .bind(&inv.number)
                .bind(inv.status.as_str())
                .bind(&inv.customer_name)
                .bind(&inv.currency)
                .bind(inv.total_minor)
                .bind(&inv.line_items)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                out.push(inv);
            }
            if let Some(idem) = &idem {
                let (status, body) = render(&out);
                sqlx::query("DELETE FROM keel_idempotency_keys WHERE org_id = $1 AND key = $2 AND created_at <= $3")
                    .bind(org.as_uuid())
                    .bind(idem.key)
                    .bind(now - IDEMPOTENCY_WINDOW)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO keel_idempotency_keys (org_id, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(org.as_uuid())
                .bind(idem.key)
                .bind(&idem.request_hash)
                .bind(status as i32)
                .bind(body)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await.map(|()| out)
        }
        Db::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            let last = allocate_sqlite(&mut tx, org, &day, n).await?;
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.iter().enumerate() {
                let inv = to_invoice(org, format_number(&day, last - n + 1 + i as i64), it, now);
                sqlx::query(
                    "INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(inv.id.to_string())
                .bind(org.to_string())
                .bind(&inv.number)
                .bind(inv.status.as_str())
                .bind(&inv.customer_name)
                .bind(&inv.currency)
                .bind(inv.total_minor)
                .bind(inv.line_items.to_string())
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                out.push(inv);
            }
            if let Some(idem) = &idem {
                let (status, body) = render(&out);
                sqlx::query("DELETE FROM keel_idempotency_keys WHERE org_id = ? AND key = ? AND created_at <= ?")
                    .bind(org.to_string())
                    .bind(idem.key)
                    .bind(ms(now - IDEMPOTENCY_WINDOW))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO keel_idempotency_keys (org_id, key, request_hash, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(org.to_string())
                .bind(idem.key)
                .bind(&idem.request_hash)
                .bind(status as i32)
                .bind(body)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await.map(|()| out)
        }
    };
    match result {
        Ok(v) => Ok(Created::New(v)),
        // A concurrent retry with the same key committed first: answer what it answered.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() && idem.is_some() => {
            let idem = idem.as_ref().map(|i| (i.key, i.request_hash.clone()));
            let (key, hash) = idem.unwrap_or_default();
            Ok(find_idempotent(db, org, key, &hash, now).await?.unwrap_or(Created::KeyReused))
        }
        Err(e) => Err(e),
    }
}

fn to_invoice(org: OrgId, number: String, it: &NewInvoice, now: DateTime<Utc>) -> Invoice {
    Invoice {
        id: uuid::Uuid::now_v7(),
        org_id: org,
        number,
        status: it.status,
        customer_name: it.customer_name.clone(),
        currency: it.currency.to_owned(),
        total_minor: it.total_minor,
        line_items: it.line_items.clone(),
        created_at: now,
    }
}

/// Reserves `n` numbers; returns the last one. The seed row takes the highest number already
/// used that day, so invoices created before the counter existed are never collided with.
async fn allocate_pg(tx: &mut Transaction<'_, Postgres>, org: OrgId, day: &str, n: i64) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO keel_invoice_counters (org_id, day, last_value)
         SELECT $1, $2, coalesce(max(CAST(substr(number, 14) AS integer)), 0) FROM keel_invoices
          WHERE org_id = $1 AND number LIKE 'INV-' || $2 || '-%' AND substr(number, 14) ~ '^[0-9]{1,9}$'
         ON CONFLICT (org_id, day) DO NOTHING",
    )
    .bind(org.as_uuid())
    .bind(day)
    .execute(&mut **tx)
    .await?;
    let last: i32 = sqlx::query_scalar(
        "UPDATE keel_invoice_counters SET last_value = last_value + $3 WHERE org_id = $1 AND day = $2 RETURNING last_value",
    )
    .bind(org.as_uuid())
    .bind(day)
    .bind(n as i32)
    .fetch_one(&mut **tx)
    .await?;
    Ok(last as i64)
}

async fn allocate_sqlite(tx: &mut Transaction<'_, Sqlite>, org: OrgId, day: &str, n: i64) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO keel_invoice_counters (org_id, day, last_value)
         SELECT ?1, ?2, coalesce(max(CAST(substr(number, 14) AS INTEGER)), 0) FROM keel_invoices
          WHERE org_id = ?1 AND number LIKE 'INV-' || ?2 || '-%' AND substr(number, 14) NOT GLOB '*[^0-9]*'
            AND length(substr(number, 14)) BETWEEN 1 AND 9
         ON CONFLICT (org_id, day) DO NOTHING",
    )
    .bind(org.to_string())
    .bind(day)
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar(
        "UPDATE keel_invoice_counters SET last_value = last_value + ?3 WHERE org_id = ?1 AND day = ?2 RETURNING last_value",
    )
    .bind(org.to_string())
    .bind(day)
    .bind(n)
    .fetch_one(&mut **tx)
    .await
}

pub struct ListFilter<'a> {
    pub status: Option<InvoiceStatus>,
    /// Free text, matched literally (LIKE wildcards escaped) against customer and number.
    pub q: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
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

type PgInvoiceRow = (uuid::Uuid, uuid::Uuid, String, String, String, String, i64, serde_json::Value, DateTime<Utc>);
type LiteInvoiceRow = (String, String, String, String, String, String, i64, String, i64);

fn from_pg(r: PgInvoiceRow) -> Invoice {
    Invoice {
        id: r.0,
        org_id: OrgId::from_uuid(r.1),
        number: r.2,
        status: InvoiceStatus::parse(&r.3).unwrap_or(InvoiceStatus::Draft),
        customer_name: r.4,
        currency: r.5,
        total_minor: r.6,
        line_items: r.7,
        created_at: r.8,
    }
}

fn from_lite(r: LiteInvoiceRow) -> Result<Invoice, sqlx::Error> {
    Ok(Invoice {
        id: uuid(&r.0)?,
        org_id: OrgId::from_uuid(uuid(&r.1)?),
        number: r.2,
        status: InvoiceStatus::parse(&r.3).unwrap_or(InvoiceStatus::Draft),
        customer_name: r.4,
        currency: r.5,
        total_minor: r.6,
        line_items: serde_json::from_str(&r.7).unwrap_or(serde_json::Value::Null),
        created_at: from_ms(r.8),
    })
}

const COLS: &str = "id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at";

/// One page and the total matching count. Offsets past the end give an empty page.
pub async fn list(db: &Db, org: OrgId, f: &ListFilter<'_>) -> Result<(Vec<Invoice>, i64), sqlx::Error> {
    let pattern = f.q.map(like_pattern);
    let status = f.status.map(|s| s.as_str());
    match db {
        Db::Postgres(p) => {
            let filter = "org_id = $1 AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR customer_name ILIKE $3 ESCAPE '\\' OR number ILIKE $3 ESCAPE '\\')";
            let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM keel_invoices WHERE {filter}"))
                .bind(org.as_uuid())
                .bind(status)
                .bind(&pattern)
                .fetch_one(p)
                .await?;
            let rows: Vec<PgInvoiceRow> = sqlx::query_as(&format!(
                "SELECT {COLS} FROM keel_invoices WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
            ))
            .bind(org.as_uuid())
            .bind(status)
            .bind(&pattern)
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(p)
            .await?;
            Ok((rows.into_iter().map(from_pg).collect(), total))
        }
        Db::Sqlite(p) => {
            let filter = "org_id = ?1 AND (?2 IS NULL OR status = ?2)
                AND (?3 IS NULL OR customer_name LIKE ?3 ESCAPE '\\' OR number LIKE ?3 ESCAPE '\\')";
            let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM keel_invoices WHERE {filter}"))
                .bind(org.to_string())
                .bind(status)
                .bind(&pattern)
                .fetch_one(p)
                .await?;
            let rows: Vec<LiteInvoiceRow> = sqlx::query_as(&format!(
                "SELECT {COLS} FROM keel_invoices WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?4 OFFSET ?5"
            ))
            .bind(org.to_string())
            .bind(status)
            .bind(&pattern)
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(p)
            .await?;
            Ok((rows.into_iter().map(from_lite).collect::<Result<_, _>>()?, total))
        }
    }
}

pub async fn get(db: &Db, org: OrgId, id: uuid::Uuid) -> Result<Option<Invoice>, sqlx::Error> {
    match db {
        Db::Postgres(p) => {
            let r: Option<PgInvoiceRow> =
                sqlx::query_as(&format!("SELECT {COLS} FROM keel_invoices WHERE org_id = $1 AND id = $2"))
                    .bind(org.as_uuid())
                    .bind(id)
                    .fetch_optional(p)
                    .await?;
            Ok(r.map(from_pg))
        }
        Db::Sqlite(p) => {
            let r: Option<LiteInvoiceRow> =
                sqlx::query_as(&format!("SELECT {COLS} FROM keel_invoices WHERE org_id = ? AND id = ?"))
                    .bind(org.to_string())
                    .bind(id.to_string())
                    .fetch_optional(p)
                    .await?;
            r.map(from_lite).transpose()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub id: uuid::Uuid,
    pub invoice_id: uuid::Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub paid_at: DateTime<Utc>,
    /// The invoice's status after this payment (`paid` once fully paid).
    pub invoice_status: InvoiceStatus,
}

/// Records a payment and marks the invoice paid once payments cover its total, atomically.
pub async fn add_payment(
    db: &Db,
    org: OrgId,
    invoice: &Invoice,
    amount_minor: i64,
    now: DateTime<Utc>,
) -> Result<Payment, sqlx::Error> {
    let id = uuid::Uuid::now_v7();
    let status = match db {
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id)
                .bind(org.as_uuid())
                .bind(invoice.id)
                .bind(amount_minor)
                .bind(&invoice.currency)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let s: String = sqlx::query_scalar(
                "UPDATE keel_invoices SET status = CASE WHEN status IN ('draft', 'open')
                    AND (SELECT coalesce(sum(amount_minor), 0) FROM keel_payments WHERE invoice_id = $1) >= total_minor
                    THEN 'paid' ELSE status END
                 WHERE id = $1 RETURNING status",
            )
            .bind(invoice.id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            s
        }
        Db::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query("INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(id.to_string())
                .bind(org.to_string())
                .bind(invoice.id.to_string())
                .bind(amount_minor)
                .bind(&invoice.currency)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
            let s: String = sqlx::query_scalar(
                "UPDATE keel_invoices SET status = CASE WHEN status IN ('draft', 'open')
                    AND (SELECT coalesce(sum(amount_minor), 0) FROM keel_payments WHERE invoice_id = ?1) >= total_minor
                    THEN 'paid' ELSE status END
                 WHERE id = ?1 RETURNING status",
            )
            .bind(invoice.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            s
        }
    };
    Ok(Payment {
        id,
        invoice_id: invoice.id,
        amount_minor,
        currency: invoice.currency.clone(),
        paid_at: now,
        invoice_status: InvoiceStatus::parse(&status).unwrap_or(InvoiceStatus::Open),
    })
}
