-- Completed jobs leave the hot table (issue #19). Every claim and finish rewrites a row of
-- `keel_jobs`; a completion that also kept the job there wrote a new row version, a primary-key
-- entry and a `keel_jobs_finished_idx` entry, and left a dead version for vacuum, on the table
-- the next claims read. Moved here in the completing statement, a job costs one append instead
-- (a burn-down 14-30% faster, docs/benchmarks.md). History stays kept, in full.
--
-- Same columns in the same order as `keel_jobs` (readers take `SELECT *` of both; a test
-- checks it), the same checks, and only completed jobs. Failed, dead-lettered and cancelled
-- jobs stay in `keel_jobs`, where operators retry them. A completed job may also sit in
-- `keel_jobs` (restored from a SQLite backup, whose completion keeps it in place): readers
-- read both tables, and the retention prunes both.
CREATE TABLE keel_jobs_completed (LIKE keel_jobs INCLUDING DEFAULTS);
ALTER TABLE keel_jobs_completed
    ADD CONSTRAINT keel_jobs_completed_state_check CHECK (state = 'completed'),
    ADD CONSTRAINT keel_jobs_completed_lease_check CHECK (lease_expires_at IS NULL);

-- Only BRIN indexes, which an append to the table's last block range leaves untouched: a
-- B-tree primary key gave back two thirds of the move's gain, and `uuid_minmax_multi_ops` on
-- `id` most of it (docs/benchmarks.md). Rows arrive in finish order and job ids are UUIDv7
-- (time-ordered), so each block range covers a narrow span of both; a job created long
-- before it finished (scheduled, retried) widens its range's ids downwards only, so a lookup
-- reads at most the ranges written since it was created, and the readers also bound
-- `finished_at` by the id's time (`pg_ops.rs`). A job id is unique here because only the
-- completion that deletes it from `keel_jobs` appends it. The retention deletes by `ctid`.
-- The checks are the two this table adds: a row comes from `keel_jobs`, which checked the rest.
CREATE INDEX keel_jobs_completed_id_idx ON keel_jobs_completed USING brin (id);
CREATE INDEX keel_jobs_completed_finished_idx ON keel_jobs_completed USING brin (finished_at);

WITH moved AS (DELETE FROM keel_jobs WHERE state = 'completed' RETURNING *)
INSERT INTO keel_jobs_completed SELECT * FROM moved;
