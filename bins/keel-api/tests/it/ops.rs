//! The operator API (`/api/ops/*`) on a real server, both backends: only platform operators get
//! in (401 signed out, 403 for an org owner, for an org-scoped token and after a revocation),
//! the counts are the store's in the document `keel-ops queue stats --json` prints, actions work
//! and land in the activity log with the peer address, cookie POSTs need the CSRF proof and
//! their own Origin, and nothing in it shows billing data.

use crate::fixture::{invoice, world, PASSWORD};
use crate::{start, start_with};
use keel_ids::Email;
use keel_queue::store::{Claim, Finish, Outcome};
use keel_queue::{ops_json, JobState, NewJob};
use keel_tenancy::Tenancy;
use keel_testkit::{backend_tests, TestDb};
use serde_json::{json, Value};
use std::time::Duration;

backend_tests!(
    only_operators_get_in,
    operator_counts_are_the_stores_in_the_keel_ops_document,
    retry_requeue_and_pause_work_and_are_recorded,
    cookie_posts_need_the_csrf_proof_and_their_own_origin,
    ops_shows_no_billing_data,
    the_operator_console_policy_limits_the_api,
    route_percentiles_are_charted_per_day,
    job_detail_hides_sealed_arguments,
);

const OPERATOR: &str = "oncall@example.com";

/// An operator with a password (for the cookie) and an operator-scoped token.
pub(crate) async fn operator(t: &TestDb) -> (keel_ids::UserId, String) {
    let tn = Tenancy::new(t.db.clone());
    let u = tn.create_user(&Email::parse(OPERATOR).unwrap(), Some(PASSWORD)).await.unwrap();
    tn.grant_operator(u, None, chrono::Utc::now()).await.unwrap();
    (u, tn.issue_operator_token(u).await.unwrap().token)
}

