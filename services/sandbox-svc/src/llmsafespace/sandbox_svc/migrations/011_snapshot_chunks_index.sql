-- Which snapshots use a chunk (`chunks @> ARRAY[name]`): a deletion's chunk sweep and the
-- reaper's sweep of chunks no snapshot uses ask it of every name they consider.
CREATE INDEX IF NOT EXISTS snapshots_chunks_idx ON snapshots USING gin (chunks);
