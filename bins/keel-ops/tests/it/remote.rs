//! `keel-ops --remote URL` against a real keel-api on port 0, on both backends: `queue stats`,
//! `queue list`, `queue show` and `cron runs` print exactly what local mode prints (`--json` and
//! the tables), retry and pause go through `/api/ops/*` and land in the database, and the
//! refusals say what to fix (a missing or unknown token names KEEL_TOKEN, a token without the
//! operator grant says so, an unreachable server is named). The token is never printed.

use crate::ops_async;
use keel_queue::{NewJob, Store};
use keel_testkit::{backend_tests, TestDb};
use serde_json::Value;
use std::sync::Arc;

backend_tests!(remote_mode_prints_what_local_mode_prints_and_acts_through_the_operator_api);

const OPERATOR: &str = "oncall@example.com";
const OWNER: &str = "owner@example.com";

/// A running keel-api on this database (no embedded worker: jobs stay where the test puts them).
struct Server {
    url: String,
    stop: keel_queue::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(t: &TestDb) -> Server {
    let vars = [("KEEL_JOB_ENCRYPTION_KEY", keel_testkit::TEST_JOB_ENCRYPTION_KEY), ("KEEL_EMBEDDED_WORKER", "false")];
    let src = keel_config::MapSource(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let config = keel_api::Config::load(&src).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = keel_queue::CancellationToken::new();
    let task = tokio::spawn(keel_api::serve(listener, keel_api::AppState::new(t.db.clone(), config), stop.clone()));
    Server { url, stop, task }
}

/// `keel-ops ARGS` on the database, and the same through the server.
async fn both(t: &TestDb, remote: &[(&str, &str)], args: &[&str]) -> ((i32, String, String), (i32, String, String)) {
    let local = ops_async(args, &[("DATABASE_URL", t.url.as_str())]).await;
    let over = ops_async(args, remote).await;
    (local, over)
}

async fn token(t: &TestDb, email: &str, operator: bool) -> String {
    let env = [("DATABASE_URL", t.url.as_str())];
    let mut args = vec!["token", "issue", "--user", email, "--json"];
    if operator {
        args.push("--operator");
    }
    let (code, out, err) = ops_async(&args, &env).await;
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str::<Value>(&out).unwrap()["token"].as_str().unwrap().to_owned()
}

async fn remote_mode_prints_what_local_mode_prints_and_acts_through_the_operator_api(t: TestDb) {
    let env = [("DATABASE_URL", t.url.as_str())];
    let (code, out, err) = ops_async(&["org", "create", "HQ", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let org = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();
    for (email, role) in [(OPERATOR, "viewer"), (OWNER, "owner")] {
        let create = ["user", "create", "--email", email, "--org", &org, "--role", role];
        assert_eq!(ops_async(&create, &env).await.0, 0);
    }
    assert_eq!(ops_async(&["operator", "grant", OPERATOR], &env).await.0, 0);
    let op_token = token(&t, OPERATOR, true).await;
    let owner_token = token(&t, OWNER, false).await;

    // Jobs in several states; the waiting ones are due later, so no age changes between calls.
    let store: Arc<dyn Store> = keel_queue::open(t.db.clone());
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut ids = Vec::new();
    for (kind, queue) in [("demo.sleep", "default"), ("demo.sleep", "mail"), ("report.build", "default")] {
        let job = NewJob::new(kind, &serde_json::json!({"ms": 5, "to": "jane@example.com"})).unwrap();
        ids.push(store.enqueue(job.queue(queue).run_at(later)).await.unwrap().id());
    }
    store.cancel(ids[2]).await.unwrap();
    store.pause_queue("reports".into(), Some("test".into())).await.unwrap();

    let server = serve(&t).await;
    let remote = [("KEEL_REMOTE_URL", server.url.as_str()), ("KEEL_TOKEN", op_token.as_str())];
    let mut printed = String::new();

    // The same documents and the same tables, through the flag or the variable.
    let stats_flag = ["--remote", server.url.as_str(), "queue", "stats", "--json"];
    let over = ops_async(&stats_flag, &[("KEEL_TOKEN", op_token.as_str())]).await;
    let cancelled = ids[2].to_string();
    for args in [
        &["queue", "stats", "--json"][..],
        &["queue", "stats"],
        &["queue", "list", "--state", "pending", "--json"],
        &["queue", "list", "--state", "pending"],
        &["queue", "list", "--state", "cancelled", "--kind", "report.build", "--json"],
        &["queue", "show", &cancelled],
        &["cron", "runs", "--json"],
        &["cron", "runs"],
    ] {
        let (local, remote_run) = both(&t, &remote, args).await;
        assert_eq!(local.0, 0, "{args:?}: {}{}", local.1, local.2);
        assert_eq!(remote_run, local, "keel-ops --remote … {args:?} prints what the local command prints");
        printed.push_str(&remote_run.1);
        printed.push_str(&remote_run.2);
    }
    let local_stats = ops_async(&["queue", "stats", "--json"], &env).await;
    assert_eq!(over, local_stats, "--remote works like KEEL_REMOTE_URL");
    let stats: Value = serde_json::from_str(&local_stats.1).unwrap();
    assert_eq!((stats["pending"].as_u64(), stats["cancelled"].as_u64()), (Some(2), Some(1)), "{stats}");
    assert!(!printed.contains("jane@example.com"), "addresses stay masked remotely: {printed}");

    // Actions go through the operator API and land in the database.
    let (code, out, err) = ops_async(&["queue", "retry", &cancelled], &remote).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&format!("job {cancelled} is pending (attempt 0/")), "{out}");
    printed.push_str(&out);
    assert_eq!(store.get(ids[2]).await.unwrap().unwrap().state, keel_queue::JobState::Pending);
    let first = ids[0].to_string();
    let (code, out, err) = ops_async(&["queue", "cancel", &first], &remote).await;
    assert_eq!((code, out.as_str()), (0, format!("job {first} is cancelled\n").as_str()), "{err}");
    assert_eq!(store.get(ids[0]).await.unwrap().unwrap().state, keel_queue::JobState::Cancelled);
    let (code, out, err) = ops_async(&["queue", "requeue-dead", "--kind", "demo.fail"], &remote).await;
    assert_eq!((code, out.as_str()), (0, "requeued 0 dead-lettered job(s)\n"), "{err}");
    let (code, out, err) = ops_async(&["queue", "pause", "mail"], &remote).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "queue mail paused; workers stop claiming from it on their next tick\n");
    assert!(store.paused_queues().await.unwrap().contains(&"mail".to_owned()));
    let (code, out, _) = ops_async(&["queue", "resume", "mail"], &remote).await;
    assert_eq!((code, out.as_str()), (0, "queue mail resumed\n"));
    let (_, out, _) = ops_async(&["queue", "resume", "mail"], &remote).await;
    assert_eq!(out, "queue mail was not paused\n");
    assert!(!store.paused_queues().await.unwrap().contains(&"mail".to_owned()));
    let (code, out, err) = ops_async(&["cron", "pause", "retention"], &remote).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = ops_async(&["cron", "resume", "retention"], &remote).await;
    assert_eq!((code, out.as_str()), (0, "retention resumed\n"));
    let (code, out, _) = ops_async(&["health", "--json"], &remote).await;
    assert_eq!(code, 0, "{out}");
    let health: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((health["http"]["status"].as_u64(), health["http"]["body"]["status"].as_str()), (Some(200), Some("ok")));
    let (code, local_health, _) = ops_async(&["health", "--url", server.url.as_str(), "--json"], &remote).await;
    assert_eq!(code, 0, "--url keeps asking that server's /api/health: {local_health}");

    // Each remote action is in the operator activity log, attributed to the operator.
    let activity: Value = reqwest::Client::new()
        .get(format!("{}/api/ops/activity", server.url))
        .bearer_auth(&op_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = activity.to_string();
    for action in ["job.retry", "queue.pause", "queue.resume", "task.pause", "task.resume"] {
        assert!(text.contains(action), "{action} recorded: {text}");
    }

    // Refusals name what to fix, and never echo the token.
    let (code, _, err) = ops_async(&["queue", "stats"], &[("KEEL_REMOTE_URL", server.url.as_str())]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("KEEL_TOKEN") && err.contains("--operator"), "{err}");
    let bogus = "keel_bogus_token_value_0123456789";
    let (code, _, err) =
        ops_async(&["queue", "stats"], &[("KEEL_REMOTE_URL", &server.url), ("KEEL_TOKEN", bogus)]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401") && err.contains("KEEL_TOKEN"), "{err}");
    assert!(!err.contains(bogus), "{err}");
    let (code, _, err) =
        ops_async(&["queue", "stats"], &[("KEEL_REMOTE_URL", &server.url), ("KEEL_TOKEN", &owner_token)]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("403") && err.contains("operator grant"), "an org owner is not an operator: {err}");
    printed.push_str(&err);
    let (code, _, err) = ops_async(&["queue", "prune", "--older-than", "7d"], &remote).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not available with --remote"), "{err}");
    let (code, _, err) = ops_async(&["--remote", "http://keel.example.com", "queue", "stats"], &remote).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("https://"), "no token in clear off loopback: {err}");

    server.stop.cancel();
    server.task.await.unwrap().unwrap();
    let gone = server.url.clone();
    let (code, _, err) = ops_async(&["queue", "stats"], &remote).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&gone) && err.contains("KEEL_REMOTE_URL"), "names the URL: {err}");
    printed.push_str(&err);
    assert!(!printed.contains(&op_token) && !printed.contains(&owner_token), "the token is never printed");
}
