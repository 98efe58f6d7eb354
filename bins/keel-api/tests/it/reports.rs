//! Reports end to end: exact totals over many pages equal an independent SQL sum, a failing
//! page fails the report, bad parameters are named, the dashboard cache follows writes.

use crate::fixture::{invoice, world};
use crate::start_state;
use futures::future::BoxFuture;
use keel_api::reports::{Cursor, DbReportSource, Grouping, Kind, ReportSource, ReportSourceError, Row};
use keel_money::Page;
use keel_storage::{sqlx, Db};
use keel_testkit::{backend_tests, TestDb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

backend_tests!(
    totals_over_many_pages_equal_an_independent_sql_sum,
    rows_sharing_one_instant_are_counted_once_across_pages,
    a_failing_page_fails_the_whole_report,
    bad_report_parameters_are_named,
    dashboard_is_cached_and_follows_writes,
);

const PAGE: usize = 7;

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

async fn seed(c: &reqwest::Client, url: &str, tok: &str, n: usize) {
    for i in 0..n {
        let mut inv = invoice(&format!("Customer {i}"));
        inv["currency"] = serde_json::json!(if i % 3 == 0 { "EUR" } else { "USD" });
        inv["line_items"][0]["unit_amount_minor"] = serde_json::json!(1001 + i as i64 * 37);
        inv["line_items"][0]["quantity"] = serde_json::json!(1 + (i % 4));
        let r = c.post(url).bearer_auth(tok).json(&inv).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
}

async fn sql_totals(db: &Db, org: keel_ids::OrgId) -> Vec<(String, i64, i64)> {
    let q = "SELECT currency, CAST(sum(total_minor) AS BIGINT), count(*) FROM invoices WHERE org_id = ";
    match db {
        Db::Postgres(p) => sqlx::query_as(&format!("{q}$1 GROUP BY currency ORDER BY currency"))
            .bind(org.as_uuid())
            .fetch_all(p)
            .await
            .unwrap(),
        Db::Sqlite(p) => sqlx::query_as(&format!("{q}? GROUP BY currency ORDER BY currency"))
            .bind(org.to_string())
            .fetch_all(p)
            .await
            .unwrap(),
    }
}

async fn totals_over_many_pages_equal_an_independent_sql_sum(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let s = start_state(t, &[], |st| st.report_page_size = PAGE).await;
    let c = reqwest::Client::new();
    seed(&c, &s.url("/api/admin/invoices"), &w.owner_token, 50).await;
    let d = today();
    let r = c
        .get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}&group_by=status")))
        .bearer_auth(&w.owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let overall = &body["invoices"]["overall"];
    assert_eq!(overall["count"], 50);
    let expected = sql_totals(&db, w.parent).await;
    let got: Vec<(String, i64, i64)> = overall["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["currency"].as_str().unwrap().to_owned(), t["minor"].as_i64().unwrap(), t["count"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(got, expected, "exact per-currency totals over {} pages", 50 / PAGE + 1);
    let usd = overall["totals"].as_array().unwrap().iter().find(|t| t["currency"] == "USD").unwrap();
    assert!(usd["formatted"].as_str().unwrap().starts_with('$'));
    // CSV carries the same numbers.
    let csv = c
        .get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}&format=csv")))
        .bearer_auth(&w.owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    for (cur, minor, count) in &expected {
        assert!(text.contains(&format!("invoices,ALL,{cur},{count},{minor},")), "{text}");
    }
}

/// A bulk create stamps every invoice with one instant, so only the id orders them: pages that
/// split such a run must neither skip nor repeat a row.
async fn rows_sharing_one_instant_are_counted_once_across_pages(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let s = start_state(t, &[], |st| st.report_page_size = PAGE).await;
    let c = reqwest::Client::new();
    let invoices: Vec<_> = (0..40)
        .map(|i| {
            let mut inv = invoice(&format!("Bulk {i}"));
            inv["line_items"][0]["unit_amount_minor"] = serde_json::json!(100 + i * 13);
            inv
        })
        .collect();
    let r = c
        .post(s.url("/api/admin/invoices/bulk"))
        .bearer_auth(&w.owner_token)
        .json(&serde_json::json!({ "invoices": invoices }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d = today();
    let body: serde_json::Value = c
        .get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}&group_by=month")))
        .bearer_auth(&w.owner_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let overall = &body["invoices"]["overall"];
    assert_eq!(overall["count"], 40, "{body}");
    let expected = sql_totals(&db, w.parent).await;
    assert_eq!(expected.len(), 1);
    assert_eq!(overall["totals"][0]["minor"].as_i64(), Some(expected[0].1), "{body}");
    assert_eq!(overall["totals"][0]["count"].as_i64(), Some(40));
}

/// The real source, failing on one page: the report must fail as a whole.
struct FailOnPage {
    inner: DbReportSource,
    calls: AtomicUsize,
    fail_at: usize,
}

impl ReportSource for FailOnPage {
    fn page<'a>(
        &'a self,
        kind: Kind,
        org: keel_ids::OrgId,
        from: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
        grouping: Grouping,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Page<Cursor, Row>, ReportSourceError>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            return Box::pin(async {
                Err(ReportSourceError::Db(sqlx::Error::Protocol("injected page failure".into())))
            });
        }
        self.inner.page(kind, org, from, until, grouping, cursor, limit)
    }
}

async fn a_failing_page_fails_the_whole_report(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let s = start_state(t, &[], |st| {
        st.report_page_size = PAGE;
        st.reports = Arc::new(FailOnPage { inner: DbReportSource(db), calls: AtomicUsize::new(0), fail_at: 3 });
    })
    .await;
    let c = reqwest::Client::new();
    seed(&c, &s.url("/api/admin/invoices"), &w.owner_token, 30).await;
    let d = today();
    let r = c
        .get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}")))
        .bearer_auth(&w.owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("\"totals\"") && !body.contains("\"overall\"") && !body.contains("injected"),
        "no partial totals, no internals: {body}"
    );
}

async fn bad_report_parameters_are_named(t: TestDb) {
    let w = world(&t).await;
    let s = start_state(t, &[("KEEL_REPORT_MAX_DAYS", "31")], |_| {}).await;
    let c = reqwest::Client::new();
    let get = |q: &'static str| {
        let (c, url, tok) = (c.clone(), s.url(&format!("/api/admin/reports/revenue?{q}")), w.owner_token.clone());
        async move {
            let r = c.get(url).bearer_auth(tok).send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (st, b) = get("from=2026-13-01&to=2026-12-01").await;
    assert_eq!(st, 400);
    assert_eq!(b["errors"][0]["field"], "from");
    let (st, b) = get("from=2026-02-01&to=2026-01-01").await;
    assert_eq!(st, 422);
    assert_eq!(b["errors"][0]["field"], "to");
    let (st, b) = get("from=2026-01-01&to=2026-03-01").await;
    assert_eq!(st, 422);
    assert!(b["detail"].as_str().unwrap().contains("KEEL_REPORT_MAX_DAYS"));
    assert_eq!(get("from=2026-01-01&to=2026-01-02&group_by=week").await.0, 422);
    assert_eq!(get("to=2026-01-02").await.0, 400);
    let r = c.get(s.url("/api/admin/dashboard?month=2026-1x")).bearer_auth(&w.owner_token).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

async fn dashboard_is_cached_and_follows_writes(t: TestDb) {
    let w = world(&t).await;
    let s = start_state(t, &[], |_| {}).await;
    let c = reqwest::Client::new();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let get = || {
        let (c, url, tok) = (c.clone(), s.url(&format!("/api/admin/dashboard?month={month}")), w.owner_token.clone());
        async move { c.get(url).bearer_auth(tok).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let first = get().await;
    assert_eq!(first["invoices"]["count"], 0);
    assert_eq!(first["cached"], false);
    let second = get().await;
    assert_eq!(second["cached"], true);
    assert_eq!(second["as_of"], first["as_of"]);
    let r =
        c.post(s.url("/api/admin/invoices")).bearer_auth(&w.owner_token).json(&invoice("Fresh")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let third = get().await;
    assert_eq!(third["cached"], false, "the write invalidated the cached dashboard");
    assert_eq!(third["invoices"]["count"], 1);
    assert_eq!(third["invoices"]["totals"][0]["minor"], 25100);
    assert!(third["forecast"]["label"].as_str().unwrap().starts_with("forecast"));
}
