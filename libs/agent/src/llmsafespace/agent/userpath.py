"""User code's ``sys.path`` entries: the sandbox's ``PYTHONPATH`` (package installs and the
runtime's packages), each importable the moment something is installed there.

The stock path hook refuses a directory that does not exist yet, and the import system
then skips that entry until caches are invalidated; ``pip install`` (from a shell or a
``subprocess`` in the cell) creates ``/workspace/.packages`` later. A ``FileFinder`` made
up front rescans its directory whenever its mtime changes, including when it appears.
"""

from __future__ import annotations

import os
import sys
from importlib import machinery

PACKAGES = "/workspace/.packages"  # pip's target, here and for POST /sandboxes/{id}/packages
USER_PYTHONPATH = "LLMSAFESPACE_USER_PYTHONPATH"  # the agent hands it to user code as PYTHONPATH
_LOADERS = (
    (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
    (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES),
    (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES),
)


def add_user_path() -> None:
    """Put the sandbox's ``PYTHONPATH`` after the script dir, with finders that see later
    installs."""
    entries = [entry for entry in os.environ.get("PYTHONPATH", PACKAGES).split(os.pathsep) if entry]
    for entry in entries:
        sys.path_importer_cache[entry] = machinery.FileFinder(entry, *_LOADERS)
    sys.path[1:1] = entries
