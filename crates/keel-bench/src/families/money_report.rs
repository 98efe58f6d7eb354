//! Bench family `money`, Postgres part: the exact revenue report over 1,000,000 invoices.
//!
//! A scratch database gets one org with 1,000,000 invoices in three currencies (USD, EUR, JPY)
//! spread over the last 360 days, with many rows sharing a millisecond (so the keyset's tie
//! break is exercised), and 250,000 payments. A real keel-api answers
//! `GET /api/admin/reports/revenue?group_by=month` over the whole range, which drains every
//! keyset page (1,000 rows each) of both tables. Before any time is reported the answer is
//! checked against an independent `GROUP BY` in SQL: counts and per-currency totals must be
//! equal. The same aggregate as one SQL statement is timed in the same run as the reference
//! (`ratio` = report time / one-statement time); it is what the report would cost if it
//! trusted the database to sum, which the report deliberately does not (money is summed in
//! checked integer arithmetic in Rust, and a failing page fails the report as a whole).

use crate::report::{median, Row};
use crate::scratch::ScratchPg;
use crate::server;
use keel_storage::Db;
use std::collections::BTreeMap;
use std::time::Instant;

const INVOICES: i64 = 1_000_000;
const PAYMENTS: i64 = 250_000;
const ITERATIONS: usize = 3;
const REFERENCE: &str = "one SQL GROUP BY (no paging, summed by the database)";

type Totals = BTreeMap<String, (i64, i64)>; // currency -> (count, total minor units)

pub(crate) fn run(rows: &mut Vec<Row>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let pg = ScratchPg::create("money", keel_api::SCHEMAS).await?;
        let result = measure(&pg.db).await;
        pg.drop_db().await;
        rows.extend(result?);
        Ok(())
    })
}

async fn measure(db: &Db) -> Result<Vec<Row>, String> {
    let Db::Postgres(pool) = db else { return Err("the money report bench needs Postgres".into()) };
    let tenant = server::tenant(db).await?;
    let now = chrono::Utc::now();
    eprintln!("money/postgres: inserting {INVOICES} invoices and {PAYMENTS} payments");
    seed(pool, tenant.org.as_uuid(), now).await?;

    let srv = server::start(db.clone(), &[]).await?;
    let client = server::client()?;
    let from = (now - chrono::Duration::days(362)).date_naive();
    let to = now.date_naive();
    let url = srv.url(&format!("/api/admin/reports/revenue?from={from}&to={to}&group_by=month"));
    // The route's own span: `[from 00:00, to + 1 day 00:00)` in UTC.
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = to.and_time(chrono::NaiveTime::MIN).and_utc() + chrono::Duration::days(1);

    let expected_inv =
        sql_totals(pool, "keel_invoices", "created_at", "total_minor", tenant.org.as_uuid(), start, end).await?;
    let expected_pay =
        sql_totals(pool, "keel_payments", "paid_at", "amount_minor", tenant.org.as_uuid(), start, end).await?;
    if expected_inv.values().map(|t| t.0).sum::<i64>() != INVOICES {
        return Err("the seeded invoices are not all inside the report range".into());
    }

    let (mut report_s, mut sql_s) = (Vec::new(), Vec::new());
    for i in 0..ITERATIONS {
        let t = Instant::now();
        let res = client.get(&url).bearer_auth(&tenant.token).send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
        report_s.push(t.elapsed().as_secs_f64());
        if !status.is_success() {
            return Err(format!("revenue report answered {status}: {body}"));
        }
        check(&body["invoices"]["overall"], &expected_inv, "invoices")?;
        check(&body["payments"]["overall"], &expected_pay, "payments")?;

        let t = Instant::now();
        let a =
            sql_totals(pool, "keel_invoices", "created_at", "total_minor", tenant.org.as_uuid(), start, end).await?;
        let b = sql_totals(pool, "keel_payments", "paid_at", "amount_minor", tenant.org.as_uuid(), start, end).await?;
        sql_s.push(t.elapsed().as_secs_f64());
        if a != expected_inv || b != expected_pay {
            return Err("the SQL reference changed between runs".into());
        }
        eprintln!("money/postgres: run {i}: report {:.2} s, one statement {:.2} s", report_s[i], sql_s[i]);
    }
    srv.stop().await?;
    Ok(vec![Row::new("postgres/revenue_report_1m_invoices_250k_payments", "s_total", median(report_s), "lower")
        .vs(REFERENCE, median(sql_s))
        .target("no target (time reported); totals equal the SQL sum")])
}

async fn seed(pool: &sqlx::PgPool, org: uuid::Uuid, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    // 300,000 distinct instants 103.68 s apart (360 days in all), so about three rows share
    // each millisecond and only the id orders them within it.
    sqlx::query(
        "INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at)
         SELECT gen_random_uuid(), $1, 'BENCH-' || g, (ARRAY['draft','open','paid','void'])[1 + g % 4],
                'Customer ' || (g % 997), (ARRAY['USD','EUR','JPY'])[1 + g % 3], (g * 7919) % 10000000,
                '[]'::jsonb, $2::timestamptz - ((g * 104729) % 300000) * interval '103680 milliseconds'
         FROM generate_series(1, $3::bigint) g",
    )
    .bind(org)
    .bind(now - chrono::Duration::days(1))
    .bind(INVOICES)
    .execute(pool)
    .await
    .map_err(|e| format!("seed invoices: {e}"))?;
    sqlx::query(
        "INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at)
         SELECT gen_random_uuid(), org_id, id, greatest(total_minor / 2, 1), currency, created_at + interval '12 hours'
         FROM keel_invoices WHERE org_id = $1 ORDER BY number LIMIT $2",
    )
    .bind(org)
    .bind(PAYMENTS)
    .execute(pool)
    .await
    .map_err(|e| format!("seed payments: {e}"))?;
    sqlx::query("ANALYZE invoices").execute(pool).await.map_err(|e| e.to_string())?;
    sqlx::query("ANALYZE payments").execute(pool).await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn sql_totals(
    pool: &sqlx::PgPool,
    table: &str,
    time: &str,
    amount: &str,
    org: uuid::Uuid,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Result<Totals, String> {
    let q = format!(
        "SELECT currency, count(*), sum({amount})::bigint FROM {table}
         WHERE org_id = $1 AND {time} >= $2 AND {time} < $3 GROUP BY currency"
    );
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as(&q).bind(org).bind(start).bind(end).fetch_all(pool).await.map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|(c, n, s)| (c, (n, s))).collect())
}

fn check(overall: &serde_json::Value, expected: &Totals, what: &str) -> Result<(), String> {
    let mut got = Totals::new();
    for t in overall["totals"].as_array().ok_or_else(|| format!("{what}: no totals in the answer"))? {
        let c = t["currency"].as_str().unwrap_or_default().to_owned();
        got.insert(c, (t["count"].as_i64().unwrap_or(-1), t["minor"].as_i64().unwrap_or(-1)));
    }
    if &got != expected {
        return Err(format!("{what}: report {got:?} differs from SQL {expected:?}"));
    }
    let rows: i64 = expected.values().map(|t| t.0).sum();
    if overall["count"].as_i64() != Some(rows) {
        return Err(format!("{what}: report count {} differs from SQL {rows}", overall["count"]));
    }
    Ok(())
}
