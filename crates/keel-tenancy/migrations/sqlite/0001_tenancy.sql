-- keel-tenancy 1: orgs (a tree), users, role memberships, browser sessions, API tokens and
-- password resets. Every name carries the keel_ prefix so it cannot collide with a host's own
-- users or sessions. (Keel 0.1 made the same tables unprefixed; see src/schema.rs for the adoption.)
-- Foundation: the tenant root every other table hangs off.
-- SQLite conventions: UUIDs as hyphenated TEXT, timestamps as INTEGER unix milliseconds.
CREATE TABLE keel_orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id   TEXT REFERENCES keel_orgs (id) ON DELETE RESTRICT,
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX keel_orgs_parent_id_idx ON keel_orgs (parent_id);

-- Tenancy and authentication: users, role memberships in orgs (inherited by descendant orgs),
-- browser sessions, API tokens and password resets. Secrets are stored only as SHA-256 hashes.
-- SQLite conventions: UUIDs as TEXT, timestamps as INTEGER unix milliseconds.
CREATE TABLE keel_users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash TEXT,
    created_at    INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);

CREATE TABLE keel_memberships (
    user_id    TEXT NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL REFERENCES keel_orgs (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'viewer')),
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX keel_memberships_org_id_idx ON keel_memberships (org_id);

CREATE TABLE keel_sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    active_org_id TEXT REFERENCES keel_orgs (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    expires_at    INTEGER NOT NULL
);
CREATE INDEX keel_sessions_user_id_idx ON keel_sessions (user_id);
CREATE INDEX keel_sessions_active_org_id_idx ON keel_sessions (active_org_id);

CREATE TABLE keel_api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    revoked_at  INTEGER
);
CREATE INDEX keel_api_tokens_user_id_idx ON keel_api_tokens (user_id);

CREATE TABLE keel_password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX keel_password_resets_user_id_idx ON keel_password_resets (user_id);
