-- The sandbox-svc instance that inserted a `creating` row (see instance.py): while that
-- instance lives it holds a session advisory lock on this key, so a row whose creator is
-- gone (killed mid-create) is known to be abandoned at once, not after a grace period.
ALTER TABLE sandboxes ADD COLUMN creator integer;
