"""The runtimes on offer: listed, each usable from the API the way its users expect."""

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.stack
NO_NODE_POD = "the node runtime's image is not built for the fake kubelet"


async def _run(api: httpx.AsyncClient, sandbox_id: str, kind: str, content: str) -> dict[str, Any]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": kind, "content": content, "timeout": 120},
        timeout=150,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_the_runtimes_are_listed_with_their_preinstalled_packages(
    api: httpx.AsyncClient,
) -> None:
    listed = await api.get("/runtimes")
    assert listed.status_code == 200, listed.text
    runtimes = {runtime["id"]: runtime for runtime in listed.json()["runtimes"]}
    assert {"python:3.11", "python:3.11-data"} <= set(runtimes), runtimes
    data = runtimes["python:3.11-data"]
    assert "pandas==2.2.3" in data["packages"], data
    assert "packagesDir" not in data, data  # a host path
    assert "interpreter" not in data, data


async def test_an_unknown_runtime_names_every_runtime_on_offer(api: httpx.AsyncClient) -> None:
    response = await api.post("/sandboxes", json={"runtime": "python:2.7"})
    assert response.status_code == 400, response.text
    assert "python:3.11-data" in response.json()["error"]["message"]


@pytest.mark.local_driver("the data runtime's shared prefix is bound by the local driver")
async def test_a_data_sandbox_imports_pandas_and_draws_with_matplotlib(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/sandboxes", json={"runtime": "python:3.11-data", "timeout": 300})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        code = (
            "import pandas as pd, matplotlib, numpy, scipy, sklearn, PIL, requests\n"
            "matplotlib.use('Agg')\n"
            "import matplotlib.pyplot as plt\n"
            "df = pd.DataFrame({'x': [1, 2, 3], 'y': [2, 4, 8]})\n"
            "df.plot(x='x', y='y').figure.savefig('/workspace/plot.png')\n"
            "open('/workspace/plot.png', 'rb').read(8), pd.__version__, int(df.y.sum())"
        )
        drawn = await _run(api, sandbox_id, "code", code)
        assert drawn["status"] == "completed", drawn
        assert drawn["result"] == "(b'\\x89PNG\\r\\n\\x1a\\n', '2.2.3', 14)", drawn
        shell = await _run(
            api, sandbox_id, "command", "python -c 'import pandas; print(pandas.__file__)'"
        )
        assert shell["stdout"].startswith("/opt/runtime/site-packages/pandas/"), shell
        written = await _run(api, sandbox_id, "command", "touch /opt/runtime/site-packages/mine")
        assert written["exitCode"] != 0, written  # shared by every data sandbox: read-only
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")


@pytest.mark.local_driver(NO_NODE_POD)
async def test_a_node_sandbox_runs_javascript_statefully_and_reports_errors(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/sandboxes", json={"runtime": "node:20", "timeout": 300})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        first = await _run(api, sandbox_id, "code", "var total = 40; console.log('set', total)")
        assert first["status"] == "completed", first
        assert first["stdout"] == "set 40\n", first
        second = await _run(api, sandbox_id, "code", "total + 2")
        assert second["result"] == "42", second  # the context persists between calls
        awaited = await _run(api, sandbox_id, "code", "Promise.resolve({ok: [1, 2]})")
        assert awaited["result"] == "{ ok: [ 1, 2 ] }", awaited
        top = "const got = await Promise.resolve(total); got + 1"  # a top-level await
        assert (await _run(api, sandbox_id, "code", top))["result"] == "41"
        assert (await _run(api, sandbox_id, "code", "got"))["result"] == "40"
        failed = await _run(api, sandbox_id, "code", "null.field")
        assert failed["status"] == "failed", failed
        assert failed["error"]["name"] == "TypeError", failed
        assert "reading 'field'" in failed["error"]["value"], failed
        assert "<cell-6>" in failed["error"]["traceback"], failed
        shell = await _run(api, sandbox_id, "command", "node -e 'console.log(6*7)' && npm -v")
        assert shell["exitCode"] == 0, shell
        assert shell["stdout"].startswith("42\n"), shell
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")


@pytest.mark.parametrize(
    ("runtime", "probe"),
    [
        ("python:3.11", "import os; print(os.environ.get('GREETING'), os.getcwd())"),
        pytest.param(
            "node:20",
            "console.log(process.env.GREETING, process.cwd())",
            marks=pytest.mark.local_driver(NO_NODE_POD),
        ),
    ],
)
async def test_a_code_execution_takes_env_and_working_dir_for_itself(
    api: httpx.AsyncClient, runtime: str, probe: str
) -> None:
    """As a command does; the next cell has neither, and a directory that is not there is
    a 400 before anything runs."""
    created = await api.post("/sandboxes", json={"runtime": runtime})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    execute = f"/sandboxes/{sandbox_id}/execute"
    try:
        given = {"type": "code", "content": probe, "env": {"GREETING": "hi"}, "workingDir": "/tmp"}
        shown = await api.post(execute, json=given)
        assert shown.status_code == 200, shown.text
        assert shown.json()["stdout"].split() == ["hi", "/tmp"], shown.text
        after = await _run(api, sandbox_id, "code", probe)
        assert after["stdout"].split()[1] == "/workspace", after
        assert after["stdout"].split()[0] in ("None", "undefined"), after
        missing = await api.post(execute, json={**given, "workingDir": "/nope"})
        assert missing.status_code == 400, missing.text
        assert "/nope is not a directory" in missing.json()["error"]["message"], missing.text
        fields = missing.json()["error"]["details"]["fields"]  # as every invalid_request has
        assert list(fields) == ["workingDir"], missing.text
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")
