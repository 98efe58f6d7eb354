-- Foundation: the tenant root every other table hangs off.
-- Organizations form a tree (a franchise parent with descendant orgs).
CREATE TABLE orgs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id   uuid REFERENCES orgs (id) ON DELETE RESTRICT,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orgs_parent_id_idx ON orgs (parent_id);
