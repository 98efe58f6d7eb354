//! Built-in job kinds run by an in-process worker on both backends.

use keel_queue::{JobState, NewJob};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    campaign_batch_attempts_everyone_and_reconciles_once,
    email_send_writes_the_outbox_and_bad_payloads_dead_letter
);

fn ctx(t: &TestDb, outbox: &std::path::Path) -> keel_worker::WorkerContext {
    let src = keel_config::MapSource(
        [("KEEL_MAIL_OUTBOX_DIR", outbox.to_str().unwrap()), ("BACKGROUND_JOB_CRON_BATCH_SIZE", "10")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let config = keel_worker::WorkerConfig::load(&src).unwrap();
    keel_worker::WorkerContext { db: t.db.clone(), config, switches: keel_queue::SwitchBoard::default() }
}

async fn drain(worker: &keel_queue::Worker) {
    for _ in 0..20 {
        if let keel_queue::worker::Tick::Empty = worker.tick("default").await.unwrap() {
            break;
        }
    }
}

async fn campaign_batch_attempts_everyone_and_reconciles_once(t: TestDb) {
    let outbox = tempfile::tempdir().unwrap();
    let worker = keel_worker::build(&ctx(&t, outbox.path())).unwrap();
    let store = keel_queue::open(t.db.clone());
    let payload = serde_json::json!({"campaign": "spring", "subject": "Hi", "text": "Sale", "recipients": ["a@example.com", "not-an-email", "b@example.com"]});
    let job = store.enqueue(NewJob::new("campaign.batch", &payload).unwrap()).await.unwrap().id();
    drain(&worker).await;
    let done = store.get(job).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    let q = "SELECT recipients, sent, failed FROM keel_campaign_batches WHERE campaign = 'spring'";
    let row: (i64, i64, i64) = match &t.db {
        Db::Postgres(p) => {
            let r: (i32, i32, i32) = sqlx::query_as(q).fetch_one(p).await.unwrap();
            (r.0 as i64, r.1 as i64, r.2 as i64)
        }
        Db::Sqlite(p) => sqlx::query_as(q).fetch_one(p).await.unwrap(),
    };
    assert_eq!(row, (3, 2, 1), "every recipient attempted; one failure did not stop the others");
    let files = std::fs::read_dir(outbox.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "eml"))
        .count();
    assert_eq!(files, 2);
}

async fn email_send_writes_the_outbox_and_bad_payloads_dead_letter(t: TestDb) {
    let outbox = tempfile::tempdir().unwrap();
    let worker = keel_worker::build(&ctx(&t, outbox.path())).unwrap();
    let store = keel_queue::open(t.db.clone());
    let ok = store
        .enqueue(
            NewJob::new("email.send", &serde_json::json!({"to": "jane@example.com", "subject": "S", "text": "T"}))
                .unwrap(),
        )
        .await
        .unwrap()
        .id();
    let bad = store
        .enqueue(NewJob::new("email.send", &serde_json::json!({"to": "jane@example.com"})).unwrap())
        .await
        .unwrap()
        .id();
    let unknown = store.enqueue(NewJob::new("no.such.kind", &serde_json::json!({})).unwrap()).await.unwrap().id();
    drain(&worker).await;
    assert_eq!(store.get(ok).await.unwrap().unwrap().state, JobState::Completed);
    let bad = store.get(bad).await.unwrap().unwrap();
    assert_eq!(bad.state, JobState::DeadLetter, "a payload that cannot be decoded is never retried");
    assert!(!bad.last_error.unwrap_or_default().contains("jane@"), "addresses masked in stored errors");
    let unknown = store.get(unknown).await.unwrap().unwrap();
    assert_eq!(unknown.state, JobState::DeadLetter, "{unknown:?}");
    let text = std::fs::read_dir(outbox.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|t| t.contains("Subject: S"))
        .unwrap();
    assert!(text.contains("To: jane@example.com"));
}
