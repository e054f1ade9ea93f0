"""Pool names are per owner. A client names its pool; inside the service (rows, events,
locks, metrics) a pool is known by its key: an admin's (shared) pool by its name, an
ordinary user's by its name and a digest of owner and name — so two users' `py` pools
are two pools, and a create never answers 409 for a name another user holds."""

import hashlib

from llmsafespace.contracts import Caller, Role

_PREFIX = 42  # of the name kept in a key: 42 + "-" + 20 hex digits fits a PoolName's 63


def pool_key(caller: Caller, name: str) -> str:
    """The key of `caller`'s pool called `name`."""
    if caller.role is Role.ADMIN:
        return name
    digest = hashlib.sha256(f"{caller.user_id}/{name}".encode()).hexdigest()[:20]
    return f"{name[:_PREFIX]}-{digest}"
