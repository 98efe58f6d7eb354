//! The queue's error type: each message names what was wrong and what to do about it.

use crate::job::{JobId, JobState};

/// Why a queue operation failed. [`QueueError::is_unavailable`] tells a transient database
/// problem (retry later) from everything else.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A value handed to the queue (kind, queue name, dedupe key, priority…) is malformed.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field, as the caller knows it (`job kind`, `queue name`, `max_attempts`, …).
        field: &'static str,
        /// What is wrong and what is accepted.
        message: String,
    },

    /// The payload is over the store's limit ([`crate::StoreOptions::max_payload_bytes`]).
    #[error(
        "payload of job kind {kind:?} is {size} bytes, over the {max}-byte limit (KEEL_JOB_MAX_PAYLOAD_BYTES); \
         store large data elsewhere and pass a reference in the payload"
    )]
    PayloadTooLarge {
        /// The job's kind.
        kind: String,
        /// The payload's size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },

    /// The payload could not be serialized to JSON.
    #[error("payload of job kind {kind:?} cannot be encoded as JSON: {message}")]
    Payload {
        /// The job's kind.
        kind: String,
        /// serde_json's message.
        message: String,
    },

    /// No job has this id.
    #[error("job {0} does not exist (it may have been pruned)")]
    NotFound(JobId),

    /// An operator action does not apply to the job's state (cancelling a completed job).
    #[error("job {id} is {state}; {action} needs a job that is {allowed}")]
    WrongState {
        /// The job.
        id: JobId,
        /// Its state now.
        state: JobState,
        /// The action refused (`cancel`, `retry`).
        action: &'static str,
        /// The states the action accepts.
        allowed: &'static str,
    },

    /// A finish or heartbeat carried a fencing token that no longer holds the job: the lease
    /// expired and the job was rescued, or it was released. The job's current holder decides.
    #[error("job {id}: lease token {token} is stale; the job was rescued or released and is no longer ours")]
    StaleLease {
        /// The job.
        id: JobId,
        /// The stale fencing token presented.
        token: i64,
    },

    /// Retrying a job would give its dedupe key a second active holder.
    #[error(
        "dedupe key {key:?} of job kind {kind:?} is held by active job {existing}; wait for it to finish or cancel it"
    )]
    DedupeConflict {
        /// The job's kind.
        kind: String,
        /// The dedupe key.
        key: String,
        /// The active job holding it.
        existing: JobId,
    },

    /// The database cannot be reached right now, or the statement lost a deadlock or
    /// serialization race; retrying later can succeed.
    #[error("the queue database is unavailable: {0}")]
    Unavailable(String),

    /// Any other database error (a bug or a schema problem; retrying will not help).
    #[error("queue database error: {0}")]
    Database(String),

    /// Sealing a sensitive payload failed (no keyring, or a payload that cannot be sealed).
    #[error(transparent)]
    Seal(#[from] crate::SealError),
    /// A bounded read ([`crate::JobStore::snapshot_within`]) ran past its limit and the
    /// database stopped it.
    #[error(
        "{what} took longer than {limit:?} and was stopped by the database; it is slow or the jobs table is very large"
    )]
    TimedOut {
        /// What was stopped (`queue snapshot`).
        what: &'static str,
        /// The limit it ran past.
        limit: std::time::Duration,
    },

    /// A row read back from the database does not decode; names the column.
    #[error("corrupt queue row ({0}); was the table edited by hand?")]
    Corrupt(String),
}

impl QueueError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }

    /// True when the database could not be reached or was busy: back off and try again.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Maps a statement stopped by its time bound (PostgreSQL `57014` query_canceled, SQLite
/// `SQLITE_INTERRUPT` 9) to [`QueueError::TimedOut`]; any other error as usual.
pub(crate) fn timed_out(e: sqlx::Error, what: &'static str, limit: Option<std::time::Duration>) -> QueueError {
    if let (Some(limit), sqlx::Error::Database(db)) = (limit, &e) {
        if matches!(db.code().as_deref(), Some("57014") | Some("9")) {
            return QueueError::TimedOut { what, limit };
        }
    }
    e.into()
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let transient = if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // SQLite extended codes: the low byte is the primary code, 5 BUSY, 6 LOCKED.
                    code.parse::<i32>().is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6)
                } else {
                    // Postgres: class 08 connection exceptions, 57P0x shutdown or crash,
                    // 53300 too many connections; 40P01 deadlock and 40001 serialization
                    // failure, which succeed when simply retried.
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "53300"
                        || code == "40P01"
                        || code == "40001"
                };
                if transient {
                    Self::Unavailable(e.to_string())
                } else {
                    Self::Database(e.to_string())
                }
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Database(e.to_string()),
        }
    }
}
