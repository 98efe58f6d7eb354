//! A full disk on SQLite (made deterministic with `PRAGMA max_page_count`): writes answer 503
//! problem+json with `Retry-After` and store nothing partial, health says the database is
//! degraded, and writes work again as soon as space returns, with no restart.

use crate::fixture::world;
use crate::start;
use keel_storage::Db;
use keel_testkit::TestDb;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Room left when the test starts filling: a few invoices' worth.
const FREE_PAGES: i64 = 12;
/// Most creates tried before the database must have filled up.
const MAX_ATTEMPTS: usize = 200;

/// Keel's SQLite pool over `path`, with `PRAGMA max_page_count` (a per-connection setting) set
/// to `limit` on every connection it opens and again at every acquire, so raising `limit`
/// reaches connections already open: the test's stand-in for a disk filling and being freed.
async fn pool_with_page_limit(path: &std::path::Path, limit: Arc<AtomicU64>) -> Db {
    let on_connect = limit.clone();
    let pool = keel_storage::sqlite_pool_options(&Default::default())
        .after_connect(move |conn, _meta| {
            let n = on_connect.load(Ordering::SeqCst);
            Box::pin(async move {
                sqlx::Executor::execute(conn, sqlx::raw_sql(&format!("PRAGMA max_page_count = {n}"))).await.map(drop)
            })
        })
        .before_acquire(move |conn, _meta| {
            let n = limit.load(Ordering::SeqCst);
            Box::pin(async move {
                sqlx::Executor::execute(conn, sqlx::raw_sql(&format!("PRAGMA max_page_count = {n}"))).await?;
                Ok(true)
            })
        })
        .connect_with(keel_storage::sqlite_connect_options(path))
        .await
        .unwrap();
    Db::Sqlite(pool)
}

/// A large invoice, so the few free pages go in a handful of creates.
fn big_invoice(i: usize) -> serde_json::Value {
    let items: Vec<_> = (0..20)
        .map(|k| serde_json::json!({"description": format!("{k}: {}", "x".repeat(400)), "quantity": 1, "unit_amount_minor": 100}))
        .collect();
    serde_json::json!({"customer_name": format!("Customer {i} {}", "y".repeat(150)), "currency": "USD", "line_items": items})
}

async fn count(db: &Db, q: &str) -> i64 {
    let Db::Sqlite(p) = db else { unreachable!("a SQLite test") };
    sqlx::query_scalar(q).fetch_one(p).await.unwrap()
}

#[tokio::test]
async fn a_full_disk_answers_503_then_recovers_without_restart() {
    let mut t = TestDb::sqlite(crate::SCHEMAS).await;
    let w = world(&t).await;
    let path = t.dir().unwrap().join("keel.db");
    let limit = Arc::new(AtomicU64::new(u64::from(u32::MAX)));
    let db = pool_with_page_limit(&path, limit.clone()).await;
    let pages = count(&db, "PRAGMA page_count").await;
    limit.store((pages + FREE_PAGES) as u64, Ordering::SeqCst);
    t.db = db.clone();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let url = s.url("/api/admin/invoices");
    let create = |i: usize| {
        let (c, url, tok) = (c.clone(), url.clone(), w.owner_token.clone());
        async move { c.post(url).bearer_auth(tok).json(&big_invoice(i)).send().await.unwrap() }
    };

    // Fill the database through the API until a write is refused.
    let mut created = 0;
    let refused = loop {
        assert!(created < MAX_ATTEMPTS, "the database never filled up");
        let r = create(created).await;
        if r.status() != 201 {
            break r;
        }
        created += 1;
    };
    assert!(created > 0, "some invoices fit before the disk filled");
    assert_eq!(refused.status(), 503, "a full disk is 503, not 500");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_eq!(refused.headers()["retry-after"], keel_api::WRITE_REFUSED_RETRY_AFTER_S.to_string().as_str());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "https://keel.dev/problems/unavailable", "{body}");
    assert!(!body.to_string().contains("disk is full"), "the driver's text is not sent: {body}");

    // Every later write, on every pooled connection, is the same 503: none is wedged.
    for i in 0..8 {
        let r = create(1000 + i).await;
        assert_eq!(r.status(), 503, "write {i} while full");
    }

    // Readiness says what every write says.
    let h = c.get(s.url("/api/health")).send().await.unwrap();
    assert_eq!(h.status(), 503);
    let report: serde_json::Value = h.json().await.unwrap();
    assert_eq!(report["status"], "degraded", "{report}");
    assert_eq!(report["services"]["database"], "error", "{report}");

    // Nothing partial: exactly the acknowledged invoices, and the day's counter did not move for
    // the refused ones.
    assert_eq!(count(&db, "SELECT count(*) FROM keel_invoices").await, created as i64);
    assert_eq!(count(&db, "SELECT coalesce(max(last_value), 0) FROM keel_invoice_counters").await, created as i64);

    // Space returns: the next writes succeed at once, on every pooled connection, no restart.
    limit.store(u64::from(u32::MAX), Ordering::SeqCst);
    for i in 0..8 {
        let r = create(2000 + i).await;
        assert_eq!(r.status(), 201, "write {i} after space returned");
        let inv: serde_json::Value = r.json().await.unwrap();
        let n: usize = inv["number"].as_str().unwrap().rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(n, created + i + 1, "numbering continues without a gap");
    }
}
