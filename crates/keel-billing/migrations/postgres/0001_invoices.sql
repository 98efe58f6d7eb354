-- keel-billing 1: invoices, their per-org per-day number counter, idempotency keys and payments.
-- Requires keel-tenancy (keel_orgs). Keel 0.1 made these unprefixed (versions 6 and 8; adopted by renaming, see src/schema.rs).
-- Invoices (the reference workload), their per-org per-day number counter, idempotency keys
-- for creates, and payments (the revenue report's second source).
CREATE TABLE keel_invoices (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES keel_orgs (id) ON DELETE CASCADE,
    number        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void')),
    customer_name text NOT NULL CHECK (length(customer_name) BETWEEN 1 AND 200),
    currency      text NOT NULL CHECK (length(currency) = 3),
    total_minor   bigint NOT NULL,
    line_items    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, number)
);
-- The exact reports drain invoices and payments in keyset order (time, id) per org; an index in
-- exactly that order lets each page start where the last ended. It also serves the admin list
-- (newest first, scanned backwards).
CREATE INDEX keel_invoices_org_created_id_idx ON keel_invoices (org_id, created_at, id);

-- One row per org and day; `UPDATE … RETURNING` on it is the only way numbers are allocated.
CREATE TABLE keel_invoice_counters (
    org_id     uuid NOT NULL REFERENCES keel_orgs (id) ON DELETE CASCADE,
    day        text NOT NULL CHECK (length(day) = 8),
    last_value integer NOT NULL CHECK (last_value >= 0),
    PRIMARY KEY (org_id, day)
);

CREATE TABLE keel_idempotency_keys (
    org_id       uuid NOT NULL REFERENCES keel_orgs (id) ON DELETE CASCADE,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       integer NOT NULL,
    response     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);

CREATE TABLE keel_payments (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES keel_orgs (id) ON DELETE CASCADE,
    invoice_id   uuid NOT NULL REFERENCES keel_invoices (id) ON DELETE CASCADE,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     text NOT NULL CHECK (length(currency) = 3),
    paid_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX keel_payments_invoice_id_idx ON keel_payments (invoice_id);
CREATE INDEX keel_payments_org_paid_id_idx ON keel_payments (org_id, paid_at, id);
