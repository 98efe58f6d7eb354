-- keel-tenancy 2: platform operators, beside (not inside) the per-org roles. An operator grant
-- opens the operator console and /api/ops/* (jobs, schedules, limits, health, telemetry); it
-- grants nothing in any org, so `Role::permits` stays the one table of org permissions.
-- SQLite conventions: UUIDs as TEXT, timestamps as INTEGER unix milliseconds.
CREATE TABLE keel_operators (
    user_id    TEXT PRIMARY KEY REFERENCES keel_users (id) ON DELETE CASCADE,
    granted_at INTEGER NOT NULL,
    -- NULL when granted from the command line (keel-ops), or once the granting user is deleted.
    granted_by TEXT REFERENCES keel_users (id) ON DELETE SET NULL
);
CREATE INDEX keel_operators_granted_by_idx ON keel_operators (granted_by);

-- Every operator action (retry, cancel, pause, grant, …): who, what, when, from where. No
-- foreign key on the operator: the log outlives the users it names. Ids are UUIDv7 (TEXT in
-- canonical form, so they sort by time), and the primary key serves the keyset pagination.
CREATE TABLE keel_operator_actions (
    id          TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target      TEXT NOT NULL CHECK (length(target) <= 500),
    detail      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
    at          INTEGER NOT NULL,
    remote_addr TEXT
);
CREATE INDEX keel_operator_actions_operator_id_idx ON keel_operator_actions (operator_id);

-- A token's scope: `org` (the default: acts through the user's org roles) or `operator`
-- (also opens /api/ops/* while the user holds an operator grant). Only
-- `keel-ops token issue --operator` writes `operator`.
ALTER TABLE keel_api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'org' CHECK (scope IN ('org', 'operator'));
