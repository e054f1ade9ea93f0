"""Which security levels the running stack offers, for the `up` banner: sandbox-svc's
`/ready` reports what its driver's sandboxes lack on this host, per level."""

from collections.abc import Mapping

import httpx

# What makes a level unavailable rather than weaker (its creates answer 400).
REQUIRED = {"high": "gvisor"}
HINTS = {"gvisor": "install runsc: bash scripts/install-gvisor.sh"}


async def missing_by_level(ready_url: str) -> Mapping[str, list[str]]:
    """sandbox-svc's `protections.missingByLevel` ({} when its driver does not say)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        body = (await client.get(ready_url)).json()
    by_level = body.get("protections", {}).get("missingByLevel")
    return by_level if isinstance(by_level, dict) else {}


def describe(by_level: Mapping[str, list[str]]) -> str:
    """One line: each level, available (lacking what, if anything) or not (and how to fix)."""
    parts = []
    for level, missing in by_level.items():
        required = REQUIRED.get(level)
        if required in missing:
            hint = HINTS.get(required, "")
            parts.append(f"{level} UNAVAILABLE (no {required}{'; ' + hint if hint else ''})")
        elif missing:
            parts.append(f"{level} (without {', '.join(missing)})")
        else:
            parts.append(level)
    return "Security levels: " + ("; ".join(parts) if parts else "as the driver decides")
