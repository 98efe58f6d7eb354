-- keel-billing 2: every stored amount within keel_billing::MAX_AMOUNT_MINOR (999999999999999
-- minor units), the bound keel-api checks on input (422 naming the field). This is the
-- backstop for writes that do not come through the API. A line is never above its invoice's
-- total (quantities are positive, unit amounts not negative), so bounding the total bounds
-- every line too.
-- SQLite cannot add a CHECK to an existing table without rebuilding it, so triggers hold the
-- same bound as PostgreSQL's constraints; rows stored before are left as they are (reports
-- sum in i128, so they cannot break a report).
CREATE TRIGGER keel_invoices_total_minor_range_insert BEFORE INSERT ON keel_invoices
WHEN NEW.total_minor IS NOT NULL AND (typeof(NEW.total_minor) <> 'integer' OR NEW.total_minor NOT BETWEEN 0 AND 999999999999999)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: keel_invoices_total_minor_range');
END;
CREATE TRIGGER keel_invoices_total_minor_range_update BEFORE UPDATE OF total_minor ON keel_invoices
WHEN NEW.total_minor IS NOT NULL AND (typeof(NEW.total_minor) <> 'integer' OR NEW.total_minor NOT BETWEEN 0 AND 999999999999999)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: keel_invoices_total_minor_range');
END;
CREATE TRIGGER keel_payments_amount_minor_range_insert BEFORE INSERT ON keel_payments
WHEN NEW.amount_minor IS NOT NULL AND (typeof(NEW.amount_minor) <> 'integer' OR NEW.amount_minor NOT BETWEEN 1 AND 999999999999999)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: keel_payments_amount_minor_range');
END;
CREATE TRIGGER keel_payments_amount_minor_range_update BEFORE UPDATE OF amount_minor ON keel_payments
WHEN NEW.amount_minor IS NOT NULL AND (typeof(NEW.amount_minor) <> 'integer' OR NEW.amount_minor NOT BETWEEN 1 AND 999999999999999)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: keel_payments_amount_minor_range');
END;
