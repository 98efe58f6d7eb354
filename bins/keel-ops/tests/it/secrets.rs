//! Secrets at rest, end to end on both backends: forgot-password through the real router, the
//! real worker mails the link (file outbox), the mailed token resets the password, and that
//! token is found nowhere else: not in `keel_jobs`, not in a `keel-ops backup export`, not in
//! `keel-ops queue show/list`, not in the logs. No address appears in clear in a job or in
//! this CLI's output either.

use crate::ops_async;
use keel_ids::Email;
use keel_testkit::{backend_tests, TestDb};

backend_tests!(a_reset_token_is_found_only_in_the_mail_and_no_address_in_clear);

const KEY: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KNOWN: &str = "jane.doe@example.com";
const UNKNOWN: &str = "ghost.user@example.com";

/// The mail as its reader sees it: quoted-printable soft breaks joined and escapes decoded.
fn decoded(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "");
    let b = joined.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
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

fn read_tree(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all.push_str(&read_tree(&p));
        } else {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    all
}

async fn a_reset_token_is_found_only_in_the_mail_and_no_address_in_clear(t: TestDb) {
    crate::logs::text();
    keel_tenancy::Tenancy::new(t.db.clone())
        .create_user(&Email::parse(KNOWN).unwrap(), Some("the old password, long enough"))
        .await
        .unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let vars = [
        ("KEEL_JOB_ENCRYPTION_KEY", KEY),
        ("KEEL_MAIL_OUTBOX_DIR", outbox.path().to_str().unwrap()),
        ("KEEL_PUBLIC_URL", "https://app.example.com"),
        ("KEEL_EMBEDDED_WORKER", "false"),
    ];
    let src = keel_config::MapSource(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let config = keel_api::Config::load(&src).unwrap();
    let ctx = keel_worker::WorkerContext {
        db: t.db.clone(),
        config: config.worker.clone(),
        switches: keel_queue::SwitchBoard::default(),
    };
    let worker = keel_worker::build(&ctx).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let stop = keel_queue::CancellationToken::new();
    let server = tokio::spawn(keel_api::serve(listener, keel_api::AppState::new(t.db.clone(), config), stop.clone()));
    let c = reqwest::Client::new();
    for email in [KNOWN, UNKNOWN] {
        let r = c.post(format!("{api}/api/auth/forgot-password")).json(&serde_json::json!({ "email": email }));
        assert_eq!(r.send().await.unwrap().status(), 202);
    }
    let env = [("DATABASE_URL", t.url.as_str())];
    let mut cli = String::new();

    // Waiting: both requests are queued, the address sealed; the CLI shows `[sealed]`.
    let (code, pending, err) = ops_async(&["queue", "list", "--state", "pending", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&pending).unwrap();
    assert_eq!(jobs.len(), 2, "{pending}");
    for j in &jobs {
        assert_eq!(j["kind"], "auth.password_reset");
        assert_eq!(j["payload"], r#"{"email":"[sealed]"}"#, "{pending}");
        let (code, shown, err) = ops_async(&["queue", "show", j["id"].as_str().unwrap()], &env).await;
        assert_eq!(code, 0, "{err}");
        assert!(shown.contains("[sealed]"), "{shown}");
        cli.push_str(&shown);
    }
    cli.push_str(&pending);

    // The worker resolves the known address and mails the link; the unknown one gets nothing.
    while let keel_queue::worker::Tick::Ran { .. } = worker.tick("default").await.unwrap() {}
    let mails: Vec<_> = std::fs::read_dir(outbox.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = decoded(&std::fs::read_to_string(&mails[0]).unwrap());
    assert!(mail.contains(&format!("To: {KNOWN}")), "{mail}");
    let token: String = mail
        .split("https://app.example.com/reset-password?token=")
        .nth(1)
        .expect("the link")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(token.len(), 64);
    let r = c
        .post(format!("{api}/api/auth/reset-password"))
        .json(&serde_json::json!({"token": token, "password": "a brand new password, really"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "the mailed token resets the password");

    // Done: the jobs, as the CLI shows them and as stored.
    let (code, done, err) = ops_async(&["queue", "list", "--state", "completed", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&done).unwrap().len(), 2, "{done}");
    cli.push_str(&done);
    let (_, table, _) = ops_async(&["queue", "list", "--state", "completed"], &env).await;
    cli.push_str(&table);
    let q = "SELECT id || kind || coalesce(dedupe_key, '') || payload || coalesce(last_error, '') \
             FROM (SELECT * FROM keel_jobs UNION ALL SELECT * FROM keel_jobs_completed) j";
    let stored = match &t.db {
        keel_storage::Db::Sqlite(p) => sqlx::query_scalar::<_, String>(q).fetch_all(p).await.unwrap(),
        keel_storage::Db::Postgres(p) => sqlx::query_scalar::<_, String>(
            &q.replace("id ||", "id::text ||").replace("|| payload ||", "|| payload::text ||"),
        )
        .fetch_all(p)
        .await
        .unwrap(),
    }
    .join("\n");
    assert!(!stored.contains("\"ct\""), "sealed values erased on completion: {stored}");

    // A backup of the whole database.
    let backup = tempfile::tempdir().unwrap();
    let out = backup.path().join("b");
    let (code, exported, err) = ops_async(&["backup", "export", "--out", out.to_str().unwrap()], &env).await;
    assert_eq!(code, 0, "{exported}{err}");
    let dump = read_tree(&out);
    assert!(dump.contains("keel_jobs") || std::fs::read_dir(&out).unwrap().count() > 2, "a real backup");
    let jobs_file =
        read_tree(&out).lines().filter(|l| l.contains("auth.password_reset")).collect::<Vec<_>>().join("\n");
    assert_eq!(jobs_file.lines().count(), 2, "both jobs are in the backup");

    stop.cancel();
    server.await.unwrap().unwrap();
    let logs = crate::logs::text();
    for (what, text) in [("keel_jobs", &stored), ("the backup", &dump), ("keel-ops output", &cli), ("the logs", &logs)]
    {
        assert!(!text.contains(&token), "the reset token is in {what}");
    }
    for (what, text) in
        [("keel_jobs", &stored), ("backed-up jobs", &jobs_file), ("keel-ops output", &cli), ("the logs", &logs)]
    {
        for address in [KNOWN, UNKNOWN] {
            assert!(!text.contains(address), "{address} in clear in {what}");
        }
    }
}
