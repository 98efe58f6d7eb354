-- Totals of campaign.batch jobs: one row per job, written in one statement after every
-- recipient was attempted (an upsert, so a re-run after a crash replaces, never adds).
CREATE TABLE keel_campaign_batches (
    job_id      TEXT PRIMARY KEY,
    campaign    TEXT NOT NULL CHECK (length(campaign) BETWEEN 1 AND 200),
    recipients  INTEGER NOT NULL CHECK (recipients >= 0),
    sent        INTEGER NOT NULL CHECK (sent >= 0),
    failed      INTEGER NOT NULL CHECK (failed >= 0),
    finished_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    CHECK (sent + failed = recipients)
);
CREATE INDEX keel_campaign_batches_campaign_idx ON keel_campaign_batches (campaign);
