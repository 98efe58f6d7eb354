//! Each adoption step, on SQLite and PostgreSQL: every test starts from an empty database and
//! lets the service install its own schema and Keel's.

use crate::support::{count, eventually, sqlx_migrations, start, ROOMY};
use keel_queue::{JobFilter, JobState};
use keel_testkit::TestDb;
use serde_json::{json, Value};

keel_testkit::backend_tests!(schemas: &[];
    rate_limit_answers_429_after_the_quota,
    readiness_is_200_then_503_once_the_database_is_closed,
    the_note_list_is_served_from_cache_until_a_write,
    a_rolled_back_note_enqueues_nothing_and_a_committed_one_is_processed,
    metrics_are_served_on_their_own_listener_only,
    sqlx_migrations_hold_only_the_hosts_own_beside_keels_tables,
    bad_notes_are_refused_naming_the_field,
);

/// Step 1: the fourth request of a 3-request quota is refused, as a problem with Retry-After;
/// `/ready` is outside the limiter.
async fn rate_limit_answers_429_after_the_quota(t: TestDb) {
    let s = start(&t, "3/1m,burst=3").await;
    for i in 0..3 {
        let res = s.get("/notes").await;
        assert_eq!(res.status(), 200, "request {i} is within the quota");
        assert!(res.headers().contains_key("ratelimit"), "the layer reports the quota: {:?}", res.headers());
    }
    let refused = s.get("/notes").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    // Writes count against the same allowance.
    assert_eq!(s.post_note(json!({"body": "over the quota"})).await.status(), 429);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM host_notes").await, 0, "a refused write never ran");
    assert_eq!(s.get("/ready").await.status(), 200, "probes are never rate limited");
    s.stop().await;
}

/// Step 2: `/ready` runs the database check: 200 while it answers, 503 once the pool is closed.
async fn readiness_is_200_then_503_once_the_database_is_closed(t: TestDb) {
    let s = start(&t, ROOMY).await;
    let ok = s.get("/ready").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let report: Value = ok.json().await.unwrap();
    assert_eq!((report["status"].as_str(), report["services"]["database"].as_str()), (Some("ok"), Some("ok")));

    s.db.close().await;
    let down = s.get("/ready").await;
    assert_eq!(down.status(), 503);
    let report: Value = down.json().await.unwrap();
    assert_eq!((report["status"].as_str(), report["services"]["database"].as_str()), (Some("degraded"), Some("error")));
    s.stop().await;
}

/// Step 3: the second read is a hit; a write invalidates it; the worker's write (processing the
/// note) invalidates it too, so the list shows `processed` long before the TTL.
async fn the_note_list_is_served_from_cache_until_a_write(t: TestDb) {
    let s = start(&t, ROOMY).await;
    let first = s.get("/notes").await;
    assert_eq!(first.headers()["x-cache"], "miss");
    assert_eq!(first.json::<Value>().await.unwrap(), json!([]));
    let second = s.get("/notes").await;
    assert_eq!(second.headers()["x-cache"], "hit");

    assert_eq!(s.post_note(json!({"body": "hello"})).await.status(), 201);
    let after = s.get("/notes").await;
    assert_eq!(after.headers()["x-cache"], "miss", "the write invalidated the cached list");
    let list: Value = after.json().await.unwrap();
    assert_eq!(list[0]["body"], "hello");

    // Without the worker's invalidation this would keep answering `processed: false` until the
    // entry expired (minutes).
    eventually("the cached list shows the note processed", || async {
        let list: Value = s.get("/notes").await.json().await.unwrap();
        (list[0]["processed"] == true).then_some(())
    })
    .await;
    s.stop().await;
}

/// Step 4: a note and its job commit or roll back together; the in-process worker runs the
/// committed note's job.
async fn a_rolled_back_note_enqueues_nothing_and_a_committed_one_is_processed(t: TestDb) {
    let s = start(&t, ROOMY).await;
    let notes = host_axum::notes::Notes::new(&s.db);
    let mut tx = notes.begin().await.unwrap();
    tx.add("rolled back").await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = notes.begin().await.unwrap();
    tx.add("dropped").await.unwrap();
    drop(tx);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM host_notes").await, 0);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM keel_jobs").await, 0, "no job outlives its rolled-back note");

    let created: Value = s.post_note(json!({"body": "committed"})).await.json().await.unwrap();
    assert_eq!(created["processed"], false);
    let id = created["id"].as_i64().unwrap();
    let processed = format!("SELECT COUNT(*) FROM host_notes WHERE id = {id} AND processed_at IS NOT NULL");
    eventually("the worker marks the note processed", || async { (count(&s.db, &processed).await == 1).then_some(()) })
        .await;
    let store = keel_queue::open(s.db.clone());
    let jobs = eventually("the job is recorded completed", || async {
        let jobs = store.list(JobFilter::default()).await.unwrap();
        jobs.iter().all(|j| j.state == JobState::Completed).then_some(jobs)
    })
    .await;
    assert_eq!(jobs.len(), 1, "exactly the committed note's job: {jobs:?}");
    assert_eq!(jobs[0].kind, "note.process");
    assert_eq!(serde_json::from_str::<Value>(&jobs[0].payload).unwrap(), json!({"note_id": id}));
    s.stop().await;
}

