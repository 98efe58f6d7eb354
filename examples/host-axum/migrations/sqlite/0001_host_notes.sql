-- The host's own table, recorded in its own `_sqlx_migrations` by `sqlx::migrate!`.
-- `processed_at` is set by the `note.process` job (unix milliseconds, as Keel stores time on SQLite).
CREATE TABLE host_notes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    processed_at INTEGER
);
