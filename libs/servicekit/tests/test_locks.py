"""Advisory lock keys: one name each, no two alike within a key space."""

from llmsafespace.servicekit import locks

ONE_KEY = ("MIGRATIONS", "SANDBOX_REAPER", "SNAPSHOT_CHUNKS", "WARMPOOL_SWEEP")
TWO_KEY = ("SANDBOX_INSTANCE", "OWNER_QUOTA", "SNAPSHOT_QUOTA")


def test_every_lock_is_in_one_key_space() -> None:
    named = {name for name in vars(locks) if name.isupper()}
    assert named == set(ONE_KEY) | set(TWO_KEY)


def test_no_two_locks_in_a_key_space_share_a_key() -> None:
    for space in (ONE_KEY, TWO_KEY):
        keys = [getattr(locks, name) for name in space]
        assert len(set(keys)) == len(keys), dict(zip(space, keys, strict=True))


def test_two_key_classes_fit_an_int4() -> None:
    for name in TWO_KEY:
        assert -(2**31) <= getattr(locks, name) < 2**31, name
