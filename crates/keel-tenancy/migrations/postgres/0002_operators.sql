-- keel-tenancy 2: platform operators, beside (not inside) the per-org roles. An operator grant
-- opens the operator console and /api/ops/* (jobs, schedules, limits, health, telemetry); it
-- grants nothing in any org, so `Role::permits` stays the one table of org permissions.
CREATE TABLE keel_operators (
    user_id    uuid PRIMARY KEY REFERENCES keel_users (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL,
    -- NULL when granted from the command line (keel-ops), or once the granting user is deleted.
    granted_by uuid REFERENCES keel_users (id) ON DELETE SET NULL
);
CREATE INDEX keel_operators_granted_by_idx ON keel_operators (granted_by);

-- Every operator action (retry, cancel, pause, grant, …): who, what, when, from where. No
-- foreign key on the operator: the log outlives the users it names. Ids are UUIDv7, so the
-- primary key orders the log by time and serves its keyset pagination.
CREATE TABLE keel_operator_actions (
    id          uuid PRIMARY KEY,
    operator_id uuid NOT NULL,
    action      text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target      text NOT NULL CHECK (length(target) <= 500),
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL,
    remote_addr text
);
CREATE INDEX keel_operator_actions_operator_id_idx ON keel_operator_actions (operator_id);

-- A token's scope: `org` (the default: acts through the user's org roles) or `operator`
-- (also opens /api/ops/* while the user holds an operator grant). Only
-- `keel-ops token issue --operator` writes `operator`.
ALTER TABLE keel_api_tokens ADD COLUMN scope text NOT NULL DEFAULT 'org' CHECK (scope IN ('org', 'operator'));
