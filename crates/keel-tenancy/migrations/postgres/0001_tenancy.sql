-- keel-tenancy 1: orgs (a tree), users, role memberships, browser sessions, API tokens and
-- password resets. Every name carries the keel_ prefix so it cannot collide with a host's own
-- users or sessions. (Keel 0.1 made the same tables unprefixed; see src/schema.rs for the adoption.)
-- Foundation: the tenant root every other table hangs off.
-- Organizations form a tree (a franchise parent with descendant orgs).
CREATE TABLE keel_orgs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id   uuid REFERENCES keel_orgs (id) ON DELETE RESTRICT,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX keel_orgs_parent_id_idx ON keel_orgs (parent_id);

-- Tenancy and authentication: users, role memberships in orgs (inherited by descendant orgs),
-- browser sessions, API tokens and password resets. Secrets are stored only as SHA-256 hashes.
CREATE TABLE keel_users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE keel_memberships (
    user_id    uuid NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    org_id     uuid NOT NULL REFERENCES keel_orgs (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'manager', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX keel_memberships_org_id_idx ON keel_memberships (org_id);

CREATE TABLE keel_sessions (
    id_hash       text PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    active_org_id uuid REFERENCES keel_orgs (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX keel_sessions_user_id_idx ON keel_sessions (user_id);
CREATE INDEX keel_sessions_active_org_id_idx ON keel_sessions (active_org_id);

CREATE TABLE keel_api_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX keel_api_tokens_user_id_idx ON keel_api_tokens (user_id);

CREATE TABLE keel_password_resets (
    token_hash text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES keel_users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX keel_password_resets_user_id_idx ON keel_password_resets (user_id);
