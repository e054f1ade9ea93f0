-- Pause and resume: since when a sandbox is paused (NULL unless `paused`), how long it may
-- stay paused, and whether a call that needs it resumes it. A paused sandbox is still live:
-- its runtime is kept (frozen).
ALTER TABLE sandboxes ADD COLUMN paused_at timestamptz;
ALTER TABLE sandboxes ADD COLUMN paused_timeout integer NOT NULL DEFAULT 86400;
ALTER TABLE sandboxes ADD COLUMN auto_resume boolean NOT NULL DEFAULT false;
CREATE INDEX sandboxes_paused_idx ON sandboxes (paused_at) WHERE status = 'paused';
