//! The real keel-api binary: startup validation, SIGTERM, degraded boot.

use keel_testkit::Proc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keel-api");

#[test]
fn bad_configuration_exits_fast_naming_every_variable() {
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .env("KEEL_BIND", "not-an-address")
        .env("DATABASE_URL", "mysql://root:hunter2@db/x")
        .env("KEEL_ENV", "production")
        .env("KEEL_EMBEDDED_WORKER", "perhaps")
        .env_remove("INTERNAL_API_SECRET")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in ["KEEL_BIND", "DATABASE_URL", "INTERNAL_API_SECRET", "KEEL_EMBEDDED_WORKER"] {
        assert!(err.contains(var), "{var} missing from:\n{err}");
    }
    assert!(!err.contains("hunter2"), "secret leaked:\n{err}");
}

/// The binary's allocator is jemalloc and owns the process's `malloc`, so the bundled SQLite
/// allocates through it too (issue #19): only an unprefixed jemalloc reads `MALLOC_CONF`.
#[cfg(not(target_env = "msvc"))]
#[test]
fn allocates_with_jemalloc_sqlite_included() {
    let out = std::process::Command::new(BIN)
        .env("DATABASE_URL", "mysql://root@db/x")
        .env("MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Begin jemalloc statistics"), "{err}");
}

#[test]
fn serves_on_sqlite_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/data/keel.db", dir.path().display());
    let mut p = Proc::start(
        BIN,
        &[],
        &[("KEEL_BIND", "127.0.0.1:0"), ("KEEL_METRICS_BIND", "127.0.0.1:0"), ("DATABASE_URL", &db)],
    );
    let addr = p.wait_listening();
    let body = reqwest::blocking_get(&format!("http://{addr}/api/health"));
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // Metrics on their own listener (KEEL_METRICS_BIND), not on the public port.
    let is_metrics = |v: &serde_json::Value| v["message"] == "metrics listening";
    let seen = p.seen.iter().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(is_metrics);
    let line = seen.unwrap_or_else(|| p.wait_for(Duration::from_secs(30), is_metrics));
    let metrics_addr = line["addr"].as_str().unwrap().to_owned();
    assert_ne!(metrics_addr, addr.to_string());
    let (status, text) = reqwest::blocking_get_status(&format!("http://{metrics_addr}/metrics"));
    assert_eq!(status, 200);
    assert!(text.contains("http_server_request_duration_seconds"), "{text}");
    let (status, _) = reqwest::blocking_get_status(&format!("http://{addr}/metrics"));
    assert_eq!(status, 404);
    assert!(dir.path().join("data/keel.db").exists(), "database file created on first start");
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit {status:?}; logs:\n{}", p.seen.join("\n"));
    assert!(p.seen.iter().any(|l| l.contains("shutdown complete")), "{}", p.seen.join("\n"));
    // The access log carried the route template, status and latency.
    let access = p.seen.iter().find(|l| l.contains("\"route\":\"/api/health\"")).expect("access log line");
    let v: serde_json::Value = serde_json::from_str(access).unwrap();
    assert_eq!(v["status"], 200);
    assert!(v["latency_ms"].is_number());
}

#[test]
fn unreachable_database_at_startup_is_one_clear_error() {
    let out = std::process::Command::new(BIN)
        .env("KEEL_BIND", "127.0.0.1:0")
        .env("KEEL_METRICS_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", "postgres://keel:pw-not-shown@127.0.0.1:1/keel")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the database") && err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("pw-not-shown"), "{err}");
}

#[test]
fn boots_degraded_without_auto_migrate_when_database_is_down() {
    let mut p = Proc::start(
        BIN,
        &[],
        &[
            ("KEEL_BIND", "127.0.0.1:0"),
            ("KEEL_METRICS_BIND", "127.0.0.1:0"),
            ("DATABASE_URL", "postgres://keel@127.0.0.1:1/keel"),
            ("KEEL_AUTO_MIGRATE", "false"),
        ],
    );
    let addr = p.wait_listening();
    let (status, body) = reqwest::blocking_get_status(&format!("http://{addr}/api/health"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"status\":\"degraded\""), "{body}");
}

