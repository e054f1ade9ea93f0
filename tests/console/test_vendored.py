"""The console's vendored npm files are the versions console/package-lock.json pins."""

import json
from pathlib import Path

ROOT = Path(__file__).parents[2]
STATIC = ROOT / "services/api-gateway/src/llmsafespace/gateway/static/console"


def test_the_vendored_files_are_the_locked_versions() -> None:
    declared = json.loads((ROOT / "console/package.json").read_text())["dependencies"]
    locked = json.loads((ROOT / "console/package-lock.json").read_text())["packages"]
    vendored = json.loads((STATIC / "vendor/versions.json").read_text())
    assert set(vendored) == set(declared)
    for name, version in vendored.items():
        assert declared[name] == version, f"{name}: pin it exactly in console/package.json"
        assert locked[f"node_modules/{name}"]["version"] == version, f"{name}: npm run vendor"


def test_the_page_loads_only_its_own_files() -> None:
    for page in [STATIC / "index.html", *(STATIC / "js").glob("*.js")]:
        text = page.read_text()
        assert "http://" not in text, page
        assert "https://" not in text, page
        assert "<script>" not in text, page