/// Step 5: the timing histogram (and the cache's counters) on the metrics listener, under route
/// templates; the public port answers `/metrics` 404; samples reach the database by shutdown.
async fn metrics_are_served_on_their_own_listener_only(t: TestDb) {
    let s = start(&t, ROOMY).await;
    s.get("/notes").await;
    s.get("/notes").await;
    s.get("/ready").await;

    let res = s.http.get(format!("http://{}/metrics", s.metrics)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let notes_count = text
        .lines()
        .find(|l| {
            l.starts_with("http_server_request_duration_seconds_count")
                && l.contains("route=\"/notes\"")
                && l.contains("method=\"GET\"")
        })
        .unwrap_or_else(|| panic!("no /notes series in:\n{text}"));
    assert!(notes_count.ends_with(" 2"), "{notes_count}");
    assert!(text.contains("route=\"/ready\""), "{text}");
    assert!(text.contains("keel_orgcache_hits_total{bucket=\"notes\"} 1"), "{text}");

    let public = s.get("/metrics").await;
    assert_eq!(public.status(), 404, "metrics never on the public port");
    assert_eq!(public.headers()["content-type"], "application/problem+json");
    let other = s.http.get(format!("http://{}/notes", s.metrics)).send().await.unwrap();
    assert_eq!(other.status(), 404, "the metrics listener serves nothing else");

    let db = s.db.clone();
    s.stop().await;
    let stored = count(&db, "SELECT COUNT(*) FROM route_performance_events WHERE route = '/notes'").await;
    assert_eq!(stored, 2, "the writer flushed every /notes sample on shutdown");
}

/// The host's `_sqlx_migrations` holds exactly its own migration; Keel's components record theirs
/// in their own tables beside it, and a second start changes nothing.
async fn sqlx_migrations_hold_only_the_hosts_own_beside_keels_tables(t: TestDb) {
    let s = start(&t, ROOMY).await;
    assert_eq!(sqlx_migrations(&s.db).await, vec![(1, "host notes".to_owned())]);
    assert!(count(&s.db, "SELECT COUNT(*) FROM keel_queue_migrations").await >= 1);
    assert!(count(&s.db, "SELECT COUNT(*) FROM keel_telemetry_migrations").await >= 1);
    for table in ["host_notes", "keel_jobs", "keel_cron_runs", "route_performance_events"] {
        count(&s.db, &format!("SELECT COUNT(*) FROM {table}")).await;
    }
    let queue_versions = count(&s.db, "SELECT COUNT(*) FROM keel_queue_migrations").await;
    host_axum::migrate(&s.db).await.expect("migrating again is a no-op");
    assert_eq!(sqlx_migrations(&s.db).await, vec![(1, "host notes".to_owned())]);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM keel_queue_migrations").await, queue_versions);
    s.stop().await;
}

/// Bad input is a problem naming the field, and writes nothing.
async fn bad_notes_are_refused_naming_the_field(t: TestDb) {
    let s = start(&t, ROOMY).await;
    let too_long = "x".repeat(host_axum::routes::MAX_NOTE_CHARS + 1);
    for (input, message) in [
        (json!({"body": "   "}), "must not be empty"),
        (json!({"body": too_long}), "must be at most 1000 characters, got 1001"),
        (json!({}), "is required"),
    ] {
        let res = s.post_note(input).await;
        assert_eq!(res.status(), 422);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
        let got = problem["errors"][0]["message"].as_str().unwrap();
        assert!(got.contains(message), "{got}");
        assert!(problem["detail"].as_str().unwrap().starts_with("body: "), "{problem}");
    }
    let wrong_type = s.post_note(json!({"body": 5})).await;
    assert_eq!(wrong_type.status(), 422);
    let problem: Value = wrong_type.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("body"), "{problem}");
    let malformed = s
        .http
        .post(s.url("/notes"))
        .header("content-type", "application/json")
        .body("{\"body\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.headers()["content-type"], "application/problem+json");
    let not_json = s.http.post(s.url("/notes")).body("{\"body\": \"x\"}").send().await.unwrap();
    assert_eq!(not_json.status(), 415, "a body without Content-Type: application/json");
    assert_eq!(not_json.headers()["content-type"], "application/problem+json");
    let exactly_max = "y".repeat(host_axum::routes::MAX_NOTE_CHARS);
    assert_eq!(s.post_note(json!({"body": exactly_max})).await.status(), 201, "the limit itself is accepted");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM host_notes").await, 1);
    s.stop().await;
}
