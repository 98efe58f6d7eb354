-- Shared rate limiting (keel-ratelimit's SharedLimiter): one row per (policy, key) holding the
-- GCRA state. SQLite has no UNLOGGED tables (declared in keel-storage's Capabilities); the
-- table is small and pruned automatically, so the journal cost is modest.
--
-- Times are INTEGER nanoseconds since the Unix epoch rather than the usual milliseconds: this is
-- GCRA state, not a timestamp for people, and the same integer arithmetic runs in process, on
-- PostgreSQL and here, so all three make identical decisions.
CREATE TABLE keel_rate_limits (
    policy      TEXT    NOT NULL CHECK (length(policy) BETWEEN 1 AND 64),
    key         TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 512),
    tat_ns      INTEGER NOT NULL,
    decided_ns  INTEGER NOT NULL,
    allowed     INTEGER NOT NULL CHECK (allowed IN (0, 1)),
    PRIMARY KEY (policy, key)
) WITHOUT ROWID;
