//! Remote mode: with `--remote URL` (or `KEEL_REMOTE_URL`) and an operator token in
//! `KEEL_TOKEN`, `queue …`, `cron …` and `health` go through a running keel-api's operator API
//! (`/api/ops/*`) instead of the database, so an operator's machine needs no database
//! credentials. Each endpoint answers exactly the JSON document the local `--json` prints
//! (keel-queue's `ops_json`), so `--json` output is the same in both modes, and the tables for
//! people are drawn from that document the way the local commands draw theirs.

mod client;

pub(crate) use client::{Remote, TOKEN_VAR};

use crate::cmd::health::HealthArgs;
use crate::cmd::queue::{CronCommand, QueueCommand};
use crate::exit;
use crate::output::{print_json, OpsError};
use crate::table;
use keel_config::Source;
use serde_json::{json, Value};

/// The variable naming the keel-api of remote mode (`--remote` wins over it).
pub(crate) const URL_VAR: &str = "KEEL_REMOTE_URL";

/// The job states in the order the local `queue stats` lists them.
const STATES: [&str; 7] = ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled"];

/// The remote named by `--remote` or `KEEL_REMOTE_URL`, if any.
pub(crate) fn from(flag: Option<String>, source: &dyn Source) -> Result<Option<Remote>, OpsError> {
    let Some(url) = flag.or_else(|| source.get(URL_VAR)).filter(|u| !u.trim().is_empty()) else { return Ok(None) };
    Remote::new(&url, source.get(TOKEN_VAR)).map(Some)
}

/// A path segment from an operator's argument (a queue or task name), percent-encoded.
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn job_id(raw: &str) -> Result<String, OpsError> {
    raw.parse::<keel_queue::JobId>()
        .map(|id| id.to_string())
        .map_err(|_| OpsError::usage("ID must be a job id (a UUID)"))
}

fn not_remote(what: &str) -> OpsError {
    OpsError::usage(format!(
        "{what} is not available with --remote (the operator API does not offer it); run it where DATABASE_URL reaches the database, without --remote/{URL_VAR}"
    ))
}

