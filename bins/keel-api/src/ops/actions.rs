//! The operator's state-changing verbs: retry, cancel, requeue dead-lettered jobs (one, or all
//! of a kind), pause and resume a queue or a scheduled task, grant and revoke the operator
//! role. Each is applied, then written to the activity log with who, what and the connection's
//! peer address, before the answer is sent; if the log write fails the caller is told (500) and
//! the failure is logged in full, so an action is never silently unrecorded.

use super::data::qerr;
use super::Operator;
use crate::{ApiError, AppState};
use keel_ids::Email;
use keel_queue::JobId;
use serde_json::{json, Value};

/// Queue and task names: what keel-queue stores, bounded so the log's target always fits.
const MAX_NAME_LEN: usize = 100;

fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME_LEN || n.chars().any(char::is_control) {
        return Err(ApiError::bad_param(field, format!("must be 1 to {MAX_NAME_LEN} printable characters")));
    }
    Ok(n.to_owned())
}

/// Writes the log entry; a failure is an error for the caller (the change itself stands).
async fn record(state: &AppState, op: &Operator, action: &str, target: &str, detail: Value) -> Result<(), ApiError> {
    let at = chrono::Utc::now();
    let remote = op.peer.map(|p| p.to_string());
    if let Err(e) = state.tenancy.record_operator_action(op.user_id, action, target, detail, at, remote).await {
        tracing::error!(event = "operator_action_unrecorded", operator = %op.user_id, action, target, error = %e,
            "an operator action was applied but could not be written to the activity log");
        return Err(ApiError::internal(format!("{action} on {target} was applied but not recorded: {e}")));
    }
    Ok(())
}

fn who(op: &Operator) -> Option<String> {
    Some(format!("operator:{}", op.user_id))
}

/// Runs a failed, dead-lettered or cancelled job again (a waiting one now).
pub(crate) async fn retry(state: &AppState, op: &Operator, id: JobId) -> Result<Value, ApiError> {
    let before = state.queue.get(id).await.map_err(qerr)?.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let job = state.queue.retry(id).await.map_err(qerr)?;
    record(state, op, "job.retry", &id.to_string(), json!({"kind": job.kind, "from": before.state.as_str()})).await?;
    Ok(keel_queue::ops_json::job(&job))
}

/// Cancels a pending or retrying job.
pub(crate) async fn cancel(state: &AppState, op: &Operator, id: JobId) -> Result<Value, ApiError> {
    let job = state.queue.cancel(id).await.map_err(qerr)?;
    record(state, op, "job.cancel", &id.to_string(), json!({"kind": job.kind})).await?;
    Ok(keel_queue::ops_json::job(&job))
}

/// Requeues one dead-lettered job with fresh attempts; 409 for a job in any other state.
pub(crate) async fn requeue_one(state: &AppState, op: &Operator, id: JobId) -> Result<Value, ApiError> {
    let job = state.queue.get(id).await.map_err(qerr)?.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if job.state != keel_queue::JobState::DeadLetter {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            format!("job {id} is {}, not dead_letter; use retry for other states", job.state.as_str()),
        ));
    }
    let job = state.queue.retry(id).await.map_err(qerr)?;
    record(state, op, "job.requeue", &id.to_string(), json!({"kind": job.kind})).await?;
    Ok(keel_queue::ops_json::job(&job))
}

/// Requeues every dead-lettered job, or those of one kind.
pub(crate) async fn requeue_dead(state: &AppState, op: &Operator, kind: Option<String>) -> Result<Value, ApiError> {
    let kind = kind.map(|k| name("kind", &k)).transpose()?;
    let r = state.queue.requeue_dead(kind.clone()).await.map_err(qerr)?;
    let target = kind.clone().unwrap_or_else(|| "*".into());
    let detail = json!({"kind": kind, "requeued": r.requeued, "skipped_duplicates": r.skipped_duplicates.len()});
    record(state, op, "dead.requeue", &target, detail).await?;
    Ok(json!({"requeued": r.requeued, "skipped_duplicates": r.skipped_duplicates}))
}

/// Pauses (`pause = true`) or resumes a queue for every worker.
pub(crate) async fn queue_pause(state: &AppState, op: &Operator, raw: &str, pause: bool) -> Result<Value, ApiError> {
    let queue = name("queue", raw)?;
    if pause {
        state.queue.pause_queue(queue.clone(), who(op)).await.map_err(qerr)?;
        record(state, op, "queue.pause", &queue, json!({})).await?;
        Ok(json!({"queue": queue, "paused": true}))
    } else {
        let was = state.queue.resume_queue(queue.clone()).await.map_err(qerr)?;
        record(state, op, "queue.resume", &queue, json!({"was_paused": was})).await?;
        Ok(json!({"queue": queue, "paused": false, "was_paused": was}))
    }
}

/// Pauses or resumes a scheduled task (`all` for every task) for every worker.
pub(crate) async fn task_pause(state: &AppState, op: &Operator, raw: &str, pause: bool) -> Result<Value, ApiError> {
    let task = name("task", raw)?;
    if pause {
        state.queue.cron_pause(task.clone(), who(op)).await.map_err(qerr)?;
        record(state, op, "task.pause", &task, json!({})).await?;
        Ok(json!({"task": task, "paused": true}))
    } else {
        let was = state.queue.cron_resume(task.clone()).await.map_err(qerr)?;
        record(state, op, "task.resume", &task, json!({"was_paused": was})).await?;
        Ok(json!({"task": task, "paused": false, "was_paused": was}))
    }
}

async fn user_by_email(state: &AppState, raw: &str) -> Result<(keel_tenancy::UserRecord, Email), ApiError> {
    let email = Email::parse(raw).map_err(|e| ApiError::invalid("email", e.to_string()))?;
    let user = state
        .tenancy
        .user_by_email(&email)
        .await
        .map_err(crate::error::from_tenancy)?
        .ok_or_else(|| ApiError::invalid("email", "no user has this address; create the user first"))?;
    Ok((user, email))
}

/// Grants the operator role to the user with this address.
pub(crate) async fn grant(state: &AppState, op: &Operator, email: &str) -> Result<Value, ApiError> {
    let (user, email) = user_by_email(state, email).await?;
    let granted = state
        .tenancy
        .grant_operator(user.id, Some(op.user_id), chrono::Utc::now())
        .await
        .map_err(crate::error::from_tenancy)?;
    record(state, op, "operator.grant", &user.id.to_string(), json!({"granted": granted})).await?;
    Ok(json!({"user_id": user.id, "email": email.to_string(), "granted": granted}))
}

/// Revokes the operator role; an operator cannot revoke their own (that is `keel-ops operator
/// revoke`, or another operator's call), so the console never locks its last user out by a click.
pub(crate) async fn revoke(state: &AppState, op: &Operator, email: &str) -> Result<Value, ApiError> {
    let (user, email) = user_by_email(state, email).await?;
    if user.id == op.user_id {
        return Err(ApiError::invalid("email", "is your own; another operator (or keel-ops) must revoke it"));
    }
    let revoked = state.tenancy.revoke_operator(user.id).await.map_err(crate::error::from_tenancy)?;
    record(state, op, "operator.revoke", &user.id.to_string(), json!({"revoked": revoked})).await?;
    Ok(json!({"user_id": user.id, "email": email.to_string(), "revoked": revoked}))
}
