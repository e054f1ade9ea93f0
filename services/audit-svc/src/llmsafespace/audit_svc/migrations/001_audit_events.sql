-- One row per event of the JetStream events stream. (stream_created, seq) identifies an
-- event even if the stream is ever recreated and its sequence starts again at 1.
CREATE TABLE audit_events (
    stream_created timestamptz NOT NULL,
    seq            bigint NOT NULL,
    subject        text NOT NULL,
    kind           text NOT NULL,
    event          text NOT NULL,
    sandbox_id     text,
    execution_id   text,
    user_id        text,
    outcome        text,
    payload        jsonb NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_created, seq)
);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, seq);
CREATE INDEX audit_events_sandbox_idx ON audit_events (sandbox_id, occurred_at);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, occurred_at);
