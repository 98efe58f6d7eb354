//! `auth.password_reset` on both backends: the worker resolves the account, mints the token
//! and mails the link; an unknown address gets nothing; the job never holds the address or
//! the link in clear, and is erased once done.

use keel_ids::Email;
use keel_queue::worker::Tick;
use keel_queue::{JobState, NewJob};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(a_known_address_gets_a_working_link_and_an_unknown_one_gets_nothing);

const KEY: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

async fn jobs_text(db: &Db) -> String {
    let q = "SELECT coalesce(dedupe_key, '') || payload || coalesce(last_error, '') \
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

/// The mail as a reader sees it: soft line breaks joined, `=XX` escapes decoded (lettre sends
/// a body with long lines, like the link, as quoted-printable).
pub(crate) fn quoted_printable_decoded(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex =
            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn a_known_address_gets_a_working_link_and_an_unknown_one_gets_nothing(t: TestDb) {
    let outbox = tempfile::tempdir().unwrap();
    let src = keel_config::MapSource(
        [
            ("KEEL_MAIL_OUTBOX_DIR", outbox.path().to_str().unwrap()),
            ("KEEL_PUBLIC_URL", "https://app.example.com/"),
            ("KEEL_PASSWORD_RESET_TTL", "30m"),
            ("KEEL_JOB_ENCRYPTION_KEY", KEY),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let config = keel_worker::WorkerConfig::load(&src).unwrap();
    let keyring = config.keyring.clone().unwrap();
    let ctx = keel_worker::WorkerContext { db: t.db.clone(), config, switches: keel_queue::SwitchBoard::default() };
    let tenancy = keel_tenancy::Tenancy::new(t.db.clone());
    let jane = Email::parse("jane@example.com").unwrap();
    tenancy.create_user(&jane, Some("the old password")).await.unwrap();
    let store = keel_worker::open_store(&ctx);
    let worker = keel_worker::build(&ctx).unwrap();

    let mut ids = Vec::new();
    for email in ["jane@example.com", "nobody@example.com"] {
        let email = Email::parse(email).unwrap();
        let key = keel_worker::PasswordResetRequest::dedupe_key(&keyring, &email);
        let job = NewJob::args(&keel_worker::PasswordResetRequest { email }).unwrap().dedupe_key(&key);
        ids.push(store.enqueue(job).await.unwrap().id());
    }
    let queued = jobs_text(&t.db).await;
    assert!(!queued.contains("example.com"), "no address in clear in a job: {queued}");
    while let Tick::Ran { .. } = worker.tick("default").await.unwrap() {}

    for id in &ids {
        let job = store.get(*id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Completed, "{job:?}");
    }
    let files: Vec<_> = std::fs::read_dir(outbox.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one mail, for the known address only: {files:?}");
    assert_eq!(files[0].file_name().unwrap().to_str().unwrap(), format!("{}.eml", ids[0]), "named by the job id");
    let mail = quoted_printable_decoded(&std::fs::read_to_string(&files[0]).unwrap());
    assert!(mail.contains("To: jane@example.com"), "{mail}");
    let token: String = mail
        .split("https://app.example.com/reset-password?token=")
        .nth(1)
        .expect("the link, on the public URL")
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(token.len(), 64, "{mail}");
    assert!(mail.contains("expires in 30 minutes"), "{mail}");
    let after = jobs_text(&t.db).await;
    assert!(!after.contains(&token) && !after.contains("example.com") && !after.contains("\"ct\""), "{after}");
    let reset = tenancy.complete_reset(&token, "a brand new password", chrono::Utc::now()).await.unwrap();
    assert!(reset.is_some(), "the mailed token resets the password");
}
