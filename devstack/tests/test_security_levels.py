"""Issue 14 item 5: `make up` says which security levels this host offers (gVisor missing
went unnoticed until a `high` create answered 400)."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from llmsafespace.devstack.ports import free_port
from llmsafespace.devstack.security_levels import describe


def test_every_level_available_is_listed_plainly() -> None:
    assert describe({"standard": [], "high": []}) == "Security levels: standard; high"


def test_a_level_without_its_required_part_is_unavailable_with_the_fix() -> None:
    line = describe({"standard": [], "high": ["gvisor"]})
    assert line.startswith("Security levels: standard; high UNAVAILABLE (no gvisor;")
    assert "scripts/install-gvisor.sh" in line


def test_a_weaker_level_names_what_it_lacks() -> None:
    line = describe({"standard": ["seccomp", "landlock"], "high": ["cgroups"]})
    assert line == "Security levels: standard (without seccomp, landlock); high (without cgroups)"


async def test_up_prints_the_security_levels_of_this_host(state_dir: Path) -> None:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NATS_URL", "DATABASE_URL", "REDIS_URL")
    }
    environ |= {"LLMSAFESPACE_HOME": str(state_dir), "LLMSAFESPACE_PORT": str(free_port())}
    up = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmsafespace.devstack",
        "up",
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert up.stdout is not None
    try:
        lines = []
        while not (line := (await up.stdout.readline()).decode()).startswith("Security levels:"):
            assert line, f"up ended without naming the security levels: {lines}"
            lines.append(line)
        assert lines[0].startswith("LLMSafeSpace is up.")
        assert "standard" in line
        gvisor = os.access("/usr/bin/runsc", os.X_OK)
        assert ("high UNAVAILABLE (no gvisor" in line) is not gvisor, line
    finally:
        up.send_signal(signal.SIGINT)
        await up.communicate()
    assert up.returncode == 0
