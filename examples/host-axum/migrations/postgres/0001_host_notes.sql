-- The host's own table, recorded in its own `_sqlx_migrations` by `sqlx::migrate!`.
-- `processed_at` is set by the `note.process` job.
CREATE TABLE host_notes (
    id           BIGSERIAL   PRIMARY KEY,
    body         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);
