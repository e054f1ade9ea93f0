-- The runtime's own id for the sandbox: the sandbox id for a cold create, the warm
-- sandbox's id for one claimed from a pool.
ALTER TABLE sandboxes ADD COLUMN runtime_id text;
UPDATE sandboxes SET runtime_id = id WHERE runtime_id IS NULL;
CREATE INDEX sandboxes_metadata_idx ON sandboxes USING gin (metadata);
