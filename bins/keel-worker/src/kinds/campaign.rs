//! `campaign.batch`: a fan-out job that attempts every recipient even when some fail, then
//! reconciles its totals in one database-side statement (an upsert keyed by the job id, so a
//! re-run after a crash replaces the totals instead of adding to them).

use super::mail::{Mailer, Message};
use keel_queue::{JobContext, JobError};
use keel_storage::Db;
use serde::Deserialize;

/// Recipients per job: larger campaigns are split into several jobs by the enqueuer.
pub(crate) const MAX_RECIPIENTS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    campaign: String,
    subject: String,
    text: String,
    recipients: Vec<String>,
}

pub(crate) async fn run(
    db: &Db,
    mailer: &dyn Mailer,
    payload: serde_json::Value,
    ctx: JobContext,
) -> Result<(), JobError> {
    let b: Batch = serde_json::from_value(payload).map_err(|e| {
        JobError::unprocessable(format!("campaign.batch payload: {}", keel_ids::mask_email(&e.to_string())))
    })?;
    if b.campaign.trim().is_empty() || b.campaign.len() > 200 {
        return Err(JobError::unprocessable("campaign.batch campaign must be 1 to 200 characters"));
    }
    if b.recipients.len() > MAX_RECIPIENTS {
        return Err(JobError::unprocessable(format!(
            "campaign.batch takes at most {MAX_RECIPIENTS} recipients per job"
        )));
    }
    let (mut sent, mut failed) = (0i64, 0i64);
    for (i, raw) in b.recipients.iter().enumerate() {
        // One bad address or one refused delivery never stops the others. Each recipient's
        // delivery id is the job id and its place in the list, stable across re-runs.
        let id = format!("{}.{i}", ctx.job.id);
        let outcome = match keel_ids::Email::parse(raw) {
            Ok(to) => mailer
                .send(&id, &Message { to, subject: b.subject.clone(), text: b.text.clone() })
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => sent += 1,
            Err(e) => {
                failed += 1;
                tracing::warn!(event = "campaign_recipient_failed", campaign = %b.campaign, error = %keel_ids::mask_email(&e), "recipient failed");
            }
        }
    }
    let n = b.recipients.len() as i64;
    let res = match db {
        Db::Postgres(p) => sqlx::query(
            "INSERT INTO keel_campaign_batches (job_id, campaign, recipients, sent, failed) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job_id) DO UPDATE SET recipients = excluded.recipients, sent = excluded.sent,
                 failed = excluded.failed, finished_at = now()",
        )
        .bind(ctx.job.id.as_uuid())
        .bind(&b.campaign)
        .bind(n as i32)
        .bind(sent as i32)
        .bind(failed as i32)
        .execute(p)
        .await
        .map(drop),
        Db::Sqlite(p) => sqlx::query(
            "INSERT INTO keel_campaign_batches (job_id, campaign, recipients, sent, failed) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (job_id) DO UPDATE SET recipients = excluded.recipients, sent = excluded.sent,
                 failed = excluded.failed, finished_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)",
        )
        .bind(ctx.job.id.to_string())
        .bind(&b.campaign)
        .bind(n)
        .bind(sent)
        .bind(failed)
        .execute(p)
        .await
        .map(drop),
    };
    res.map_err(|e| JobError::retryable(format!("campaign totals not recorded: {e}")))?;
    tracing::info!(event = "campaign_batch_done", campaign = %b.campaign, recipients = n, sent, failed, "campaign batch reconciled");
    Ok(())
}
