-- Invoices (the reference workload), their per-org per-day number counter, idempotency keys
-- for creates, and payments (the revenue report's second source).
CREATE TABLE invoices (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    number        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void')),
    customer_name text NOT NULL CHECK (length(customer_name) BETWEEN 1 AND 200),
    currency      text NOT NULL CHECK (length(currency) = 3),
    total_minor   bigint NOT NULL,
    line_items    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, number)
);
-- The primary admin list path: one org's invoices, newest first.
CREATE INDEX invoices_org_created_idx ON invoices (org_id, created_at DESC);

-- One row per org and day; `UPDATE … RETURNING` on it is the only way numbers are allocated.
CREATE TABLE invoice_counters (
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    day        text NOT NULL CHECK (length(day) = 8),
    last_value integer NOT NULL CHECK (last_value >= 0),
    PRIMARY KEY (org_id, day)
);

CREATE TABLE idempotency_keys (
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       integer NOT NULL,
    response     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);

CREATE TABLE payments (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    invoice_id   uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     text NOT NULL CHECK (length(currency) = 3),
    paid_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_invoice_id_idx ON payments (invoice_id);
CREATE INDEX payments_org_paid_idx ON payments (org_id, paid_at);
