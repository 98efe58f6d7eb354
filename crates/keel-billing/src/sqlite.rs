//! [`SqliteBillingStore`]: billing on SQLite. Every write runs under `BEGIN IMMEDIATE`, so
//! writers are serialized by the database lock: a racing request with the same
//! Idempotency-Key waits for the first to commit and then sees its answer.

use crate::pg::remembered;
use crate::report::{Cursor, Grouping, Kind, ReportQuery, Row};
use crate::row::{from_ms, line_items_text, ms, status, uuid};
use crate::store::{BillingFuture, BillingStore};
use crate::{
    format_number, like_pattern, BillingError, Created, Idempotency, Invoice, InvoicePage, InvoiceStatus, ListFilter,
    NewInvoice, Payment, Render, Rendered, IDEMPOTENCY_WINDOW,
};
use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use keel_money::{Currency, Money, Page};
use keel_storage::Backend;
use sqlx::{Sqlite, SqlitePool, Transaction};

const COLS: &str = "id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at";

type InvoiceRow = (String, String, String, String, String, String, i64, String, i64);

/// The SQLite billing store.
#[derive(Debug, Clone)]
pub struct SqliteBillingStore {
    pool: SqlitePool,
}

impl SqliteBillingStore {
    /// A store on `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    async fn create_tx(
        &self,
        org: OrgId,
        items: &[NewInvoice],
        idem: Option<&Idempotency>,
        now: DateTime<Utc>,
        render: &Render,
    ) -> Result<Created, BillingError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(idem) = idem {
            if let Some(answer) = claim(&mut tx, org, idem, now).await? {
                return Ok(answer);
            }
        }
        let day = now.format("%Y%m%d").to_string();
        let n = items.len() as i64;
        let last = allocate(&mut tx, org, &day, n).await?;
        let mut out = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let inv = it.stored(org, format_number(&day, last - n + 1 + i as i64), now);
            let lines = serde_json::to_string(&inv.line_items)
                .map_err(|e| BillingError::bad("keel_invoices", inv.id, "line_items", e))?;
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
            .bind(lines)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            out.push(inv);
        }
        if let Some(idem) = idem {
            let Rendered { status, body } = render(&out);
            sqlx::query("UPDATE keel_idempotency_keys SET status = ?3, response = ?4 WHERE org_id = ?1 AND key = ?2")
                .bind(org.to_string())
                .bind(&idem.key)
                .bind(i32::from(status))
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Created::New(out))
    }

    async fn add_payment_tx(
        &self,
        org: OrgId,
        invoice: &Invoice,
        amount_minor: i64,
        now: DateTime<Utc>,
    ) -> Result<Payment, BillingError> {
        let id = uuid::Uuid::now_v7();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(org.to_string())
            .bind(invoice.id.to_string())
            .bind(amount_minor)
            .bind(&invoice.currency)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        // total(), not sum(): SQLite's integer sum() fails with "integer overflow" past i64
        // (many large payments on one invoice). total() is a float, yet the comparison is
        // exact: every amount and total_minor is at most MAX_AMOUNT_MINOR < 2^53, so a running
        // sum is exact until it passes 2^53, and past that it is above any total_minor anyway
        // (payments are positive, so it never comes back down).
        let s: String = sqlx::query_scalar(
            "UPDATE keel_invoices SET status = CASE WHEN status IN ('draft', 'open')
                AND (SELECT total(amount_minor) FROM keel_payments WHERE invoice_id = ?1) >= total_minor
                THEN 'paid' ELSE status END
             WHERE id = ?1 AND org_id = ?2 RETURNING status",
        )
        .bind(invoice.id.to_string())
        .bind(org.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let invoice_status = status("keel_invoices", &invoice.id.to_string(), &s)?;
        tx.commit().await?;
        Ok(Payment {
            id,
            invoice_id: invoice.id,
            amount_minor,
            currency: invoice.currency.clone(),
            paid_at: now,
            invoice_status,
        })
    }

    async fn report_page_q(
        &self,
        q: ReportQuery,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page<Cursor, Row>, BillingError> {
        let (table, time, amount) = q.kind.columns();
        let (c_ms, c_id) = cursor.unwrap_or((i64::MIN, String::new()));
        let group = match (q.grouping, q.kind) {
            (Grouping::Month, _) => format!("strftime('%Y-%m', {time} / 1000, 'unixepoch')"),
            (Grouping::Status, Kind::Invoices) => "status".to_owned(),
            (Grouping::Status, Kind::Payments) => "'payment'".to_owned(),
        };
        let sql = format!(
            "SELECT {group}, currency, {amount}, {time}, id FROM {table}
             WHERE org_id = ?1 AND {time} >= ?2 AND {time} < ?3 AND ({time}, id) > (?4, ?5)
             ORDER BY {time}, id LIMIT ?6"
        );
        let rows: Vec<(Option<String>, String, i64, i64, String)> = sqlx::query_as(&sql)
            .bind(q.org.to_string())
            .bind(ms(q.from))
            .bind(ms(q.until))
            .bind(c_ms)
            .bind(&c_id)
            .bind((limit + 1) as i64)
            .fetch_all(&self.pool)
            .await?;
        let page = Page::keyset_probed(rows, limit, |r| (r.3, r.4.clone()));
        page.try_map(|(group, currency, amount, at, id)| {
            // strftime gives NULL for a time it cannot place in the calendar.
            let group =
                group.ok_or_else(|| BillingError::bad(table, &id, time, format!("{at} (not a calendar time)")))?;
            let c = Currency::from_code(&currency).map_err(|e| BillingError::bad(table, &id, "currency", e))?;
            Ok((group, Money::from_minor(amount, c)))
        })
    }
}

/// Takes the key for this transaction (see the PostgreSQL store). Under `BEGIN IMMEDIATE` no
/// other writer runs until we commit, so the row read after a conflict is always committed.
async fn claim(
    tx: &mut Transaction<'_, Sqlite>,
    org: OrgId,
    idem: &Idempotency,
    now: DateTime<Utc>,
) -> Result<Option<Created>, BillingError> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO keel_idempotency_keys (org_id, key, request_hash, status, response, created_at)
         VALUES (?1, ?2, ?3, 0, '', ?4)
         ON CONFLICT (org_id, key) DO UPDATE
            SET request_hash = excluded.request_hash, status = 0, response = '', created_at = excluded.created_at
          WHERE keel_idempotency_keys.created_at <= ?5
         RETURNING 1",
    )
    .bind(org.to_string())
    .bind(&idem.key)
    .bind(&idem.request_hash)
    .bind(ms(now))
    .bind(ms(now - IDEMPOTENCY_WINDOW))
    .fetch_optional(&mut **tx)
    .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let row: Option<(String, i32, String)> =
        sqlx::query_as("SELECT request_hash, status, response FROM keel_idempotency_keys WHERE org_id = ? AND key = ?")
            .bind(org.to_string())
            .bind(&idem.key)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(Some(match row {
        Some(row) => remembered(&idem.key, &idem.request_hash, row)?,
        None => Created::InProgress,
    }))
}

