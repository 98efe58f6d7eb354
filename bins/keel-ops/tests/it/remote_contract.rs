//! The JSON contract between local and remote modes: `/api/ops/queue/stats`, `/api/ops/jobs`,
//! `/api/ops/jobs/{id}` and `/api/ops/cron/runs` answer exactly the documents `keel-ops queue
//! stats --json`, `queue list --json`, `queue show` and `cron runs --json` print for the same
//! database (both build them with `keel_queue::ops_json`), so a remote keel-ops can print the
//! API's answer unchanged.

use crate::ops_async;
use keel_ids::Email;
use keel_queue::NewJob;
use keel_testkit::{backend_tests, TestDb};
use serde_json::{json, Value};

backend_tests!(the_operator_api_serves_the_documents_keel_ops_prints);

async fn the_operator_api_serves_the_documents_keel_ops_prints(t: TestDb) {
    let tn = keel_tenancy::Tenancy::new(t.db.clone());
    let op = tn.create_user(&Email::parse("oncall@example.com").unwrap(), None).await.unwrap();
    tn.grant_operator(op, None, chrono::Utc::now()).await.unwrap();
    let token = tn.issue_operator_token(op).await.unwrap().token;
    let store = keel_queue::open(t.db.clone());
    // Due in an hour: waiting but not yet due, so `oldest_pending_age_s` is 0 in both reads.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut ids = Vec::new();
    for i in 0..3 {
        let job = NewJob::new("demo.remote", &json!({"i": i, "to": "ann@example.com"})).unwrap().run_at(later);
        ids.push(store.enqueue(job).await.unwrap().id());
    }
    store.pause_queue("reports".into(), Some("test".into())).await.unwrap();

    let config = keel_api::Config::load(&keel_config::MapSource::new([(
        "KEEL_JOB_ENCRYPTION_KEY",
        keel_testkit::TEST_JOB_ENCRYPTION_KEY,
    )]))
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = keel_queue::CancellationToken::new();
    let server = tokio::spawn(keel_api::serve(listener, keel_api::AppState::new(t.db.clone(), config), stop.clone()));
    let c = reqwest::Client::new();
    let remote = |path: String| {
        let req = c.get(format!("http://{addr}{path}")).bearer_auth(&token);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let env = [("DATABASE_URL", t.url.as_str())];
    let local = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = ops_async(&args, &env).await;
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let stats = local(a(&["queue", "stats", "--json"])).await;
    assert_eq!(stats["pending"], 3);
    assert_eq!(stats["paused_queues"], json!(["reports"]));
    assert_eq!(remote("/api/ops/queue/stats".into()).await, stats);
    let list =
        local(a(&["queue", "list", "--state", "pending", "--kind", "demo.remote", "--limit", "2", "--json"])).await;
    assert_eq!(remote("/api/ops/jobs?state=pending&kind=demo.remote&limit=2".into()).await, list);
    assert!(!list.to_string().contains("ann@example.com"), "addresses masked in both: {list}");
    let show = local(a(&["queue", "show", &ids[0].to_string()])).await;
    assert_eq!(remote(format!("/api/ops/jobs/{}", ids[0])).await, show);
    let runs = local(a(&["cron", "runs", "--json"])).await;
    assert_eq!(remote("/api/ops/cron/runs".into()).await, runs);
    stop.cancel();
    server.await.unwrap().unwrap();
}
