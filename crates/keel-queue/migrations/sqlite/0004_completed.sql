-- Completed jobs' own table, as on PostgreSQL (issue #19), so that a backup moves between the
-- backends table for table. SQLite's completion keeps its jobs in `keel_jobs`: on its single
-- writer, deleting a row and appending it here cost more than rewriting it in place (a
-- burn-down 20-25% slower, docs/benchmarks.md). Rows arrive here from a PostgreSQL backup;
-- readers read both tables and the retention prunes both. Same columns in the same order as
-- `keel_jobs` (a test checks it) and the same checks.
CREATE TABLE keel_jobs_completed (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    queue             TEXT NOT NULL CHECK (length(queue) BETWEEN 1 AND 64),
    org_id            TEXT,
    payload           TEXT NOT NULL CHECK (json_valid(payload)),
    priority          INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -32768 AND 32767),
    state             TEXT NOT NULL CHECK (state = 'completed'),
    run_at            INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    dedupe_key        TEXT CHECK (length(dedupe_key) BETWEEN 1 AND 255),
    lease_seq         INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  INTEGER CHECK (lease_expires_at IS NULL),
    locked_by         TEXT,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    sealed            INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1)),
    trace_context     TEXT
);

CREATE INDEX keel_jobs_completed_finished_idx ON keel_jobs_completed (finished_at);
