//! [`PgBillingStore`]: billing on PostgreSQL. Idempotency keys are claimed first in the
//! create's transaction (`INSERT … ON CONFLICT`), so a racing request with the same key waits
//! on the first one's row lock and then sees its committed answer.

use crate::report::{Cursor, Grouping, Kind, ReportQuery, Row};
use crate::row::{http_status, line_items, status};
use crate::store::{BillingFuture, BillingStore, IDEMPOTENCY_WAIT};
use crate::{
    format_number, like_pattern, BillingError, Created, Idempotency, Invoice, InvoicePage, InvoiceStatus, ListFilter,
    NewInvoice, Payment, Render, Rendered, IDEMPOTENCY_WINDOW,
};
use chrono::{DateTime, Datelike, Utc};
use keel_ids::OrgId;
use keel_money::{Currency, Money, Page};
use keel_storage::Backend;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

/// SQLSTATE `lock_not_available`: `lock_timeout` expired.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// A timestamp column as chrono can hold it, else NULL. sqlx decodes `infinity` or a year past
/// chrono's +262142 by adding microseconds to an epoch, which panics; a stored value like that
/// must be a [`BillingError::BadRow`], never a panic or a default.
macro_rules! time_col {
    ($c:literal) => {
        concat!("CASE WHEN isfinite(", $c, ") AND ", $c, " < '262143-01-01 00:00:00+00' THEN ", $c, " END")
    };
}

const COLS: &str = concat!(
    "id, org_id, number, status, customer_name, currency, total_minor, line_items, ",
    time_col!("created_at"),
    " AS created_at"
);

/// (group, currency, amount, time, id) of one report row.
type ReportRow = (String, String, i64, Option<DateTime<Utc>>, uuid::Uuid);

type InvoiceRow =
    (uuid::Uuid, uuid::Uuid, String, String, String, String, i64, serde_json::Value, Option<DateTime<Utc>>);

/// The PostgreSQL billing store.
#[derive(Debug, Clone)]
pub struct PgBillingStore {
    pool: PgPool,
    wait: Duration,
}