fn text(v: &Value, field: &str) -> String {
    match &v[field] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) async fn queue(r: &Remote, cmd: QueueCommand) -> Result<u8, OpsError> {
    match cmd {
        QueueCommand::Stats { json } => {
            let v = r.get("/api/ops/queue/stats", &[]).await?;
            if json {
                print_json(&v);
            } else {
                let mut t = table::new(&["state", "jobs"], &[1]);
                for state in STATES {
                    t.add_row([state.to_owned(), v[state].as_u64().unwrap_or(0).to_string()]);
                }
                let age = v["oldest_pending_age_s"].as_f64().unwrap_or(0.0);
                t.add_row(["oldest_pending_age".to_owned(), format!("{age:.1}s")]);
                table::print(&t);
                let paused: Vec<String> = v["paused_queues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|q| q.as_str())
                    .map(str::to_owned)
                    .collect();
                if !paused.is_empty() {
                    println!("paused queues: {}", paused.join(", "));
                }
            }
        }
        QueueCommand::List { state, kind, limit, json } => {
            if !STATES.contains(&state.as_str()) {
                return Err(OpsError::usage(
                    "--state must be pending, processing, retrying, completed, failed, dead_letter or cancelled",
                ));
            }
            let mut q = vec![("state", state.clone()), ("limit", limit.to_string())];
            if let Some(k) = kind {
                q.push(("kind", k));
            }
            let v = r.get("/api/ops/jobs", &q).await?;
            let jobs = v.as_array().cloned().unwrap_or_default();
            if json {
                print_json(&v);
            } else {
                let mut t = table::new(&["id", "kind", "state", "attempt", "last error"], &[3]);
                for j in &jobs {
                    let attempt = format!("{}/{}", text(j, "attempt"), text(j, "max_attempts"));
                    t.add_row([text(j, "id"), text(j, "kind"), text(j, "state"), attempt, text(j, "last_error")]);
                }
                table::print(&t);
                if jobs.is_empty() {
                    println!("no {state} jobs");
                }
            }
        }
        QueueCommand::Show { id } => {
            let v = r.get(&format!("/api/ops/jobs/{}", job_id(&id)?), &[]).await?;
            print_json(&v);
        }
        QueueCommand::Retry { id } => {
            let j = r.post(&format!("/api/ops/jobs/{}/retry", job_id(&id)?), &json!({})).await?;
            println!(
                "job {} is {} (attempt {}/{})",
                text(&j, "id"),
                text(&j, "state"),
                text(&j, "attempt"),
                text(&j, "max_attempts")
            );
        }
        QueueCommand::Cancel { id } => {
            let j = r.post(&format!("/api/ops/jobs/{}/cancel", job_id(&id)?), &json!({})).await?;
            println!("job {} is {}", text(&j, "id"), text(&j, "state"));
        }
        QueueCommand::RequeueDead { kind } => {
            let v = r.post("/api/ops/dead/requeue", &json!({ "kind": kind })).await?;
            println!("requeued {} dead-lettered job(s)", v["requeued"].as_u64().unwrap_or(0));
            let skipped = v["skipped_duplicates"].as_array().map_or(0, Vec::len);
            if skipped > 0 {
                println!("left {skipped} dead: another job with the same dedupe key is active");
            }
        }
        QueueCommand::Pause { name } => {
            r.post(&format!("/api/ops/queues/{}/pause", seg(&name)), &json!({})).await?;
            println!("queue {name} paused; workers stop claiming from it on their next tick");
        }
        QueueCommand::Resume { name } => {
            let v = r.post(&format!("/api/ops/queues/{}/resume", seg(&name)), &json!({})).await?;
            let was = v["was_paused"].as_bool().unwrap_or(false);
            println!("queue {name} {}", if was { "resumed" } else { "was not paused" });
        }
        QueueCommand::Enqueue { .. } => return Err(not_remote("queue enqueue")),
        QueueCommand::Prune { .. } => return Err(not_remote("queue prune")),
    }
    Ok(exit::OK)
}

pub(crate) async fn cron(r: &Remote, cmd: CronCommand) -> Result<u8, OpsError> {
    match cmd {
        CronCommand::Runs { task, limit, json } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(t) = task {
                q.push(("task", t));
            }
            let v = r.get("/api/ops/cron/runs", &q).await?;
            if json {
                print_json(&v);
            } else {
                let runs = v.as_array().cloned().unwrap_or_default();
                let mut t = table::new(&["task", "started", "outcome", "items", "skipped", "error"], &[3, 4]);
                for run in &runs {
                    let started = chrono::DateTime::parse_from_rfc3339(&text(run, "started_at"))
                        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                        .unwrap_or_else(|_| text(run, "started_at"));
                    let outcome = run["outcome"].as_str().unwrap_or("running").to_owned();
                    t.add_row([
                        text(run, "task"),
                        started,
                        outcome,
                        text(run, "items"),
                        text(run, "skipped_ticks"),
                        text(run, "error"),
                    ]);
                }
                table::print(&t);
                if runs.is_empty() {
                    println!("no cron runs recorded");
                }
            }
        }
        CronCommand::Pause { task } => {
            r.post(&format!("/api/ops/cron/{}/pause", seg(&task)), &json!({})).await?;
            println!("{task} paused; every worker skips it from its next tick");
        }
        CronCommand::Resume { task } => {
            let v = r.post(&format!("/api/ops/cron/{}/resume", seg(&task)), &json!({})).await?;
            let was = v["was_paused"].as_bool().unwrap_or(false);
            println!("{task} {}", if was { "resumed" } else { "was not paused" });
        }
    }
    Ok(exit::OK)
}

/// `health` through the operator API: the same document as the local `health` (`http.status`
/// and `http.body`), the body being the health report the overview carries (the checks of
/// `/api/health`), the status the one `/api/health` answers with it (200 when ok, else 503).
pub(crate) async fn health(r: &Remote, a: &HealthArgs) -> Result<u8, OpsError> {
    if a.deep {
        return Err(not_remote("health --deep (it reads the database)"));
    }
    let overview = r.get("/api/ops/overview", &[]).await?;
    let body = overview["health"].clone();
    let ok = body["status"] == "ok";
    let status = if ok { 200 } else { 503 };
    let v = json!({"http": {"status": status, "body": body}});
    if a.json {
        print_json(&v);
    } else {
        println!("http      {status} {}", body["status"].as_str().unwrap_or(""));
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}
