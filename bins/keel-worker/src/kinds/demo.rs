//! Drill kinds for operators and benchmarks: `demo.sleep {"ms": N}` and `demo.fail`.

use keel_queue::{JobContext, JobError};
use serde_json::Value;
use std::time::Duration;

/// Sleeps are capped so a typo cannot park a worker slot for a day.
const MAX_SLEEP_MS: u64 = 600_000;

pub(crate) async fn sleep(payload: Value, ctx: JobContext) -> Result<(), JobError> {
    let ms = payload
        .get("ms")
        .and_then(Value::as_u64)
        .filter(|ms| *ms <= MAX_SLEEP_MS)
        .ok_or_else(|| JobError::unprocessable(format!("demo.sleep needs {{\"ms\": 0..={MAX_SLEEP_MS}}}")))?;
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(()),
        _ = ctx.cancel.cancelled() => Err(JobError::retryable("demo.sleep interrupted by shutdown")),
    }
}

/// Fails on purpose: retryable by default, `{"permanent": true}` for a permanent failure.
pub(crate) async fn fail(payload: Value) -> Result<(), JobError> {
    let msg = payload.get("message").and_then(Value::as_str).unwrap_or("demo.fail failed on purpose").to_owned();
    if payload.get("permanent").and_then(Value::as_bool).unwrap_or(false) {
        Err(JobError::permanent(msg))
    } else {
        Err(JobError::retryable(msg))
    }
}
