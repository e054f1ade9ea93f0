"""`remove` kills and frees a sandbox's uid under the registry lock: two removes of one
sandbox may run at once (a cancelled create's cleanup and a destroy), and a uid the first
one freed may already be a new sandbox's when the second would kill it."""

import fcntl
from pathlib import Path

from llmsafespace.runtime.local.layout import Layout
from llmsafespace.runtime.local.teardown import remove
from llmsafespace.runtime.local.uids import UidRegistry

UID = 64999  # no process runs as it here


class LockProbe:
    """Cgroups stand-in whose destroy records whether the registry lock was held."""

    def __init__(self, lock: Path) -> None:
        self.lock = lock
        self.held_during_destroy: list[bool] = []

    def destroy(self, uid: int) -> None:
        with open(self.lock, "w") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.held_during_destroy.append(True)
            else:
                self.held_during_destroy.append(False)


def test_a_uid_is_killed_and_freed_under_the_registry_lock(tmp_path: Path) -> None:
    registry = UidRegistry(tmp_path / "uids", UID, 1)
    layout = Layout(tmp_path / "runtime")
    assert registry.allocate(layout.root, "sb-first", busy=lambda uid: False) == UID
    probe = LockProbe(tmp_path / "uids" / ".lock")
    assert remove(layout, registry, "sb-first", probe) is True  # type: ignore[arg-type]
    assert probe.held_during_destroy == [True]
    assert registry.held() == set()


def test_a_second_remove_leaves_a_uid_another_sandbox_holds_now(tmp_path: Path) -> None:
    registry = UidRegistry(tmp_path / "uids", UID, 1)
    layout = Layout(tmp_path / "runtime")
    registry.allocate(layout.root, "sb-first", busy=lambda uid: False)
    remove(layout, registry, "sb-first", None)
    registry.allocate(layout.root, "sb-second", busy=lambda uid: False)  # the freed uid
    probe = LockProbe(tmp_path / "uids" / ".lock")
    assert remove(layout, registry, "sb-first", probe) is False  # type: ignore[arg-type]
    assert probe.held_during_destroy == []
    assert registry.held_by(layout.root) == {UID: "sb-second"}