async fn allocate(tx: &mut Transaction<'_, Sqlite>, org: OrgId, day: &str, n: i64) -> Result<i64, BillingError> {
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
    Ok(sqlx::query_scalar(
        "UPDATE keel_invoice_counters SET last_value = last_value + ?3 WHERE org_id = ?1 AND day = ?2 RETURNING last_value",
    )
    .bind(org.to_string())
    .bind(day)
    .bind(n)
    .fetch_one(&mut **tx)
    .await?)
}

fn from_row(r: InvoiceRow) -> Result<Invoice, BillingError> {
    const T: &str = "keel_invoices";
    let id = &r.0;
    Ok(Invoice {
        id: uuid(T, id, "id", id)?,
        org_id: OrgId::from_uuid(uuid(T, id, "org_id", &r.1)?),
        number: r.2,
        status: status(T, id, &r.3)?,
        customer_name: r.4,
        currency: r.5,
        total_minor: r.6,
        line_items: line_items_text(id, &r.7)?,
        created_at: from_ms(T, id, "created_at", r.8)?,
    })
}

impl BillingStore for SqliteBillingStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn find_idempotent<'a>(
        &'a self,
        org: OrgId,
        idem: &'a Idempotency,
        now: DateTime<Utc>,
    ) -> BillingFuture<'a, Option<Created>> {
        Box::pin(async move {
            let row: Option<(String, i32, String)> = sqlx::query_as(
                "SELECT request_hash, status, response FROM keel_idempotency_keys WHERE org_id = ? AND key = ? AND created_at > ?",
            )
            .bind(org.to_string())
            .bind(&idem.key)
            .bind(ms(now - IDEMPOTENCY_WINDOW))
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| remembered(&idem.key, &idem.request_hash, r)).transpose()
        })
    }

    fn create<'a>(
        &'a self,
        org: OrgId,
        items: &'a [NewInvoice],
        idem: Option<&'a Idempotency>,
        now: DateTime<Utc>,
        render: &'a Render,
    ) -> BillingFuture<'a, Created> {
        Box::pin(self.create_tx(org, items, idem, now, render))
    }

    fn list<'a>(&'a self, org: OrgId, f: &'a ListFilter<'a>) -> BillingFuture<'a, InvoicePage> {
        Box::pin(async move {
            let pattern = f.q.map(like_pattern);
            let status = f.status.map(InvoiceStatus::as_str);
            let filter = "org_id = ?1 AND (?2 IS NULL OR status = ?2)
                AND (?3 IS NULL OR customer_name LIKE ?3 ESCAPE '\\' OR number LIKE ?3 ESCAPE '\\')";
            let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM keel_invoices WHERE {filter}"))
                .bind(org.to_string())
                .bind(status)
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await?;
            let rows: Vec<InvoiceRow> = sqlx::query_as(&format!(
                "SELECT {COLS} FROM keel_invoices WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?4 OFFSET ?5"
            ))
            .bind(org.to_string())
            .bind(status)
            .bind(&pattern)
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&self.pool)
            .await?;
            Ok(InvoicePage { items: rows.into_iter().map(from_row).collect::<Result<_, _>>()?, total })
        })
    }

    fn get(&self, org: OrgId, id: uuid::Uuid) -> BillingFuture<'_, Option<Invoice>> {
        Box::pin(async move {
            let r: Option<InvoiceRow> =
                sqlx::query_as(&format!("SELECT {COLS} FROM keel_invoices WHERE org_id = ? AND id = ?"))
                    .bind(org.to_string())
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
            r.map(from_row).transpose()
        })
    }

    fn add_payment<'a>(
        &'a self,
        org: OrgId,
        invoice: &'a Invoice,
        amount_minor: i64,
        now: DateTime<Utc>,
    ) -> BillingFuture<'a, Payment> {
        Box::pin(self.add_payment_tx(org, invoice, amount_minor, now))
    }

    fn report_page(
        &self,
        query: ReportQuery,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BillingFuture<'_, Page<Cursor, Row>> {
        Box::pin(self.report_page_q(query, cursor, limit))
    }
}
