-- Foundation: the tenant root every other table hangs off.
-- SQLite conventions: UUIDs as hyphenated TEXT, timestamps as INTEGER unix milliseconds.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id   TEXT REFERENCES orgs (id) ON DELETE RESTRICT,
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX orgs_parent_id_idx ON orgs (parent_id);
