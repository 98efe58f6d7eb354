//! Password recovery through the queue, and the internal queue snapshot on /api/health.

use crate::fixture::{world, PASSWORD};
use crate::{config, start_with};
use keel_queue::{JobFilter, JobState};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    forgot_password_queues_one_sealed_request_whatever_the_address,
    forgot_password_runs_the_same_statements_for_known_and_unknown_addresses,
    reset_password_is_single_use_and_ends_sessions,
    health_shows_queue_snapshot_only_to_the_internal_bearer
);

const KIND: &str = "auth.password_reset";

async fn reset_jobs(q: &std::sync::Arc<dyn keel_queue::Store>) -> Vec<keel_queue::Job> {
    q.list(JobFilter { kind: Some(KIND.into()), limit: Some(1000), ..Default::default() }).await.unwrap()
}

/// Every job row as stored (both job tables), as text.
async fn jobs_text(db: &Db) -> String {
    let q = "SELECT kind || coalesce(dedupe_key, '') || payload || coalesce(last_error, '') \
             FROM (SELECT * FROM keel_jobs UNION ALL SELECT * FROM keel_jobs_completed) j";
    match db {
        Db::Sqlite(p) => sqlx::query_scalar::<_, String>(q).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar::<_, String>(&q.replace("|| payload ||", "|| payload::text ||"))
            .fetch_all(p)
            .await
            .unwrap(),
    }
    .join("\n")
}

