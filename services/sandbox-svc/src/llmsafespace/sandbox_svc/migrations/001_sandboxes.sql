CREATE TABLE sandboxes (
    id             text PRIMARY KEY,
    owner_id       text NOT NULL,
    status         text NOT NULL,
    status_reason  text,
    runtime        text NOT NULL,
    security_level text NOT NULL,
    timeout        integer NOT NULL,
    resources      jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}',
    from_warm_pool boolean NOT NULL DEFAULT false,
    endpoint       text,
    token          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    terminated_at  timestamptz
);
CREATE INDEX sandboxes_owner_idx ON sandboxes (owner_id, created_at DESC);
CREATE INDEX sandboxes_live_idx ON sandboxes (expires_at) WHERE status IN ('creating', 'running');
