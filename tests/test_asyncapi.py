"""`make docs`: the AsyncAPI document of the bus is generated from the services' routers."""

import json
import subprocess
import sys
from pathlib import Path

from llmsafespace.contracts import subjects

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "asyncapi.py"
COMMANDS = [value for name, value in vars(subjects).items() if name.isupper() and ".cmd." in value]


def test_the_document_lists_every_command_subject(tmp_path: Path) -> None:
    output = tmp_path / "asyncapi.json"
    subprocess.run([sys.executable, str(SCRIPT), str(output)], check=True, timeout=120)
    document = json.loads(output.read_text())
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert subjects.SANDBOX_CREATE in addresses
    assert set(COMMANDS) <= addresses, sorted(set(COMMANDS) - addresses)
    assert subjects.sandbox_event("{sandbox_id}", "{event}") in addresses
    schemas = document["components"]["schemas"]
    assert {"CreateSandbox", "RunExecution", "ClaimWarmSandbox"} <= set(schemas)
