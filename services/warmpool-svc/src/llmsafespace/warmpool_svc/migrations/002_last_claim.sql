-- When a sandbox was last claimed from the pool: autoscaling holds its size until no claim
-- came for `scaleDownDelay` seconds (kept here, as assigned rows are pruned once gone).
ALTER TABLE warm_pools ADD COLUMN last_claim_at timestamptz;
