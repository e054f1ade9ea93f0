-- Templates (built once in a builder sandbox, then bound read-only into their sandboxes),
-- and which template each sandbox was made from (a template in use cannot be deleted).
CREATE TABLE templates (
    name               text PRIMARY KEY,
    owner_id           text NOT NULL,
    spec               jsonb NOT NULL,
    public             boolean NOT NULL DEFAULT false,
    status             text NOT NULL,
    reason             text,
    log_tail           text NOT NULL DEFAULT '',
    build_sandbox_id   text,
    build_execution_id text,
    layer              text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE sandboxes ADD COLUMN template text;
CREATE INDEX sandboxes_template_idx ON sandboxes (template) WHERE template IS NOT NULL;
