CREATE TABLE executions (
    id                text PRIMARY KEY,
    sandbox_id        text NOT NULL,
    owner_id          text NOT NULL,
    type              text NOT NULL,
    status            text NOT NULL,
    exit_code         integer NOT NULL,
    ended_by          text,
    stdout_bytes      bigint NOT NULL,
    stderr_bytes      bigint NOT NULL,
    started_at        timestamptz NOT NULL,
    completed_at      timestamptz NOT NULL,
    duration_ms       double precision NOT NULL,
    cpu_ms            double precision,
    peak_memory_bytes bigint
);
CREATE INDEX executions_sandbox_idx ON executions (sandbox_id, started_at DESC);
