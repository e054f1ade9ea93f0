-- Pause on a driver that cannot freeze (Kubernetes): the workspace goes to an internal
-- snapshot (not listed, not counted in the owner's quota) and the runtime is destroyed;
-- resume recreates it. `pause_snapshot` names that snapshot while the sandbox has no
-- runtime (paused) or its new runtime is being restored (resuming); `network_access` is
-- kept so the new runtime gets the network the sandbox was created with.
ALTER TABLE sandboxes ADD COLUMN pause_snapshot text;
ALTER TABLE sandboxes ADD COLUMN network_access jsonb;
ALTER TABLE snapshots ADD COLUMN internal boolean NOT NULL DEFAULT false;
