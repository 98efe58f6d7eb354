//! The host's own data: `host_notes`. A note is written in a transaction that also enqueues its
//! `note.process` job, so the job exists exactly when the note does.

use crate::jobs::ProcessNote;
use keel_queue::{NewJob, PgStore, QueueError, SqliteStore, Store};
use keel_storage::Db;
use serde::Serialize;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::sync::Arc;

/// A note as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Note {
    /// Its id.
    pub id: i64,
    /// What was written.
    pub body: String,
    /// Whether its `note.process` job has run.
    pub processed: bool,
}

/// What a note costs in the cache (keel-orgcache bounds each bucket by weight).
impl keel_orgcache::CacheValue for Note {
    fn weight(&self) -> usize {
        std::mem::size_of::<Note>() + self.body.capacity()
    }
}

/// Why a note could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// The host's own SQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The queue refused the job (its own SQL, or a payload over its limit).
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// `host_notes` and the job queue, on either backend. The queue is kept as the concrete store
/// of the backend: enqueueing inside the caller's transaction (`enqueue_in`) is a method of each
/// backend's store, not of the `Store` trait.
#[derive(Debug, Clone)]
pub enum Notes {
    /// On PostgreSQL.
    Postgres(PgPool, PgStore),
    /// On SQLite.
    Sqlite(SqlitePool, SqliteStore),
}

const LIST: &str = "SELECT id, body, processed_at IS NOT NULL AS processed FROM host_notes ORDER BY id";

impl Notes {
    /// The notes in `db`, and its queue.
    pub fn new(db: &Db) -> Notes {
        match db {
            Db::Postgres(pool) => Notes::Postgres(pool.clone(), PgStore::new(pool.clone())),
            Db::Sqlite(pool) => Notes::Sqlite(pool.clone(), SqliteStore::new(pool.clone())),
        }
    }

    /// The queue as the worker takes it. A clone of the store shares its in-process wakeup, so
    /// a job enqueued through [`NoteTx::add`] wakes this process's worker at once.
    pub fn queue(&self) -> Arc<dyn Store> {
        match self {
            Notes::Postgres(_, queue) => Arc::new(queue.clone()),
            Notes::Sqlite(_, queue) => Arc::new(queue.clone()),
        }
    }

    /// Starts a unit of work: notes added to it are written, and their jobs enqueued, only if
    /// it commits.
    pub async fn begin(&self) -> Result<NoteTx, sqlx::Error> {
        Ok(match self {
            Notes::Postgres(pool, queue) => NoteTx::Postgres(pool.begin().await?, queue.clone()),
            // SQLite: take the write lock at BEGIN, so the transaction never has to upgrade a
            // read lock mid-way (which fails at once with SQLITE_BUSY instead of waiting).
            Notes::Sqlite(pool, queue) => NoteTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, queue.clone()),
        })
    }

    /// Every note, oldest first.
    pub async fn list(&self) -> Result<Vec<Note>, sqlx::Error> {
        match self {
            Notes::Postgres(pool, _) => sqlx::query_as(LIST).fetch_all(pool).await,
            Notes::Sqlite(pool, _) => sqlx::query_as(LIST).fetch_all(pool).await,
        }
    }

    /// Marks a note processed; `false` if there is no such note.
    pub async fn mark_processed(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done = match self {
            Notes::Postgres(pool, _) => sqlx::query("UPDATE host_notes SET processed_at = now() WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            Notes::Sqlite(pool, _) => sqlx::query(
                "UPDATE host_notes SET processed_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) WHERE id = ?",
            )
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
    }
}

/// An open transaction over `host_notes` and the queue's tables.
#[derive(Debug)]
pub enum NoteTx {
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>, PgStore),
    /// On SQLite.
    Sqlite(Transaction<'static, Sqlite>, SqliteStore),
}

impl NoteTx {
    /// Inserts a note and enqueues its `note.process` job, both in this transaction.
    pub async fn add(&mut self, body: &str) -> Result<Note, NoteError> {
        let id: i64 = match self {
            NoteTx::Postgres(tx, queue) => {
                let id = sqlx::query_scalar("INSERT INTO host_notes (body) VALUES ($1) RETURNING id")
                    .bind(body)
                    .fetch_one(&mut **tx)
                    .await?;
                queue.enqueue_in(tx, NewJob::args(&ProcessNote { note_id: id })?).await?;
                id
            }
            NoteTx::Sqlite(tx, queue) => {
                let id = sqlx::query_scalar("INSERT INTO host_notes (body) VALUES (?) RETURNING id")
                    .bind(body)
                    .fetch_one(&mut **tx)
                    .await?;
                queue.enqueue_in(tx, NewJob::args(&ProcessNote { note_id: id })?).await?;
                id
            }
        };
        Ok(Note { id, body: body.to_owned(), processed: false })
    }

    /// Makes the notes and their jobs visible (on PostgreSQL the worker's wakeup is sent now).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            NoteTx::Postgres(tx, _) => tx.commit().await,
            NoteTx::Sqlite(tx, _) => tx.commit().await,
        }
    }

    /// Discards the notes and their jobs (dropping the transaction does the same).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            NoteTx::Postgres(tx, _) => tx.rollback().await,
            NoteTx::Sqlite(tx, _) => tx.rollback().await,
        }
    }
}
