-- Job queue: jobs, queue pauses, and the scheduled-task tables (schedule slots, execution log,
-- pauses). SQLite conventions: UUIDs as hyphenated TEXT, timestamps as INTEGER unix
-- milliseconds, JSON as TEXT. Same meaning, constraints and indexes as the Postgres set.

CREATE TABLE keel_jobs (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    queue             TEXT NOT NULL CHECK (length(queue) BETWEEN 1 AND 64),
    org_id            TEXT,
    payload           TEXT NOT NULL CHECK (json_valid(payload)),
    priority          INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -32768 AND 32767),
    state             TEXT NOT NULL CHECK (state IN
                        ('pending', 'processing', 'retrying', 'completed', 'failed', 'dead_letter', 'cancelled')),
    run_at            INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    dedupe_key        TEXT CHECK (length(dedupe_key) BETWEEN 1 AND 255),
    lease_seq         INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  INTEGER,
    locked_by         TEXT,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    CHECK ((state = 'processing') = (lease_expires_at IS NOT NULL))
);

CREATE INDEX keel_jobs_ready_idx ON keel_jobs (queue, priority, run_at, id)
    WHERE state IN ('pending', 'retrying');

CREATE UNIQUE INDEX keel_jobs_dedupe_idx ON keel_jobs (kind, dedupe_key, COALESCE(org_id, ''))
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing', 'retrying');

CREATE INDEX keel_jobs_lease_idx ON keel_jobs (lease_expires_at) WHERE state = 'processing';

CREATE INDEX keel_jobs_finished_idx ON keel_jobs (state, finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE keel_queue_pauses (
    queue      TEXT PRIMARY KEY,
    paused_at  INTEGER NOT NULL,
    paused_by  TEXT
);

CREATE TABLE keel_cron_schedule (
    task         TEXT PRIMARY KEY,
    next_run_at  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE keel_cron_runs (
    id                TEXT PRIMARY KEY,
    task              TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('running', 'finished')),
    outcome           TEXT CHECK (outcome IN ('ok', 'empty', 'failed', 'skipped_paused', 'stuck')),
    worker            TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    heartbeat_at      INTEGER NOT NULL,
    lease_expires_at  INTEGER NOT NULL,
    finished_at       INTEGER,
    items             INTEGER NOT NULL DEFAULT 0,
    skipped_ticks     INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    CHECK ((state = 'finished') = (outcome IS NOT NULL))
);
CREATE UNIQUE INDEX keel_cron_runs_one_active_idx ON keel_cron_runs (task) WHERE state = 'running';
CREATE INDEX keel_cron_runs_task_started_idx ON keel_cron_runs (task, started_at);
CREATE INDEX keel_cron_runs_started_idx ON keel_cron_runs (started_at);

CREATE TABLE keel_cron_pauses (
    task       TEXT PRIMARY KEY,
    paused_at  INTEGER NOT NULL,
    paused_by  TEXT
);
