//! SLOs from `--slo-file` (TOML) and the flags, for `telemetry export` and `scale gate` alike:
//! the file sets the objectives, a flag overrides one percentile, and a bad file is a usage
//! error naming the file, the key and the fix, with nothing done.

use super::{ops, ops_async};
use chrono::{Duration as ChronoDuration, Utc};
use keel_telemetry::{insert_samples, RouteSample, RouteTemplate};
use keel_testkit::{backend_tests, TestDb};
use serde_json::Value;
use std::time::Duration;

backend_tests!(slo_file_sets_the_objectives_and_flags_override_it);

/// Enough samples of one route for its p99 to be judged, all at 500 ms: p95 = p99 = 500 ms.
async fn seed(t: &TestDb) {
    let route = RouteTemplate::parse("/api/clients/:id").unwrap();
    let at = Utc::now() - ChronoDuration::hours(1);
    let samples: Vec<RouteSample> = (0..keel_telemetry::report::MIN_P99_SAMPLES)
        .map(|_| RouteSample::server(route.clone(), "GET", 200, Duration::from_millis(500), at))
        .collect();
    insert_samples(&t.db, &samples).await.unwrap();
}

async fn export_json(t: &TestDb, extra: &[&str]) -> Value {
    let mut args = vec!["telemetry", "export", "--out", "-", "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = ops_async(&args, &[("DATABASE_URL", t.url.as_str())]).await;
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str::<Value>(&out).unwrap()["verdict"]["slo"].clone()
}

async fn slo_file_sets_the_objectives_and_flags_override_it(t: TestDb) {
    seed(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slo.toml");
    std::fs::write(&file, "# agreed with the owner\np95_ms = 800\np99_ms = 2000\n").unwrap();
    let file = file.to_str().unwrap();

    let v = export_json(&t, &["--slo-file", file]).await;
    assert_eq!(v["slo"], serde_json::json!({"p95_ms": 800, "p99_ms": 2000}), "{v}");
    assert_eq!(v["outcome"], "met", "{v}");

    // A flag replaces the file's value for its percentile only.
    let v = export_json(&t, &["--slo-file", file, "--slo-p95-ms", "400"]).await;
    assert_eq!(v["slo"], serde_json::json!({"p95_ms": 400, "p99_ms": 2000}), "{v}");
    assert_eq!(v["outcome"], "breached", "{v}");
    let breaches = v["breaches"].as_array().unwrap();
    assert_eq!(breaches.len(), 1, "{v}");
    assert_eq!(
        (breaches[0]["route"].as_str(), breaches[0]["percentile"].as_str()),
        (Some("/api/clients/:id"), Some("p95"))
    );
    let v = export_json(&t, &["--slo-file", file, "--slo-p99-ms", "300"]).await;
    assert_eq!(v["slo"], serde_json::json!({"p95_ms": 800, "p99_ms": 300}), "{v}");
    assert_eq!(v["breaches"][0]["percentile"], "p99", "{v}");

    // The gate reads the same inputs and reaches the same decisions.
    let env = [("DATABASE_URL", t.url.as_str())];
    let (code, out, err) = ops_async(&["scale", "gate", "--slo-file", file, "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let gate: Value = serde_json::from_str(&out).unwrap();
    assert!(
        gate["phase0"].as_str().unwrap().starts_with("Every route meets the SLOs (p95 ≤ 800 ms, p99 ≤ 2000 ms)"),
        "{gate}"
    );
    let (code, out, err) =
        ops_async(&["scale", "gate", "--slo-file", file, "--slo-p95-ms", "400", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let gate: Value = serde_json::from_str(&out).unwrap();
    assert!(gate["phase0"].as_str().unwrap().contains("breach the SLOs (p95 ≤ 400 ms, p99 ≤ 2000 ms)"), "{gate}");
}

#[test]
fn bad_slo_files_are_usage_errors_naming_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // Never created: a bad file stops the command before it touches the database.
    let db = dir.path().join("keel.db");
    let url = format!("sqlite://{}", db.display());
    let env = [("DATABASE_URL", url.as_str())];
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let typo = write("typo.toml", "p95_ms = 800\np95 = 500\n");
    let quoted = write("quoted.toml", "p99_ms = \"2000\"\n");
    let zero = write("zero.toml", "p95_ms = 0\n");
    let broken = write("broken.toml", "p95_ms = 800\np99_ms = = 2\n");
    let empty = write("empty.toml", "# nothing agreed yet\n");
    let missing = dir.path().join("missing.toml").to_str().unwrap().to_owned();
    let cases: [(&str, &[&str]); 6] = [
        (&typo, &["unknown key `p95`", "p95_ms and p99_ms"]),
        (&quoted, &["p99_ms must be a whole number of milliseconds", "unquoted", "p99_ms = 2000"]),
        (&zero, &["p95_ms", "at least 1"]),
        (&broken, &["not valid TOML (line 2)", "p95_ms = 800"]),
        (&empty, &["sets no objective", "p95_ms"]),
        (&missing, &["cannot read it"]),
    ];
    for (file, wants) in cases {
        for cmd in [&["telemetry", "export", "--out", "-"][..], &["scale", "gate"][..]] {
            let mut args = cmd.to_vec();
            args.extend(["--slo-file", file]);
            let (code, out, err) = ops(&args, &env);
            assert_eq!(code, 2, "{args:?} exits as a usage error: {out}{err}");
            assert!(out.is_empty(), "{args:?}: no report: {out}");
            assert!(err.contains(&format!("--slo-file {file}")), "{args:?}: the file is named: {err}");
            for w in wants {
                assert!(err.contains(w), "{args:?}: {w:?} missing from: {err}");
            }
        }
    }
    assert!(!db.exists(), "nothing was done");
    // The flags refuse what the file refuses.
    let (code, _, err) = ops(&["scale", "gate", "--slo-p99-ms", "0"], &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--slo-p99-ms"), "{err}");
    let (code, out, _) = ops(&["telemetry", "export", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("--slo-file") && out.contains("override"), "{out}");
}
