//! Built-in job kinds run by an in-process worker on both backends.

use keel_queue::{JobState, NewJob};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    campaign_batch_attempts_everyone_and_reconciles_once,
    email_send_writes_the_outbox_and_bad_payloads_dead_letter,
    webhooks_to_private_networks_dead_letter_unless_allowed
);

fn ctx(t: &TestDb, outbox: &std::path::Path) -> keel_worker::WorkerContext {
    ctx_with(t, outbox, &[])
}

fn ctx_with(t: &TestDb, outbox: &std::path::Path, extra: &[(&str, &str)]) -> keel_worker::WorkerContext {
    let src = keel_config::MapSource(
        [("KEEL_MAIL_OUTBOX_DIR", outbox.to_str().unwrap()), ("BACKGROUND_JOB_CRON_BATCH_SIZE", "10")]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let config = keel_worker::WorkerConfig::load(&src).unwrap();
    keel_worker::WorkerContext { db: t.db.clone(), config, switches: keel_queue::SwitchBoard::default() }
}

async fn drain(worker: &keel_queue::Worker) {
    drain_queue(worker, "default").await
}

async fn drain_queue(worker: &keel_queue::Worker, queue: &str) {
    for _ in 0..20 {
        if let keel_queue::worker::Tick::Empty = worker.tick(queue).await.unwrap() {
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
    // One file, named by the job id, whose Message-ID is derived from it: a redelivery
    // after a crash replaces the file, and a receiver can drop the duplicate.
    let names: Vec<String> =
        std::fs::read_dir(outbox.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, [format!("{ok}.eml")]);
    let text = std::fs::read_to_string(outbox.path().join(format!("{ok}.eml"))).unwrap();
    assert!(text.contains("To: jane@example.com\r\n"), "{text}");
    assert!(text.contains(&format!("Message-ID: <{ok}@localhost>\r\n")), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
}

/// Accepts one HTTP request on 127.0.0.1, answers 204, and returns the request's head.
async fn one_request_endpoint() -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n{}") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "client left early");
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        String::from_utf8_lossy(&got).split("\r\n\r\n").next().unwrap().to_owned()
    });
    (url, task)
}

async fn webhooks_to_private_networks_dead_letter_unless_allowed(t: TestDb) {
    let outbox = tempfile::tempdir().unwrap();
    let store = keel_queue::open(t.db.clone());
    let secret = ("KEEL_WEBHOOK_SECRET", "whsec-test");
    let (url, endpoint) = one_request_endpoint().await;
    let job = |url: &str| NewJob::new("webhook.deliver", &serde_json::json!({"url": url, "body": {}})).unwrap();

    // The default: loopback is refused, at once and for good (no retry), and nothing is sent.
    let strict = keel_worker::build(&ctx_with(&t, outbox.path(), &[secret])).unwrap();
    let refused = store.enqueue(job(&url).queue("webhooks")).await.unwrap().id();
    drain_queue(&strict, "webhooks").await;
    let refused = store.get(refused).await.unwrap().unwrap();
    assert_eq!(refused.state, JobState::DeadLetter, "{refused:?}");
    assert_eq!(refused.attempt, 1, "never retried");
    let error = refused.last_error.unwrap_or_default();
    assert!(error.contains("loopback") && error.contains("KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS"), "{error}");

    // Allowed by the setting: delivered, with the job id as Keel-Delivery-Id.
    let allowing = [secret, ("KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS", "127.0.0.1/32")];
    let allowed = keel_worker::build(&ctx_with(&t, outbox.path(), &allowing)).unwrap();
    let delivered = store.enqueue(job(&url).queue("webhooks")).await.unwrap().id();
    drain_queue(&allowed, "webhooks").await;
    assert_eq!(store.get(delivered).await.unwrap().unwrap().state, JobState::Completed);
    let head = endpoint.await.unwrap();
    let id = head.lines().find_map(|l| l.strip_prefix("keel-delivery-id: ")).unwrap_or_else(|| panic!("{head}"));
    assert_eq!(id, delivered.to_string());
}
