-- Route timing samples: every request seen by the server's timing layer (kind 'server') and the
-- sampled browser timings posted to /api/telemetry/route-timing (kinds 'navigation', 'api').
-- `route` is always a template (/clients/:id), never a raw path.
-- `duration_us` is whole microseconds and `weight` is round(1e6 / sample_rate) in micro-samples:
-- both integers, so percentiles computed in Rust match the Postgres query to the microsecond.
-- SQLite conventions: timestamps as INTEGER unix milliseconds.
-- Append-only; rows older than ROUTE_TELEMETRY_RETENTION_DAYS are deleted by scheduled work.
CREATE TABLE route_performance_events (
    id           INTEGER PRIMARY KEY,
    route        TEXT NOT NULL CHECK (length(route) BETWEEN 1 AND 200),
    kind         TEXT NOT NULL CHECK (kind IN ('server', 'navigation', 'api')),
    method       TEXT CHECK (length(method) BETWEEN 1 AND 16),
    status       INTEGER CHECK (status BETWEEN 100 AND 599),
    duration_us  INTEGER NOT NULL CHECK (duration_us BETWEEN 0 AND 600000000),
    sample_rate  REAL NOT NULL CHECK (sample_rate > 0 AND sample_rate <= 1),
    weight       INTEGER NOT NULL CHECK (weight BETWEEN 1000000 AND 1000000000000),
    occurred_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
-- The report reads a time window; pruning deletes the oldest rows.
CREATE INDEX route_performance_events_occurred_at_idx ON route_performance_events (occurred_at);
