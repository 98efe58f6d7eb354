//! Password recovery through the queue, and the internal queue snapshot on /api/health.

use crate::fixture::{world, PASSWORD};
use crate::{start_state, start_with};
use keel_queue::{JobFilter, JobState};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    forgot_password_queues_one_email_and_reveals_nothing,
    reset_password_is_single_use_and_ends_sessions,
    health_shows_queue_snapshot_only_to_the_internal_bearer
);

async fn email_jobs(q: &std::sync::Arc<dyn keel_queue::Store>) -> Vec<keel_queue::Job> {
    q.list(JobFilter { kind: Some("email.send".into()), limit: Some(1000), ..Default::default() }).await.unwrap()
}

async fn forgot_password_queues_one_email_and_reveals_nothing(t: TestDb) {
    let w = world(&t).await;
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
    let jobs = email_jobs(&q).await;
    assert_eq!(jobs.len(), 1, "duplicates collapse onto one queued email");
    assert!(jobs[0].payload.contains("reset-password?token="));
    assert_eq!(post("nobody@example.com").await, 202, "unknown address: same answer");
    assert_eq!(email_jobs(&q).await.len(), 1, "nothing queued for an unknown address");
    // Over the per-address limit (2 per hour): still 202, nothing queued.
    q.cancel(jobs[0].id).await.unwrap();
    assert_eq!(post("owner@example.com").await, 202);
    assert_eq!(email_jobs(&q).await.len(), 1, "the limit stopped it even though no active job blocks it");
    assert_eq!(post("not an email").await, 422);
    let _ = w;
}

async fn reset_password_is_single_use_and_ends_sessions(t: TestDb) {
    let w = world(&t).await;
    let q = keel_queue::open(t.db.clone());
    let s = start_state(t, &[("KEEL_EMBEDDED_WORKER", "false")], |_| {}).await;
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
    let job = email_jobs(&q).await.pop().unwrap();
    let token = job.payload.split("token=").nth(1).unwrap().chars().take(64).collect::<String>();
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
