//! The operator's JSON documents of the queue, one definition shared by `keel-ops … --json`
//! (local mode) and keel-api's `/api/ops/*`, so a remote `keel-ops --remote … queue stats
//! --json` prints exactly what the local one does. Field names are a contract (runbooks and
//! scripts read them). Sealed values show as `[sealed]` ([`crate::Job`]'s serialization) and
//! email addresses are masked in payloads, errors and cron errors.

use crate::store::CronRun;
use crate::{Job, QueueSnapshot};
use serde_json::{json, Value};

fn value_of<T: serde::Serialize>(v: &T) -> Value {
    // Serializing these plain structs cannot fail (no maps with non-string keys, no custom
    // errors); `Null` would only hide a bug, never user input.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `queue stats --json`: counts per state (flattened), `oldest_pending_age_s`,
/// `expired_leases`, `paused_queues` and `by_kind`.
pub fn stats(snap: &QueueSnapshot) -> Value {
    let mut v = value_of(&snap.counts);
    v["oldest_pending_age_s"] = json!(snap.oldest_pending_age_s);
    v["expired_leases"] = json!(snap.expired_leases);
    v["paused_queues"] = json!(snap.paused_queues);
    v["by_kind"] = value_of(&snap.by_kind);
    v
}

/// `queue show ID`: one job, whole, with sealed values as `[sealed]` and email addresses
/// masked in `payload` and `last_error`.
pub fn job(job: &Job) -> Value {
    let mut v = value_of(job);
    for field in ["payload", "last_error"] {
        if let Some(text) = v.get(field).and_then(|p| p.as_str()).map(keel_ids::mask_email) {
            v[field] = json!(text);
        }
    }
    v
}

/// `queue list --json`: an array of [`job`] documents.
pub fn jobs(jobs: &[Job]) -> Value {
    Value::Array(jobs.iter().map(job).collect())
}

/// `cron runs --json`: the execution-log rows, errors with email addresses masked.
pub fn cron_runs(runs: &[CronRun]) -> Value {
    let mut v = value_of(&runs);
    if let Some(rows) = v.as_array_mut() {
        for r in rows {
            if let Some(text) = r.get("error").and_then(|e| e.as_str()).map(keel_ids::mask_email) {
                r["error"] = json!(text);
            }
        }
    }
    v
}
