-- `warm_claim`: the row asked warmpool-svc for a warm runtime and has not settled it
-- (adopted it, or had the claim released); see ClaimWarmSandbox's handover.
ALTER TABLE sandboxes ADD COLUMN IF NOT EXISTS warm_claim BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS sandboxes_warm_claim ON sandboxes (id) WHERE warm_claim;
-- What each ordinary user's warm pool reserves of its owner's quota, as warmpool-svc
-- reports it (cmd.sandbox.reserve, on every change and again at its start); counted in
-- every quota check of that owner.
CREATE TABLE IF NOT EXISTS pool_reservations (
    pool TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    sandboxes INTEGER NOT NULL,
    memory_bytes BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS pool_reservations_owner ON pool_reservations (owner_id);