/// Tiny blocking HTTP helpers so process tests need no runtime.
mod reqwest {
    pub(super) fn blocking_get(url: &str) -> String {
        blocking_get_status(url).1
    }
    pub(super) fn blocking_get_status(url: &str) -> (u16, String) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = ::reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }
}

/// Two real keel-api processes sharing one Postgres admit at most the `public_ingress` limit
/// for one client in total: the shared limiter counts in the database, not per process.
#[test]
fn two_processes_share_the_public_ingress_limit() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let Some(t) = rt.block_on(keel_testkit::TestDb::postgres(
        "process::two_processes_share_the_public_ingress_limit",
        crate::SCHEMAS,
    )) else {
        return;
    };
    let env = [
        ("KEEL_BIND", "127.0.0.1:0"),
        ("KEEL_METRICS_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_AUTO_MIGRATE", "false"),
        ("KEEL_RATE_LIMIT_PUBLIC_INGRESS", "10/1h,burst=10"),
    ];
    let mut a = Proc::start(BIN, &[], &env);
    let mut b = Proc::start(BIN, &[], &env);
    let (addr_a, addr_b) = (a.wait_listening(), b.wait_listening());
    let statuses: Vec<u16> = rt.block_on(async {
        let c = ::reqwest::Client::new();
        let mut out = Vec::new();
        for i in 0..30 {
            let addr = if i % 2 == 0 { addr_a } else { addr_b };
            let r = c
                .post(format!("http://{addr}/api/auth/sign-in"))
                .json(&serde_json::json!({"email": "nobody@example.com", "password": "wrong password"}))
                .send()
                .await
                .unwrap();
            out.push(r.status().as_u16());
        }
        out
    });
    let admitted = statuses.iter().filter(|s| **s != 429).count();
    assert_eq!(admitted, 10, "exactly the limit across both processes: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    drop((a, b));
    drop(t);
}