impl PgBillingStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, wait: IDEMPOTENCY_WAIT }
    }

    /// How long a create waits for another request holding its Idempotency-Key (default
    /// [`IDEMPOTENCY_WAIT`]); tests shorten it.
    pub fn with_idempotency_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    async fn create_tx(
        &self,
        org: OrgId,
        items: &[NewInvoice],
        idem: Option<&Idempotency>,
        now: DateTime<Utc>,
        render: &Render,
    ) -> Result<Created, BillingError> {
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = idem {
            if let Some(answer) = self.claim(&mut tx, org, idem, now).await? {
                return Ok(answer);
            }
        }
        let day = now.format("%Y%m%d").to_string();
        let n = items.len() as i64;
        let last = allocate(&mut tx, org, &day, n).await?;
        let mut out = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let inv = it.stored(org, format_number(&day, last - n + 1 + i as i64), now);
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
            .bind(sqlx::types::Json(&inv.line_items))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            out.push(inv);
        }
        if let Some(idem) = idem {
            let Rendered { status, body } = render(&out);
            sqlx::query("UPDATE keel_idempotency_keys SET status = $3, response = $4 WHERE org_id = $1 AND key = $2")
                .bind(org.as_uuid())
                .bind(&idem.key)
                .bind(i32::from(status))
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Created::New(out))
    }

    /// Takes the key for this transaction (inserting it, or taking over one older than the
    /// window). `None`: ours, go on. `Some`: another request holds it; the answer to give.
    /// The row's `status` 0 is never seen by others: the same transaction sets the answer
    /// before it commits, and a failed create rolls the claim back with everything else.
    async fn claim(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        org: OrgId,
        idem: &Idempotency,
        now: DateTime<Utc>,
    ) -> Result<Option<Created>, BillingError> {
        // A racing request with the same key blocks on the first one's uncommitted row here;
        // lock_timeout bounds that wait (restored after, so the rest of the create is unchanged).
        let previous: String =
            sqlx::query_scalar("SELECT current_setting('lock_timeout')").fetch_one(&mut **tx).await?;
        let wait = format!("{}ms", self.wait.as_millis().max(1));
        sqlx::query("SELECT set_config('lock_timeout', $1, true)").bind(wait).execute(&mut **tx).await?;
        let claimed = sqlx::query_scalar::<_, i32>(
            "INSERT INTO keel_idempotency_keys (org_id, key, request_hash, status, response, created_at)
             VALUES ($1, $2, $3, 0, '', $4)
             ON CONFLICT (org_id, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash, status = 0, response = '', created_at = EXCLUDED.created_at
              WHERE keel_idempotency_keys.created_at <= $5
             RETURNING 1",
        )
        .bind(org.as_uuid())
        .bind(&idem.key)
        .bind(&idem.request_hash)
        .bind(now)
        .bind(now - IDEMPOTENCY_WINDOW)
        .fetch_optional(&mut **tx)
        .await;
        let claimed = match claimed {
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                return Ok(Some(Created::InProgress))
            }
            other => other?,
        };
        sqlx::query("SELECT set_config('lock_timeout', $1, true)").bind(previous).execute(&mut **tx).await?;
        if claimed.is_some() {
            return Ok(None);
        }
        // The key is held by a committed create within the window: its answer.
        let row: Option<(String, i32, String)> = sqlx::query_as(
            "SELECT request_hash, status, response FROM keel_idempotency_keys WHERE org_id = $1 AND key = $2",
        )
        .bind(org.as_uuid())
        .bind(&idem.key)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(Some(match row {
            Some(row) => remembered(&idem.key, &idem.request_hash, row)?,
            // Taken and released again between our insert and this read: the next try decides.
            None => Created::InProgress,
        }))
    }

    async fn add_payment_tx(
        &self,
        org: OrgId,
        invoice: &Invoice,
        amount_minor: i64,
        now: DateTime<Utc>,
    ) -> Result<Payment, BillingError> {
        let id = uuid::Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(org.as_uuid())
        .bind(invoice.id)
        .bind(amount_minor)
        .bind(&invoice.currency)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // sum(bigint) is numeric on PostgreSQL: it cannot overflow however many payments.
        let s: String = sqlx::query_scalar(
            "UPDATE keel_invoices SET status = CASE WHEN status IN ('draft', 'open')
                AND (SELECT coalesce(sum(amount_minor), 0) FROM keel_payments WHERE invoice_id = $1) >= total_minor
                THEN 'paid' ELSE status END
             WHERE id = $1 AND org_id = $2 RETURNING status",
        )
        .bind(invoice.id)
        .bind(org.as_uuid())
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
        let shown_time = match q.kind {
            Kind::Invoices => time_col!("created_at"),
            Kind::Payments => time_col!("paid_at"),
        };
        // Only plain columns come back: the month key and the cursor are made here, because
        // `to_char`, `extract` and `id::text` per row cost the database about three times the
        // index scan itself.
        let status_col = match q.kind {
            Kind::Invoices => "status",
            Kind::Payments => "'payment'",
        };
        // The keyset is the column pair itself, (time, id), so the (org_id, time, id) index
        // starts each page where the last one ended. The cursor carries the time in
        // microseconds, PostgreSQL's precision.
        let after = match cursor {
            None => None,
            Some((us, id)) => {
                let at = DateTime::<Utc>::from_timestamp_micros(us)
                    .ok_or_else(|| BillingError::bad(table, &id, time, format!("cursor time {us} (out of range)")))?;
                let id = uuid::Uuid::parse_str(&id)
                    .map_err(|_| BillingError::bad(table, &id, "id", "a cursor id that is not a UUID"))?;
                Some((at, id))
            }
        };
        let keyset = if after.is_some() { format!("AND ({time}, id) > ($4, $5)") } else { String::new() };
        let sql = format!(
            "SELECT {status_col}, currency, {amount}, {shown_time}, id FROM {table}
             WHERE org_id = $1 AND {time} >= $2 AND {time} < $3 {keyset}
             ORDER BY {time}, id LIMIT $6"
        );
        let (after_time, after_id) = after.unwrap_or((q.from, uuid::Uuid::nil()));
        let rows: Vec<ReportRow> = sqlx::query_as(&sql)
            .bind(q.org.as_uuid())
            .bind(q.from)
            .bind(q.until)
            .bind(after_time)
            .bind(after_id)
            .bind((limit + 1) as i64)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .into_iter()
            .map(|(group, currency, amount, at, id)| match at {
                Some(at) => Ok((group, currency, amount, at, id)),
                None => Err(BillingError::bad(table, id, time, "a time out of range (infinite, or past year 262142)")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let page = Page::keyset_probed(rows, limit, |r| (r.3.timestamp_micros(), r.4.to_string()));
        page.try_map(|(group, currency, amount, at, id)| {
            let group = match q.grouping {
                Grouping::Month => format!("{:04}-{:02}", at.year(), at.month()),
                Grouping::Status => group,
            };
            let c = Currency::from_code(&currency).map_err(|e| BillingError::bad(table, id, "currency", e))?;
            Ok((group, Money::from_minor(amount, c)))
        })
    }
}

/// A remembered answer for `key`: the replay for the same request, [`Created::KeyReused`] else.
pub(crate) fn remembered(key: &str, request_hash: &str, row: (String, i32, String)) -> Result<Created, BillingError> {
    let (hash, status, body) = row;
    if hash != request_hash {
        return Ok(Created::KeyReused);
    }
    Ok(Created::Replay(Rendered { status: http_status(key, status)?, body }))
}

fn from_row(r: InvoiceRow) -> Result<Invoice, BillingError> {
    let id = r.0.to_string();
    Ok(Invoice {
        id: r.0,
        org_id: OrgId::from_uuid(r.1),
        number: r.2,
        status: status("keel_invoices", &id, &r.3)?,
        customer_name: r.4,
        currency: r.5,
        total_minor: r.6,
        line_items: line_items(&id, r.7)?,
        created_at: r.8.ok_or_else(|| {
            BillingError::bad("keel_invoices", &id, "created_at", "a time out of range (infinite, or past year 262142)")
        })?,
    })
}

/// Reserves `n` numbers; returns the last one. The seed row takes the highest number already
/// used that day, so invoices created before the counter existed are never collided with.
async fn allocate(tx: &mut Transaction<'_, Postgres>, org: OrgId, day: &str, n: i64) -> Result<i64, BillingError> {
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
    Ok(i64::from(last))
}

impl BillingStore for PgBillingStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn find_idempotent<'a>(
        &'a self,
        org: OrgId,
        idem: &'a Idempotency,
        now: DateTime<Utc>,
    ) -> BillingFuture<'a, Option<Created>> {
        Box::pin(async move {
            let row: Option<(String, i32, String)> = sqlx::query_as(
                "SELECT request_hash, status, response FROM keel_idempotency_keys WHERE org_id = $1 AND key = $2 AND created_at > $3",
            )
            .bind(org.as_uuid())
            .bind(&idem.key)
            .bind(now - IDEMPOTENCY_WINDOW)
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
            let filter = "org_id = $1 AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR customer_name ILIKE $3 ESCAPE '\\' OR number ILIKE $3 ESCAPE '\\')";
            let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM keel_invoices WHERE {filter}"))
                .bind(org.as_uuid())
                .bind(status)
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await?;
            let rows: Vec<InvoiceRow> = sqlx::query_as(&format!(
                "SELECT {COLS} FROM keel_invoices WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
            ))
            .bind(org.as_uuid())
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
                sqlx::query_as(&format!("SELECT {COLS} FROM keel_invoices WHERE org_id = $1 AND id = $2"))
                    .bind(org.as_uuid())
                    .bind(id)
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
