CREATE TABLE warm_pools (
    name            text PRIMARY KEY,
    owner_id        text NOT NULL,
    shared          boolean NOT NULL DEFAULT false,  -- an admin's pool serves every user
    spec            jsonb NOT NULL,
    runtime         text NOT NULL,
    security_level  text NOT NULL,
    resources       jsonb NOT NULL,
    desired         integer NOT NULL DEFAULT 0,
    last_scale_time timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per warm sandbox; `id` is the runtime's id (`wp-…`). A row is `pending` while
-- it starts, `ready` when it can be claimed, `assigned` once handed out (never ready again).
CREATE TABLE warm_sandboxes (
    id             text PRIMARY KEY,
    pool           text NOT NULL,
    runtime        text NOT NULL,
    security_level text NOT NULL,
    resources      jsonb NOT NULL,
    state          text NOT NULL,
    endpoint       text,
    token          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    ready_at       timestamptz,
    assigned_at    timestamptz,
    assigned_to    text
);
CREATE INDEX warm_sandboxes_ready_idx
    ON warm_sandboxes (runtime, security_level, ready_at) WHERE state = 'ready';
CREATE INDEX warm_sandboxes_pool_idx ON warm_sandboxes (pool, state);
