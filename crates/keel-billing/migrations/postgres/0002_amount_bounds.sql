-- keel-billing 2: every stored amount within keel_billing::MAX_AMOUNT_MINOR (999999999999999
-- minor units), the bound keel-api checks on input (422 naming the field). This is the
-- backstop for writes that do not come through the API. A line is never above its invoice's
-- total (quantities are positive, unit amounts not negative), so bounding the total bounds
-- every line too.
-- NOT VALID: rows stored before this bound existed are left as they are (reports sum in i128,
-- so they cannot break a report); only new and updated rows are checked.
ALTER TABLE keel_invoices ADD CONSTRAINT keel_invoices_total_minor_range
    CHECK (total_minor BETWEEN 0 AND 999999999999999) NOT VALID;
ALTER TABLE keel_payments ADD CONSTRAINT keel_payments_amount_minor_range
    CHECK (amount_minor BETWEEN 1 AND 999999999999999) NOT VALID;
