//! Reports end to end: exact totals over many pages equal an independent SQL sum, a failing
//! page fails the report, bad parameters are named, the dashboard cache follows writes.

use crate::fixture::{invoice, world};
use crate::start_state;
use futures::future::BoxFuture;
use keel_api::reports::{Cursor, DbReportSource, Kind, ReportQuery, ReportSource, Row};
use keel_billing::BillingError;
use keel_money::Page;
use keel_storage::{sqlx, Db};
use keel_testkit::{backend_tests, TestDb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

backend_tests!(
    totals_over_many_pages_equal_an_independent_sql_sum,
    rows_sharing_one_instant_are_counted_once_across_pages,
    payment_totals_over_many_pages_equal_an_independent_sql_sum,
    a_failing_page_fails_the_whole_report,
    a_failing_invoices_page_fails_the_dashboard,
    a_failing_payments_page_fails_the_dashboard,
    bad_report_parameters_are_named,
    dashboard_is_cached_and_follows_writes,
    a_report_over_the_maximum_amount_times_many_rows_is_exact,
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

/// Independent per-currency (total, count) of one org's invoices, straight from SQL.
async fn sql_totals(db: &Db, org: keel_ids::OrgId) -> Vec<(String, i64, i64)> {
    sql_sums(db, "keel_invoices", "total_minor", org).await
}

async fn sql_payment_totals(db: &Db, org: keel_ids::OrgId) -> Vec<(String, i64, i64)> {
    sql_sums(db, "keel_payments", "amount_minor", org).await
}

async fn sql_sums(db: &Db, table: &str, amount: &str, org: keel_ids::OrgId) -> Vec<(String, i64, i64)> {
    let q = format!("SELECT currency, CAST(sum({amount}) AS BIGINT), count(*) FROM {table} WHERE org_id = ");
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

fn per_currency(totals: &serde_json::Value) -> Vec<(String, i64, i64)> {
    totals
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["currency"].as_str().unwrap().to_owned(), t["minor"].as_i64().unwrap(), t["count"].as_i64().unwrap())
        })
        .collect()
}

/// Records payments through the API: one to three partial payments on each of the org's
/// invoices (in their own currencies), `count` in all. Returns how many were recorded.
async fn seed_payments(c: &reqwest::Client, s: &crate::Server, tok: &str, count: usize) -> usize {
    let list: serde_json::Value =
        c.get(s.url("/api/admin/invoices?limit=200")).bearer_auth(tok).send().await.unwrap().json().await.unwrap();
    let invoices = list["items"].as_array().unwrap();
    let mut made = 0;
    for (i, inv) in invoices.iter().cycle().enumerate().take(count) {
        let body = serde_json::json!({"amount_minor": 1 + (i as i64 * 53) % 997, "currency": inv["currency"]});
        let url = s.url(&format!("/api/admin/invoices/{}/payments", inv["id"].as_str().unwrap()));
        let r = c.post(url).bearer_auth(tok).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        made += 1;
    }
    made
}

