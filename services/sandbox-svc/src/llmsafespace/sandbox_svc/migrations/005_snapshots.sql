-- Snapshots (see snapshots.py): a workspace as content-addressed chunks (sha256 names, in
-- order), with the env, metadata and runtime of the sandbox it was taken from. A sandbox
-- now keeps the env it was created with, so a snapshot can carry it.
ALTER TABLE sandboxes ADD COLUMN env jsonb NOT NULL DEFAULT '{}';
CREATE TABLE snapshots (
    id             text PRIMARY KEY,
    owner_id       text NOT NULL,
    name           text NOT NULL,
    sandbox_id     text NOT NULL,
    runtime        text NOT NULL,
    metadata       jsonb NOT NULL,
    env            jsonb NOT NULL,
    chunks         text[] NOT NULL,
    size_bytes     bigint NOT NULL,
    stored_bytes   bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_owner_idx ON snapshots (owner_id, created_at DESC);
