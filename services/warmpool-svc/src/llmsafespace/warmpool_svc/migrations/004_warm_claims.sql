-- The claim ledger: one row per sandbox that asked for a warm runtime (see
-- ClaimWarmSandbox's handover). `runtime_id` is what the claim assigned (NULL: a miss);
-- `released`: the sandbox will never run on it, and a later claim for it is a miss.
CREATE TABLE IF NOT EXISTS warm_claims (
    sandbox_id TEXT PRIMARY KEY,
    runtime_id TEXT,
    released BOOLEAN NOT NULL DEFAULT false,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warm_claims_claimed_at ON warm_claims (claimed_at);