/// The payments half of the revenue report: more payments than pages hold, in two currencies,
/// several per invoice; totals and counts equal an independent SQL sum over `payments`.
async fn payment_totals_over_many_pages_equal_an_independent_sql_sum(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    // Some 70 admin requests in a moment: above the default admin_api burst of 60.
    let s =
        start_state(t, &[("KEEL_RATE_LIMIT_ADMIN_API", "1000/1m,burst=1000")], |st| st.report_page_size = PAGE).await;
    let c = reqwest::Client::new();
    seed(&c, &s.url("/api/admin/invoices"), &w.owner_token, 12).await;
    let paid = seed_payments(&c, &s, &w.owner_token, 45).await;
    // Another org's payment must not leak into this org's report.
    let theirs: serde_json::Value = c
        .post(s.url("/api/admin/invoices"))
        .bearer_auth(&w.other_token)
        .json(&invoice("Theirs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = c
        .post(s.url(&format!("/api/admin/invoices/{}/payments", theirs["id"].as_str().unwrap())))
        .bearer_auth(&w.other_token)
        .json(&serde_json::json!({"amount_minor": 777}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let expected = sql_payment_totals(&db, w.parent).await;
    assert_eq!(expected.len(), 2, "USD and EUR payments: {expected:?}");
    assert_eq!(expected.iter().map(|e| e.2).sum::<i64>(), paid as i64);
    let d = today();
    for group_by in ["status", "month"] {
        let r = c
            .get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}&group_by={group_by}")))
            .bearer_auth(&w.owner_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        let overall = &body["payments"]["overall"];
        assert_eq!(overall["count"], paid, "{body}");
        assert_eq!(per_currency(&overall["totals"]), expected, "exact payment totals over {} pages", paid / PAGE + 1);
        // One group (all payments group as `payment`, or all fall in this month) equal to the whole.
        let groups = body["payments"]["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{body}");
        assert_eq!(per_currency(&groups[0]["totals"]), expected);
        // The invoices half is unaffected by payments.
        assert_eq!(per_currency(&body["invoices"]["overall"]["totals"]), sql_totals(&db, w.parent).await);
    }
    let csv = c
        .get(s.url(&format!("/api/admin/reports/revenue?from={d}&to={d}&format=csv")))
        .bearer_auth(&w.owner_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (cur, minor, count) in &expected {
        assert!(csv.contains(&format!("payments,ALL,{cur},{count},{minor},")), "{csv}");
    }
    // The dashboard's payments KPI is the same exact figure.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let dash: serde_json::Value = c
        .get(s.url(&format!("/api/admin/dashboard?month={month}")))
        .bearer_auth(&w.owner_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dash["payments"]["count"], paid, "{dash}");
    assert_eq!(per_currency(&dash["payments"]["totals"]), expected);
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
    /// Which source the injected failure hit, so a test knows which half it failed.
    failed: Mutex<Option<Kind>>,
}

impl FailOnPage {
    fn new(db: Db, fail_at: usize) -> Self {
        Self { inner: DbReportSource(db), calls: AtomicUsize::new(0), fail_at, failed: Mutex::new(None) }
    }
}

impl ReportSource for FailOnPage {
    fn page(
        &self,
        query: ReportQuery,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page<Cursor, Row>, BillingError>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            *self.failed.lock().unwrap() = Some(query.kind);
            return Box::pin(async { Err(BillingError::from(sqlx::Error::Protocol("injected page failure".into()))) });
        }
        self.inner.page(query, cursor, limit)
    }
}

async fn a_failing_page_fails_the_whole_report(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let s = start_state(t, &[], |st| {
        st.report_page_size = PAGE;
        st.reports = Arc::new(FailOnPage::new(db, 3));
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

async fn a_failing_invoices_page_fails_the_dashboard(t: TestDb) {
    // The first page read is the invoices'.
    dashboard_fails_on_page(t, 1, Kind::Invoices).await;
}

async fn a_failing_payments_page_fails_the_dashboard(t: TestDb) {
    // 10 invoices at 7 a page take two pages; the third read is the payments' first.
    dashboard_fails_on_page(t, 3, Kind::Payments).await;
}

/// A source failure on the dashboard answers 5xx problem+json with no totals at all (not the
/// other half's, not zeros), and the failure is not cached: the next request computes afresh.
async fn dashboard_fails_on_page(t: TestDb, fail_at: usize, half: Kind) {
    let w = world(&t).await;
    let source = Arc::new(FailOnPage::new(t.db.clone(), fail_at));
    let s = start_state(t, &[], |st| {
        st.report_page_size = PAGE;
        st.reports = source.clone();
    })
    .await;
    let c = reqwest::Client::new();
    seed(&c, &s.url("/api/admin/invoices"), &w.owner_token, 10).await;
    let paid = seed_payments(&c, &s, &w.owner_token, 9).await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let get = || {
        let (c, url, tok) = (c.clone(), s.url(&format!("/api/admin/dashboard?month={month}")), w.owner_token.clone());
        async move { c.get(url).bearer_auth(tok).send().await.unwrap() }
    };
    let r = get().await;
    assert!(r.status().is_server_error(), "{}", r.status());
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let text = r.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(body["status"].as_u64().is_some_and(|s| s >= 500), "{body}");
    for leak in ["\"totals\"", "\"invoices\"", "\"payments\"", "\"forecast\"", "\"minor\"", "injected"] {
        assert!(!text.contains(leak), "no partial figures, no internals ({leak}): {text}");
    }
    assert_eq!(*source.failed.lock().unwrap(), Some(half), "the injected failure hit the {half:?} half");
    // The failure was not cached as a result: the next request reads every page and is exact.
    let r = get().await;
    assert_eq!(r.status(), 200);
    let dash: serde_json::Value = r.json().await.unwrap();
    assert_eq!(dash["cached"], false, "{dash}");
    assert_eq!(dash["invoices"]["count"], 10);
    assert_eq!(dash["payments"]["count"], paid);
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

/// Rows stored straight into the database: `n` invoices and `n` payments (on the first
/// invoice) of `amount` USD each, at `at`.
async fn insert_many(db: &Db, org: keel_ids::OrgId, n: i64, amount: i64, at: chrono::DateTime<chrono::Utc>) {
    match db {
        Db::Postgres(p) => {
            sqlx::query(
                "INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at)
                 SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, $1, 'INV-BIG-' || g, 'open', 'Big', 'USD', $3, '[]', $4
                   FROM generate_series(1, $2) g",
            )
            .bind(org.as_uuid()).bind(n).bind(amount).bind(at).execute(p).await.unwrap();
            sqlx::query(
                "INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at)
                 SELECT ('00000000-0000-4000-9000-' || lpad(g::text, 12, '0'))::uuid, $1, '00000000-0000-4000-8000-000000000001', $3, 'USD', $4
                   FROM generate_series(1, $2) g",
            )
            .bind(org.as_uuid()).bind(n).bind(amount).bind(at).execute(p).await.unwrap();
        }
        Db::Sqlite(p) => {
            sqlx::query(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2)
                 INSERT INTO keel_invoices (id, org_id, number, status, customer_name, currency, total_minor, line_items, created_at)
                 SELECT printf('00000000-0000-4000-8000-%012d', n), ?1, 'INV-BIG-' || n, 'open', 'Big', 'USD', ?3, '[]', ?4 FROM g",
            )
            .bind(org.to_string()).bind(n).bind(amount).bind(at.timestamp_millis()).execute(p).await.unwrap();
            sqlx::query(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2)
                 INSERT INTO keel_payments (id, org_id, invoice_id, amount_minor, currency, paid_at)
                 SELECT printf('00000000-0000-4000-9000-%012d', n), ?1, '00000000-0000-4000-8000-000000000001', ?3, 'USD', ?4 FROM g",
            )
            .bind(org.to_string()).bind(n).bind(amount).bind(at.timestamp_millis()).execute(p).await.unwrap();
        }
    }
}

/// The largest amount the writes accept, on 10,000 invoices and 10,000 payments: each total is
/// past i64 (it used to answer 500), and the report and dashboard give it exactly, in JSON and
/// CSV, over many pages.
async fn a_report_over_the_maximum_amount_times_many_rows_is_exact(t: TestDb) {
    use keel_billing::MAX_AMOUNT_MINOR as MAX;
    const ROWS: i64 = 10_000;
    let w = world(&t).await;
    insert_many(&t.db, w.parent, ROWS, MAX, chrono::Utc::now()).await;
    let s = start_state(t, &[], |_| {}).await;
    let c = reqwest::Client::new();
    let expected = i128::from(ROWS) * i128::from(MAX);
    assert!(expected > i128::from(i64::MAX));
    let d = today();
    let get = |path: String| {
        let (c, url, tok) = (c.clone(), s.url(&path), w.owner_token.clone());
        async move {
            let r = c.get(url).bearer_auth(tok).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = get(format!("/api/admin/reports/revenue?from={d}&to={d}&group_by=status")).await;
    assert_eq!(status, 200, "{text}");
    // serde_json::Value cannot hold the number; the text holds it exactly.
    let usd = format!(
        r#""minor":{expected},"formatted":"$99,999,999,999,999,900.00","plain":"99999999999999900.00","count":{ROWS}"#
    );
    assert_eq!(text.matches(&usd).count(), 4, "invoices (open, overall) and payments (payment, overall): {text}");
    let (status, csv) = get(format!("/api/admin/reports/revenue?from={d}&to={d}&format=csv")).await;
    assert_eq!(status, 200, "{csv}");
    for section in ["invoices", "payments"] {
        assert!(csv.contains(&format!("{section},ALL,USD,{ROWS},{expected},99999999999999900.00\n")), "{csv}");
    }
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let (status, dash) = get(format!("/api/admin/dashboard?month={month}")).await;
    assert_eq!(status, 200, "{dash}");
    assert_eq!(dash.matches(&usd).count(), 3, "invoices, open invoices and payments: {dash}");
}
