-- Pool names are per owner: an ordinary user's pool is keyed by its name and a digest of
-- owner and name (pool_names.pool_key); admins' shared pools keep their names.
UPDATE warm_sandboxes w
SET pool = left(p.name, 42) || '-'
    || left(encode(sha256(convert_to(p.owner_id || '/' || p.name, 'UTF8')), 'hex'), 20)
FROM warm_pools p
WHERE w.pool = p.name AND NOT p.shared;
UPDATE warm_pools
SET name = left(name, 42) || '-'
    || left(encode(sha256(convert_to(owner_id || '/' || name, 'UTF8')), 'hex'), 20)
WHERE NOT shared;
