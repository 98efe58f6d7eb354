-- The exact reports drain invoices and payments in keyset order (time, id) per org; an index in
-- exactly that order lets each page start where the last ended instead of re-reading the org's
-- whole range. It also serves the admin list (newest first), so it replaces the older index.
DROP INDEX IF EXISTS invoices_org_created_idx;
CREATE INDEX invoices_org_created_id_idx ON invoices (org_id, created_at, id);
DROP INDEX IF EXISTS payments_org_paid_idx;
CREATE INDEX payments_org_paid_id_idx ON payments (org_id, paid_at, id);
