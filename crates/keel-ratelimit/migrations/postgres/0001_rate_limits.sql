-- Shared rate limiting (keel-ratelimit's SharedLimiter): one row per (policy, key) holding the
-- GCRA state. UNLOGGED: no WAL per decision; a crash empties the table, which only resets
-- limits (every key starts with a full bucket).
--
-- Times are BIGINT nanoseconds since the Unix epoch rather than timestamptz: this is GCRA state,
-- not a timestamp for people, and the same integer arithmetic runs in process, on SQLite and
-- here, so all three make identical decisions (timestamptz would round to microseconds).
-- No index on tat_ns: it changes on every admitted request, and an index on it would make each
-- of those updates non-HOT. The pruner scans in small batches instead.
CREATE UNLOGGED TABLE keel_rate_limits (
    policy      text    NOT NULL CHECK (length(policy) BETWEEN 1 AND 64),
    key         text    NOT NULL CHECK (length(key) BETWEEN 1 AND 512),
    -- Theoretical arrival time: the bucket is full again once the clock passes it.
    tat_ns      bigint  NOT NULL,
    -- The last decision on this row and the clock reading it was made at, returned by the
    -- deciding statement itself (one round trip per decision).
    decided_ns  bigint  NOT NULL,
    allowed     boolean NOT NULL,
    PRIMARY KEY (policy, key)
);