/// Two real keel-api processes on one Postgres: a write in one invalidates the other's cached
/// dashboard through LISTEN/NOTIFY, so the other stops serving the stale total within a bound.
#[test]
fn dashboard_cache_is_coherent_across_two_processes() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let Some(t) = rt.block_on(keel_testkit::TestDb::postgres(
        "process::dashboard_cache_is_coherent_across_two_processes",
        crate::SCHEMAS,
    )) else {
        return;
    };
    let w = rt.block_on(crate::fixture::world(&t));
    let env = [
        ("KEEL_BIND", "127.0.0.1:0"),
        ("KEEL_METRICS_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_AUTO_MIGRATE", "false"),
        ("KEEL_EMBEDDED_WORKER", "false"),
    ];
    let mut a = Proc::start(BIN, &[], &env);
    let mut b = Proc::start(BIN, &[], &env);
    let (addr_a, addr_b) = (a.wait_listening(), b.wait_listening());
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    rt.block_on(async {
        let c = ::reqwest::Client::new();
        let dash = |addr: std::net::SocketAddr| {
            let (c, tok, m) = (c.clone(), w.owner_token.clone(), month.clone());
            async move {
                c.get(format!("http://{addr}/api/admin/dashboard?month={m}"))
                    .bearer_auth(tok)
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(dash(addr_b).await["invoices"]["count"], 0);
        let cached = dash(addr_b).await;
        assert_eq!(cached["cached"], true, "B serves its cached dashboard");
        let r = c
            .post(format!("http://{addr_a}/api/admin/invoices"))
            .bearer_auth(&w.owner_token)
            .json(&crate::fixture::invoice("Cross-process"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // The notification travels A → Postgres → B; B must drop its copy within the bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let v = dash(addr_b).await;
            if v["invoices"]["count"] == 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "B still serves the stale dashboard after 5 s: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    drop((a, b));
    drop(t);
}

/// Password recovery never logs the whole address: the real binary's JSON logs, across the
/// queued, unknown-address and over-the-limit paths and the worker's send, carry only the
/// masked form (`o***@example.com`).
#[test]
fn forgot_password_logs_only_masked_addresses() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let t = rt.block_on(keel_testkit::TestDb::sqlite(crate::SCHEMAS));
    rt.block_on(crate::fixture::world(&t));
    let outbox = t.dir().unwrap().join("outbox");
    let outbox = outbox.to_str().unwrap();
    let env = [
        ("KEEL_BIND", "127.0.0.1:0"),
        ("KEEL_METRICS_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", t.url.as_str()),
        ("KEEL_EMBEDDED_WORKER", "true"),
        ("KEEL_MAIL_OUTBOX_DIR", outbox),
        ("KEEL_RATE_LIMIT_PASSWORD_RECOVERY", "1/1h,burst=1"),
    ];
    let mut p = Proc::start(BIN, &[], &env);
    let addr = p.wait_listening();
    let statuses: Vec<u16> = rt.block_on(async {
        let c = ::reqwest::Client::new();
        let mut out = Vec::new();
        // Queued (the address as typed, in mixed case), over the limit, unknown.
        for email in ["Owner@Example.com", "owner@example.com", "nobody@example.com"] {
            let r = c
                .post(format!("http://{addr}/api/auth/forgot-password"))
                .json(&serde_json::json!({"email": email}))
                .send()
                .await
                .unwrap();
            out.push(r.status().as_u16());
        }
        out
    });
    assert_eq!(statuses, [202, 202, 202]);
    // The worker's send races the later requests, so each line is looked for among those
    // already read before waiting for more.
    for (key, value) in [
        ("message", "password recovery queued"),
        ("message", "password recovery over its limit; nothing queued"),
        ("event", "password_reset_sent"),
        ("event", "password_reset_unknown"),
    ] {
        let matches = |v: &serde_json::Value| v[key] == value;
        let seen = p.seen.iter().any(|l| serde_json::from_str(l).is_ok_and(|v| matches(&v)));
        if !seen {
            p.wait_for(Duration::from_secs(30), matches);
        }
    }
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit {status:?}; logs:\n{}", p.seen.join("\n"));
    let logs = p.seen.join("\n");
    for whole in ["owner@example.com", "nobody@example.com"] {
        assert!(!logs.to_ascii_lowercase().contains(whole), "{whole} logged in full:\n{logs}");
    }
    let recovery: Vec<&String> = p.seen.iter().filter(|l| l.contains("password recovery")).collect();
    assert_eq!(recovery.len(), 3, "{logs}");
    for line in &recovery[..2] {
        assert!(line.contains("o***@example.com"), "the masked address is logged: {line}");
    }
    assert!(recovery[2].contains("n***@example.com"), "{}", recovery[2]);
    assert!(logs.contains("o***@example.com") && logs.contains("\"password_reset_sent\""), "{logs}");
    assert!(!logs.contains("token="), "the link is never logged:\n{logs}");
    let sent = std::fs::read_dir(outbox)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "eml"));
    assert_eq!(sent.count(), 1, "one mail: the known address's; the unknown one gets none");
    drop(t);
}

/// Production with no job encryption key refuses to start (exit 2), naming the variable and
/// nothing else: every other production setting here is valid.
#[test]
fn production_without_a_job_encryption_key_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("KEEL_ENV", "production")
        .env("INTERNAL_API_SECRET", "s".repeat(40))
        .env("KEEL_BIND", "127.0.0.1:0")
        .env("KEEL_METRICS_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}/keel.db", dir.path().display()))
        .env_remove("KEEL_JOB_ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 problem(s)") && err.contains("KEEL_JOB_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("KEEL_ENV=production"), "{err}");
    assert!(!dir.path().join("data").exists(), "no development key file in production");
    // A malformed key is refused by name too, without echoing it.
    let out = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("KEEL_JOB_ENCRYPTION_KEY", "k1:c2hvcnQtYnV0LXNlY3JldA==")
        .env("KEEL_JOB_DECRYPTION_KEYS", "k0:AAAA,oops")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEEL_JOB_ENCRYPTION_KEY") && err.contains("KEEL_JOB_DECRYPTION_KEYS"), "{err}");
    assert!(!err.contains("c2hvcnQtYnV0LXNlY3JldA") && !err.contains("AAAA"), "key material echoed: {err}");
}
