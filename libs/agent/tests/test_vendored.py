"""The agent's vendored acorn is the version libs/agent/js pins."""

import json
import re
from pathlib import Path

AGENT = Path(__file__).parents[1]


def test_the_vendored_acorn_is_the_locked_version() -> None:
    declared = json.loads((AGENT / "js/package.json").read_text())["dependencies"]["acorn"]
    locked = json.loads((AGENT / "js/package-lock.json").read_text())["packages"]
    source = (AGENT / "src/llmsafespace/agent/acorn.js").read_text()
    vendored = re.search(r'var version = "([^"]+)";', source)
    assert vendored is not None
    assert vendored[1] == declared, "pin acorn exactly in libs/agent/js/package.json"
    assert locked["node_modules/acorn"]["version"] == declared, "npm ci && npm run vendor"