async fn forgot_password_queues_one_sealed_request_whatever_the_address(t: TestDb) {
    let w = world(&t).await;
    let db = t.db.clone();
    let q = keel_queue::open(t.db.clone());
    let s = start_with(t, &[("KEEL_RATE_LIMIT_PASSWORD_RECOVERY", "2/1h,burst=2"), ("KEEL_EMBEDDED_WORKER", "false")])
        .await;
    let c = reqwest::Client::new();
    let post = |email: &str| {
        let (c, url) = (c.clone(), s.url("/api/auth/forgot-password"));
        let body = serde_json::json!({"email": email});
        async move { c.post(url).json(&body).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post("Owner@Example.com").await, 202);
    assert_eq!(post("owner@example.com").await, 202, "a rapid duplicate");
    let jobs = reset_jobs(&q).await;
    assert_eq!(jobs.len(), 1, "duplicates collapse onto one queued request");
    assert!(jobs[0].sealed);
    assert_eq!(jobs[0].payload_redacted(), r#"{"email":"[sealed]"}"#);
    assert_eq!(post("nobody@example.com").await, 202, "unknown address: same answer");
    assert_eq!(reset_jobs(&q).await.len(), 2, "and the same work: one queued request");
    let stored = jobs_text(&db).await;
    assert!(!stored.contains("example.com") && !stored.to_lowercase().contains("owner@"), "{stored}");
    assert!(!stored.contains("token"), "no link, no token: {stored}");
    // Over the per-address limit (2 per hour): still 202, nothing queued.
    q.cancel(jobs[0].id).await.unwrap();
    assert_eq!(post("owner@example.com").await, 202);
    assert_eq!(reset_jobs(&q).await.len(), 2, "the limit stopped it even though no active job blocks it");
    assert_eq!(post("not an email").await, 422);
    let _ = w;
}

/// The request path must not depend on whether the account exists: the statements run (not
/// their timing) for a known and an unknown address are the same, in the same order.
async fn forgot_password_runs_the_same_statements_for_known_and_unknown_addresses(t: TestDb) {
    crate::logs::lines();
    let w = world(&t).await;
    let s = start_with(t, &[("KEEL_EMBEDDED_WORKER", "false")]).await;
    let c = reqwest::Client::new();
    let mut runs = Vec::new();
    for email in [w.owner_email, "nobody@example.com"] {
        let r = c.post(s.url("/api/auth/forgot-password")).json(&serde_json::json!({"email": email})).send().await;
        let r = r.unwrap();
        assert_eq!(r.status(), 202);
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        // A request that happens to open a fresh pooled connection also logs the connection's
        // setup (`PRAGMA …` on SQLite, `SET …` on PostgreSQL): that depends on the pool, not on
        // the account, so it is left out of the comparison.
        let mut stmts = crate::logs::statements_of_request(&id);
        stmts.retain(|s| !s.starts_with("PRAGMA ") && !s.starts_with("SET "));
        runs.push(stmts);
    }
    assert!(runs[0].iter().any(|s| s.contains("INSERT INTO keel_jobs")), "the capture sees the request: {:?}", runs[0]);
    assert!(!runs[0].iter().any(|s| s.contains("keel_users")), "no account lookup on the request path: {:?}", runs[0]);
    assert_eq!(runs[0], runs[1], "a known and an unknown address ran different statements");
}

async fn reset_password_is_single_use_and_ends_sessions(t: TestDb) {
    let w = world(&t).await;
    let outbox = tempfile::tempdir().unwrap();
    let env = [("KEEL_EMBEDDED_WORKER", "false"), ("KEEL_MAIL_OUTBOX_DIR", outbox.path().to_str().unwrap())];
    let ctx = keel_worker::WorkerContext {
        db: t.db.clone(),
        config: config(&env).worker,
        switches: keel_queue::SwitchBoard::default(),
    };
    let worker = keel_worker::build(&ctx).unwrap();
    let s = start_with(t, &env).await;
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/api/auth/sign-in"))
        .json(&serde_json::json!({"email": w.owner_email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(
        c.post(s.url("/api/auth/forgot-password"))
            .json(&serde_json::json!({"email": w.owner_email}))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    while let keel_queue::worker::Tick::Ran { .. } = worker.tick("default").await.unwrap() {}
    let mail = std::fs::read_dir(outbox.path()).unwrap().next().expect("the worker mailed the link").unwrap();
    let text = std::fs::read_to_string(mail.path()).unwrap().replace("=\r\n", "").replace("=3D", "=");
    let token = text.split("token=").nth(1).unwrap().chars().take(64).collect::<String>();
    let reset = |tok: String, pw: &'static str| {
        let (c, url) = (c.clone(), s.url("/api/auth/reset-password"));
        async move {
            c.post(url).json(&serde_json::json!({"token": tok, "password": pw})).send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(reset(token.clone(), "short").await, 422, "weak password refused, token not spent");
    assert_eq!(reset(token.clone(), "a brand new password").await, 204);
    assert_eq!(reset(token.clone(), "another new password").await, 422, "single use");
    assert_eq!(reset("zz".into(), "another new password").await, 422);
    let r = c.get(s.url("/api/admin/invoices")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 401, "the old session ended");
    let r = c
        .post(s.url("/api/auth/sign-in"))
        .json(&serde_json::json!({"email": w.owner_email, "password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = JobState::Pending;
}

async fn health_shows_queue_snapshot_only_to_the_internal_bearer(t: TestDb) {
    let q = keel_queue::open(t.db.clone());
    q.enqueue(keel_queue::NewJob::new("demo.sleep", &serde_json::json!({"ms": 1})).unwrap()).await.unwrap();
    let secret = "k".repeat(40);
    let s = start_with(t, &[("INTERNAL_API_SECRET", secret.as_str()), ("KEEL_EMBEDDED_WORKER", "false")]).await;
    let c = reqwest::Client::new();
    let body: serde_json::Value =
        c.get(s.url("/api/health")).bearer_auth(&secret).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["queue"]["pending"], 1, "{body}");
    for k in ["processing", "retrying", "dead_letter", "oldest_pending_age_s"] {
        assert!(body["queue"].get(k).is_some(), "{k}: {body}");
    }
    let body: serde_json::Value =
        c.get(s.url("/api/health")).bearer_auth("wrong").send().await.unwrap().json().await.unwrap();
    assert!(body.get("queue").is_none());
}
