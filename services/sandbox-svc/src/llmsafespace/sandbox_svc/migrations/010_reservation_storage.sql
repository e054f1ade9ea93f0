-- The workspace storage a warm pool reserves of its owner's storage quota (its size times
-- each sandbox's `resources.ephemeralStorage`), beside its sandboxes and memory.
ALTER TABLE pool_reservations ADD COLUMN IF NOT EXISTS storage_bytes BIGINT NOT NULL DEFAULT 0;
