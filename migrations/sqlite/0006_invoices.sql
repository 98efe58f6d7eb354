-- Invoices (the reference workload), their per-org per-day number counter, idempotency keys
-- for creates, and payments (the revenue report's second source).
CREATE TABLE invoices (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    number        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void')),
    customer_name TEXT NOT NULL CHECK (length(customer_name) BETWEEN 1 AND 200),
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    total_minor   INTEGER NOT NULL,
    line_items    TEXT NOT NULL,
    created_at    INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    UNIQUE (org_id, number)
);
CREATE INDEX invoices_org_created_idx ON invoices (org_id, created_at DESC);

CREATE TABLE invoice_counters (
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    day        TEXT NOT NULL CHECK (length(day) = 8),
    last_value INTEGER NOT NULL CHECK (last_value >= 0),
    PRIMARY KEY (org_id, day)
);

CREATE TABLE idempotency_keys (
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    PRIMARY KEY (org_id, key)
);

CREATE TABLE payments (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    invoice_id   TEXT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    paid_at      INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX payments_invoice_id_idx ON payments (invoice_id);
CREATE INDEX payments_org_paid_idx ON payments (org_id, paid_at);
