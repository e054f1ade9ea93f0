-- The template the snapshotted sandbox was made from (NULL: none): a sandbox started from
-- the snapshot binds it again, since the template's packages and files are not in the
-- workspace the snapshot keeps.
ALTER TABLE snapshots ADD COLUMN template text;