async fn sign_in(c: &reqwest::Client, s: &crate::Server, email: &str) -> String {
    let r =
        c.post(s.url("/api/auth/sign-in")).json(&json!({"email": email, "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("keel_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap()
}

/// A job of `kind` in a queue of its own (no worker claims it here, and no other job is claimed
/// with it), dead-lettered with `error`.
pub(crate) async fn dead_job(
    store: &std::sync::Arc<dyn keel_queue::Store>,
    kind: &str,
    error: &str,
) -> keel_queue::JobId {
    let queue = format!("dead-{}", uuid::Uuid::new_v4().simple());
    let id = store.enqueue(NewJob::new(kind, &json!({"n": 1})).unwrap().queue(&queue)).await.unwrap().id();
    let claim = Claim {
        queue,
        task: "background_job".into(),
        limit: 1,
        lease: Duration::from_secs(30),
        worker: "test-worker".into(),
        after: None,
    };
    let jobs = store.claim(claim).await.unwrap();
    assert_eq!(jobs[0].id, id);
    let done = Finish { lease: jobs[0].lease().unwrap(), outcome: Outcome::DeadLetter { error: error.into() } };
    store.finish(vec![done]).await.unwrap();
    id
}

async fn only_operators_get_in(t: TestDb) {
    let w = world(&t).await;
    let (op, op_token) = operator(&t).await;
    let tn = Tenancy::new(t.db.clone());
    let s = start(t).await;
    let c = reqwest::Client::new();
    let get = |path: &str| c.get(s.url(path));

    let r = get("/api/ops/overview").send().await.unwrap();
    assert_eq!(r.status(), 401, "signed out");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // An org owner, by session and by (org-scoped) token, is not an operator.
    let owner_cookie = sign_in(&c, &s, w.owner_email).await;
    let r = get("/api/ops/overview").header("cookie", &owner_cookie).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(get("/api/ops/queue/stats").bearer_auth(&w.owner_token).send().await.unwrap().status(), 403);
    let r = c.post(s.url("/api/ops/queues/default/pause")).bearer_auth(&w.owner_token).send().await.unwrap();
    assert_eq!(r.status(), 403, "no action either");
    // The operator's own org-scoped token is not an operator token.
    let plain = tn.issue_token(op).await.unwrap().token;
    let r = get("/api/ops/me").bearer_auth(&plain).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("operator scope"));
    assert_eq!(get("/api/ops/me").bearer_auth("keel_garbage").send().await.unwrap().status(), 401);
    let r = get("/api/ops/me").bearer_auth(&op_token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user_id"], op.to_string());
    assert_eq!(me["via"], "token");
    assert!(me["csrf_token"].is_null(), "tokens need no CSRF proof");
    assert!(!me.to_string().contains(OPERATOR), "the address is masked: {me}");
    // Revoking the grant closes the API to the token at once.
    tn.revoke_operator(op).await.unwrap();
    assert_eq!(get("/api/ops/me").bearer_auth(&op_token).send().await.unwrap().status(), 403);
}

async fn operator_counts_are_the_stores_in_the_keel_ops_document(t: TestDb) {
    let (_, token) = operator(&t).await;
    let store = keel_queue::open(t.db.clone());
    for i in 0..3 {
        store.enqueue(NewJob::new("demo.count", &json!({"i": i})).unwrap().queue("ops-test")).await.unwrap();
    }
    dead_job(&store, "demo.dead", "boom").await;
    let expected = ops_json::stats(&store.snapshot().await.unwrap());
    let s = start(t).await;
    let c = reqwest::Client::new();
    let mut got: Value =
        c.get(s.url("/api/ops/queue/stats")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let mut expected = expected;
    // The only field that moves between two snapshots: the age of the oldest waiting job.
    for v in [&mut got, &mut expected] {
        assert!(v["oldest_pending_age_s"].as_f64().is_some(), "{v}");
        v["oldest_pending_age_s"] = json!(null);
    }
    assert_eq!(got, expected, "the keel-ops queue stats --json document, with the store's counts");
    assert_eq!(got["pending"], 3);
    assert_eq!(got["dead_letter"], 1);
    assert_eq!(got["by_kind"]["demo.count"]["pending"], 3);

    let o: Value = c.get(s.url("/api/ops/overview")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(o["queue"]["pending"], 3);
    assert_eq!(o["health"]["status"], "ok", "{o}");
    let minutes = o["throughput"].as_array().unwrap();
    assert!((60..=61).contains(&minutes.len()), "one point per minute of the last hour: {}", minutes.len());
    let failed: u64 = minutes.iter().map(|m| m["failed"].as_u64().unwrap()).sum();
    assert_eq!(failed, 1, "the dead-lettered job finished within the hour");

    // The job list: filters, keyset pages with a Link to the next, search by id.
    let r = c.get(s.url("/api/ops/jobs?state=pending&limit=2")).bearer_auth(&token).send().await.unwrap();
    let next = r.headers()["link"].to_str().unwrap().to_owned();
    let page1: Value = r.json().await.unwrap();
    assert_eq!(page1.as_array().unwrap().len(), 2);
    let next_path = next.trim_start_matches('<').split('>').next().unwrap().to_owned();
    assert!(next.ends_with("rel=\"next\"") && next_path.contains("state=pending"), "{next}");
    let r = c.get(s.url(&next_path)).bearer_auth(&token).send().await.unwrap();
    assert!(r.headers().get("link").is_none(), "the last page names no next");
    let page2: Value = r.json().await.unwrap();
    assert_eq!(page2.as_array().unwrap().len(), 1);
    let mut ids: Vec<&str> =
        page1.as_array().unwrap().iter().chain(page2.as_array().unwrap()).map(|j| j["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "pages do not overlap");
    let one = ids[0];
    let found: Value = c
        .get(s.url(&format!("/api/ops/jobs?id={one}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found[0]["id"], one);
    let r = c.get(s.url("/api/ops/jobs?state=nope")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("state"));
    let r = c.get(s.url("/api/ops/jobs?limit=0")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

async fn retry_requeue_and_pause_work_and_are_recorded(t: TestDb) {
    let (op, token) = operator(&t).await;
    let store = keel_queue::open(t.db.clone());
    let dead = dead_job(&store, "demo.dead", "could not reach ann@example.com").await;
    let dead2 = dead_job(&store, "demo.dead", "again").await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let post = |path: &str| c.post(s.url(path)).bearer_auth(&token);

    let detail: Value =
        c.get(s.url(&format!("/api/ops/jobs/{dead}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let err = detail["last_error"].as_str().unwrap();
    assert!(!err.contains("ann@example.com") && err.contains("could not reach"), "address masked: {err}");

    let r = post(&format!("/api/ops/jobs/{dead}/retry")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["state"], "pending");
    assert_eq!(store.get(dead).await.unwrap().unwrap().state, JobState::Pending);
    let r = post(&format!("/api/ops/jobs/{dead}/requeue")).send().await.unwrap();
    assert_eq!(r.status(), 409, "only dead jobs are requeued");
    let r = post(&format!("/api/ops/jobs/{dead2}/requeue")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(store.get(dead2).await.unwrap().unwrap().state, JobState::Pending);
    let r = post(&format!("/api/ops/jobs/{dead}/cancel")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(store.get(dead).await.unwrap().unwrap().state, JobState::Cancelled);
    let other = dead_job(&store, "demo.other", "x").await;
    let dead3 = dead_job(&store, "demo.dead", "x").await;
    let r = post("/api/ops/dead/requeue").json(&json!({"kind": "demo.dead"})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["requeued"], 1, "only that kind's dead jobs");
    assert_eq!(store.get(dead3).await.unwrap().unwrap().state, JobState::Pending);
    assert_eq!(store.get(other).await.unwrap().unwrap().state, JobState::DeadLetter);
    let r = post("/api/ops/dead/requeue").json(&json!({"kind": "demo.dead", "extra": 1})).send().await.unwrap();
    assert_eq!(r.status(), 422, "unknown fields are refused");
    let r = post(&format!("/api/ops/jobs/{}/retry", uuid::Uuid::now_v7())).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let r = post("/api/ops/queues/ops-test/pause").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(store.paused_queues().await.unwrap(), vec!["ops-test".to_owned()]);
    let r = post("/api/ops/cron/nightly_rollup/pause").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(store.cron_pauses().await.unwrap().iter().any(|p| p.task == "nightly_rollup"));
    let o: Value = c.get(s.url("/api/ops/overview")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert!(o["paused_tasks"].to_string().contains("nightly_rollup"), "{o}");
    let r = post("/api/ops/queues/ops-test/resume").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["was_paused"], true);
    assert!(store.paused_queues().await.unwrap().is_empty());

    let r = c.get(s.url("/api/ops/activity?limit=3")).bearer_auth(&token).send().await.unwrap();
    assert!(r.headers().get("link").is_some(), "more than one page");
    let log: Value = r.json().await.unwrap();
    let actions: Vec<&str> = log.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["queue.resume", "task.pause", "queue.pause"], "newest first");
    let all: Value =
        c.get(s.url("/api/ops/activity?limit=500")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let all = all.as_array().unwrap();
    let names: Vec<&str> = all.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["queue.resume", "task.pause", "queue.pause", "dead.requeue", "job.cancel", "job.requeue", "job.retry"],
        "every action, and only the ones that happened (the 409 and 404 changed nothing)"
    );
    let retry = all.iter().find(|a| a["action"] == "job.retry").unwrap();
    assert_eq!(retry["target"], dead.to_string());
    assert_eq!(retry["operator_id"], op.to_string());
    assert_eq!(retry["remote_addr"], "127.0.0.1", "the connection's peer");
    assert_eq!(retry["detail"]["from"], "dead_letter");
}

async fn cookie_posts_need_the_csrf_proof_and_their_own_origin(t: TestDb) {
    operator(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let cookie = sign_in(&c, &s, OPERATOR).await;
    let me: Value = c.get(s.url("/api/ops/me")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["via"], "session");
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let pause = || c.post(s.url("/api/ops/queues/ops-test/pause")).header("cookie", &cookie);

    let r = pause().send().await.unwrap();
    assert_eq!(r.status(), 403, "a cookie alone is not enough");
    assert!(r.text().await.unwrap().contains("X-CSRF-Token"));
    assert_eq!(pause().header("x-csrf-token", "0".repeat(64)).send().await.unwrap().status(), 403);
    let r = pause().header("x-csrf-token", &csrf).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403, "a cross-site origin is refused even with the token");
    assert_eq!(pause().header("x-csrf-token", &csrf).header("origin", "null").send().await.unwrap().status(), 403);
    let own = format!("http://{}", s.addr);
    let r = pause().header("x-csrf-token", &csrf).header("origin", &own).send().await.unwrap();
    assert_eq!(r.status(), 200, "own origin and the token");
    let r = c
        .post(s.url("/api/ops/queues/ops-test/resume"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no Origin (a non-browser client) with the token");
    // A new session has a new token; the old one does not carry over.
    let cookie2 = sign_in(&c, &s, OPERATOR).await;
    let me2: Value = c.get(s.url("/api/ops/me")).header("cookie", &cookie2).send().await.unwrap().json().await.unwrap();
    assert_ne!(me2["csrf_token"], me["csrf_token"]);
}

async fn ops_shows_no_billing_data(t: TestDb) {
    let w = world(&t).await;
    let (_, token) = operator(&t).await;
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/api/admin/invoices"))
        .bearer_auth(&w.owner_token)
        .json(&invoice("Zanzibar Holdings"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The operator's token does not open the org's invoices (no membership: 403).
    let r = c.get(s.url("/api/admin/invoices")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let members: Value = c
        .get(s.url(&format!("/api/ops/orgs/{}/members", w.parent)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members["members"][0]["role"], "owner");
    assert!(!members.to_string().contains("owner@example.com"), "addresses masked: {members}");
    for path in [
        "/api/ops/overview",
        "/api/ops/queue/stats",
        "/api/ops/jobs",
        "/api/ops/cron",
        "/api/ops/cron/runs",
        "/api/ops/rate-limits",
        "/api/ops/orgs",
        "/api/ops/operators",
        "/api/ops/activity",
        "/api/ops/telemetry?days=1",
    ] {
        let r = c.get(s.url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        for secret in ["Zanzibar", "total_minor", "amount_minor", "invoice"] {
            assert!(!body.contains(secret), "{path} shows billing data ({secret}): {body}");
        }
    }
}

async fn the_operator_console_policy_limits_the_api(t: TestDb) {
    operator(&t).await;
    let s = start_with(t, &[("KEEL_RATE_LIMIT_OPERATOR_CONSOLE", "2/1m,burst=2")]).await;
    let c = reqwest::Client::new();
    // The signed cookie keys the limit by user from the first request (no database round trip).
    let cookie = sign_in(&c, &s, OPERATOR).await;
    for _ in 0..2 {
        assert_eq!(c.get(s.url("/api/ops/me")).header("cookie", &cookie).send().await.unwrap().status(), 200);
    }
    let r = c.get(s.url("/api/ops/overview")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 429, "operator_console applies to every /api/ops/* route");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

async fn route_percentiles_are_charted_per_day(t: TestDb) {
    let (_, token) = operator(&t).await;
    let now = chrono::Utc::now();
    let yesterday = now - chrono::Duration::days(1);
    let sample = |route: &str, ms: u64, at| {
        let route = keel_telemetry::RouteTemplate::parse(route).unwrap();
        keel_telemetry::RouteSample::server(route, "GET", 200, Duration::from_millis(ms), at)
    };
    let mut samples = vec![sample("/api/slow", 900, yesterday), sample("/api/slow", 800, yesterday)];
    samples.extend((0..3).map(|i| sample("/api/slow", 400 + i, now)));
    samples.push(sample("/api/fast", 5, now));
    keel_telemetry::insert_samples(&t.db, &samples).await.unwrap();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let r = c.get(s.url("/api/ops/telemetry/routes?days=2")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let slow = &v["routes"][0];
    assert_eq!(slow["route"], "/api/slow", "slowest first: {v}");
    let points = slow["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "one point per day: {v}");
    assert_eq!((points[0]["samples"].as_u64(), points[1]["samples"].as_u64()), (Some(2), Some(3)));
    assert_eq!(points[0]["p95_us"], 900_000);
    assert!(points[1]["p99_us"].is_null(), "too few samples for a p99");
    assert_eq!(v["routes"][1]["route"], "/api/fast");
    let r = c.get(s.url("/api/ops/telemetry/routes?days=40")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

async fn job_detail_hides_sealed_arguments(t: TestDb) {
    let (_, token) = operator(&t).await;
    let key = keel_queue::JobKey::parse(crate::TEST_JOB_KEY).unwrap();
    let ring = std::sync::Arc::new(keel_queue::Keyring::new(key, []).unwrap());
    let store = keel_queue::open_sealed(t.db.clone(), ring);
    let payload = json!({"to": "secret.person@example.com", "note": "<script>alert(1)</script>"});
    let job = NewJob::new("mail.x", &payload).unwrap().sealed_fields(&["to"]).queue("sealed-test");
    let id = store.enqueue(job).await.unwrap().id();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let body =
        c.get(s.url(&format!("/api/ops/jobs/{id}"))).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("[sealed]"), "{body}");
    assert!(!body.contains("secret.person"), "the sealed value is not shown: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sealed"], true);
    assert!(
        v["payload"].as_str().unwrap().contains("<script>"),
        "other fields are data, escaped by whoever renders them"
    );
}
