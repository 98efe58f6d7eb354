//! Where each column of a job row sits: both stores select a job's columns in one order
//! (`JOB_COLS` of each), and map rows by position. A claim maps hundreds of rows per call, and
//! finding each column by name (a hash and a compare per column per row) cost about a sixth
//! of the worker's CPU in a burn-down of no-op jobs (issue #19).

use crate::QueueError;

pub(crate) const ID: usize = 0;
pub(crate) const KIND: usize = 1;
pub(crate) const QUEUE: usize = 2;
pub(crate) const ORG_ID: usize = 3;
pub(crate) const PAYLOAD: usize = 4;
pub(crate) const SEALED: usize = 5;
pub(crate) const PRIORITY: usize = 6;
pub(crate) const STATE: usize = 7;
pub(crate) const RUN_AT: usize = 8;
pub(crate) const ATTEMPT: usize = 9;
pub(crate) const MAX_ATTEMPTS: usize = 10;
pub(crate) const DEDUPE_KEY: usize = 11;
pub(crate) const LEASE_SEQ: usize = 12;
pub(crate) const LEASE_EXPIRES_AT: usize = 13;
pub(crate) const LOCKED_BY: usize = 14;
pub(crate) const LAST_ERROR: usize = 15;
pub(crate) const CREATED_AT: usize = 16;
pub(crate) const UPDATED_AT: usize = 17;
pub(crate) const STARTED_AT: usize = 18;
pub(crate) const FINISHED_AT: usize = 19;
pub(crate) const TRACE_CONTEXT: usize = 20;

/// An attempt count as stored: a negative one is corrupt data, never read as zero.
pub(crate) fn count(field: &'static str, n: impl Into<i64>) -> Result<u32, QueueError> {
    let n = n.into();
    u32::try_from(n).map_err(|_| QueueError::Corrupt(format!("{field} is {n} in keel_jobs; it cannot be negative")))
}

/// The jobs of a claim's rows, in claim order. A row the mapper refuses (a value it does not
/// know, written by another writer or a restore) is left out and logged with its id
/// (`id_of`), not the whole claim: the jobs claimed with it run, and it stays claimed until its
/// lease expires, then is rescued, and after its last attempt dead-lettered. The error quotes
/// the value it refused, so addresses in it are masked, as in every other queue log line.
pub(crate) fn claimed_jobs<R>(
    rows: &[R],
    map: impl Fn(&R) -> Result<crate::Job, QueueError>,
    id_of: impl Fn(&R) -> String,
) -> Vec<crate::Job> {
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        match map(row) {
            Ok(job) => jobs.push(job),
            Err(e) => {
                tracing::error!(event = "claimed_row_unreadable", job_id = %id_of(row), error = %keel_ids::mask_email(&e.to_string()),
                "a claimed job's row cannot be read; it is rescued when its lease expires and dead-lettered after its last attempt")
            }
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position names the column each store's `JOB_COLS` puts there.
    #[test]
    fn positions_follow_both_stores_job_cols() {
        let positions = [
            (ID, "id"),
            (KIND, "kind"),
            (QUEUE, "queue"),
            (ORG_ID, "org_id"),
            (PAYLOAD, "payload"),
            (SEALED, "sealed"),
            (PRIORITY, "priority"),
            (STATE, "state"),
            (RUN_AT, "run_at"),
            (ATTEMPT, "attempt"),
            (MAX_ATTEMPTS, "max_attempts"),
            (DEDUPE_KEY, "dedupe_key"),
            (LEASE_SEQ, "lease_seq"),
            (LEASE_EXPIRES_AT, "lease_expires_at"),
            (LOCKED_BY, "locked_by"),
            (LAST_ERROR, "last_error"),
            (CREATED_AT, "created_at"),
            (UPDATED_AT, "updated_at"),
            (STARTED_AT, "started_at"),
            (FINISHED_AT, "finished_at"),
            (TRACE_CONTEXT, "trace_context"),
        ];
        for cols in [super::super::pg::JOB_COLS, super::super::sqlite::JOB_COLS] {
            let names: Vec<&str> = cols
                .split(',')
                .map(|c| c.split_whitespace().last().unwrap_or_default().trim_start_matches("j."))
                .collect();
            assert_eq!(names.len(), positions.len(), "every column of {cols:?} is mapped");
            for (i, name) in positions {
                assert_eq!(names[i], name, "position {i} of {cols:?}");
            }
        }
    }

    #[test]
    fn a_negative_count_is_corrupt_not_zero() {
        assert_eq!(count("attempt", 3i32).ok(), Some(3));
        let e = count("attempt", -1i64).expect_err("negative");
        assert!(e.to_string().contains("attempt is -1"), "{e}");
    }
}
