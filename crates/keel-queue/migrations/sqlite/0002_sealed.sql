-- Sealed job arguments: `sealed` says the payload holds envelopes ({"$sealed": {"kid", "ct"}})
-- that only the worker opens; completing such a job erases them (they become "[sealed]").
ALTER TABLE keel_jobs ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1));
