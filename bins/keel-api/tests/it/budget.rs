//! Time budgets: a request stuck on the database (a held lock) gets 503 + `Retry-After` +
//! problem+json within its budget, writes nothing, and the next request after the lock is gone
//! succeeds. The lock is real, held by another connection to the test's database.
//!
//! The backends block differently. PostgreSQL's `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` stops
//! readers and writers of that table. SQLite has no table locks; `BEGIN IMMEDIATE` takes the one
//! database write lock, which makes writers wait (for the 5 s busy timeout) while readers carry
//! on, since WAL readers are never blocked by a writer. So on SQLite the tests drive the write
//! path and assert that reads still answer.

use crate::fixture::{invoice, world, PASSWORD};
use crate::{start_state, start_with};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use sqlx::Connection;

backend_tests!(
    request_budget_answers_503_while_a_table_is_locked,
    sign_in_budget_answers_503_while_sessions_are_locked
);

/// Budgets long enough that the same request without the lock finishes well inside them on a
/// loaded machine; the 503 path waits exactly this long.
const REQUEST_BUDGET: &str = "1s";
const SIGN_IN_BUDGET: &str = "1s";

/// A lock held by its own connection until [`Lock::release`].
enum Lock {
    Pg(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Lock {
    /// Postgres: `table` locked against every reader and writer. SQLite: the database's write
    /// lock (`table` is only named for the reader).
    async fn take(pg: bool, url: &str, table: &str) -> Lock {
        if pg {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")).execute(&mut c).await.unwrap();
            Lock::Pg(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
            Lock::Sqlite(c)
        }
    }

    async fn release(self) {
        match self {
            Lock::Pg(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Lock::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

/// 503 problem+json with a `Retry-After` and a detail that says to retry and names `mentions`.
async fn assert_retryable_503(r: reqwest::Response, mentions: &str) {
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After: {retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "https://keel.dev/problems/unavailable");
    assert_eq!(body["status"], 503);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("try again") && detail.contains(mentions), "{detail}");
}

/// The client gives up after a minute: never reached while the budgets work (they answer within
/// two seconds), it turns a regression into a failing test instead of a suite hung on the lock.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap()
}

async fn invoice_total(c: &reqwest::Client, url: String, token: &str) -> i64 {
    let r = c.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<serde_json::Value>().await.unwrap()["total"].as_i64().unwrap()
}

async fn request_budget_answers_503_while_a_table_is_locked(t: TestDb) {
    let w = world(&t).await;
    let (pg, url) = (matches!(t.db, Db::Postgres(_)), t.url.clone());
    let s = start_with(t, &[("KEEL_REQUEST_TIMEOUT", REQUEST_BUDGET)]).await;
    let lock = Lock::take(pg, &url, "keel_invoices").await;
    let c = client();
    let list = s.url("/api/admin/invoices");
    if pg {
        let r = c.get(&list).bearer_auth(&w.owner_token).send().await.unwrap();
        assert_retryable_503(r, "taking too long").await;
    } else {
        // WAL: the reader is not blocked by the held write lock.
        assert_eq!(invoice_total(&c, list.clone(), &w.owner_token).await, 0);
    }
    let r = c.post(&list).bearer_auth(&w.owner_token).json(&invoice("Timed Out")).send().await.unwrap();
    assert_retryable_503(r, "taking too long").await;
    lock.release().await;
    // The timed-out create was abandoned inside its transaction: nothing of it was written.
    assert_eq!(invoice_total(&c, list.clone(), &w.owner_token).await, 0);
    let r = c.post(&list).bearer_auth(&w.owner_token).json(&invoice("On Time")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let page: serde_json::Value = c.get(&list).bearer_auth(&w.owner_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["customer_name"], "On Time");
}

async fn sign_in_budget_answers_503_while_sessions_are_locked(t: TestDb) {
    let w = world(&t).await;
    let (pg, url) = (matches!(t.db, Db::Postgres(_)), t.url.clone());
    // Sign-in's budget is the shorter one, so its own 503 (which names sign-in) is what answers.
    let env = [("KEEL_SIGN_IN_TIMEOUT", SIGN_IN_BUDGET), ("KEEL_REQUEST_TIMEOUT", "2s")];
    let s = start_state(t, &env, |st| {
        if !pg {
            // On SQLite the shared `public_ingress` limiter writes to the database before
            // sign-in runs, so under the held write lock it would fail closed first (its own
            // 250 ms deadline, a different 503). The in-process limiter lets the request reach
            // sign-in's own dependency; PostgreSQL keeps the real one (it never touches
            // `sessions`). The per-account throttle (`sign_in_failures`) spends an attempt with
            // a write too, so on SQLite it is what meets the lock, and it answers with sign-in's
            // own retryable 503 within its 250 ms deadline.
            let l = &st.limits;
            let policy = st.config.rate_limits.get("public_ingress").unwrap();
            st.limits = std::sync::Arc::new(keel_api::Limits {
                admin_api: l.admin_api.clone(),
                public_ingress: std::sync::Arc::new(policy.in_process_limiter()),
                password_recovery: l.password_recovery.clone(),
                telemetry_ingest: l.telemetry_ingest.clone(),
                sign_in_failures: l.sign_in_failures.clone(),
                operator_console: l.operator_console.clone(),
            });
        }
    })
    .await;
    let c = client();
    let sign_in = || {
        c.post(s.url("/api/auth/sign-in"))
            .json(&serde_json::json!({"email": w.owner_email, "password": PASSWORD}))
            .send()
    };
    // The budget is enough for a sign-in when nothing is in the way.
    let r = sign_in().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();

    let lock = Lock::take(pg, &url, "keel_sessions").await;
    let r = sign_in().await.unwrap();
    assert!(r.headers().get("set-cookie").is_none(), "no session was handed out");
    assert_retryable_503(r, "sign-in").await;
    let r = c.get(s.url("/api/admin/invoices")).header("cookie", &cookie).send().await.unwrap();
    if pg {
        // The session lookup itself waits on the lock: the request budget answers.
        assert_retryable_503(r, "taking too long").await;
    } else {
        // A live session that is not due to slide is only read, and WAL readers do not wait.
        assert_eq!(r.status(), 200);
    }
    lock.release().await;
    let r = sign_in().await.unwrap();
    assert_eq!(r.status(), 200);
}
