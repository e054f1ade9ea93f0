"""The sandbox's Python startup hook, found by ``site`` at ``/opt/runtime/hooks`` (last on
the sandbox's ``PYTHONPATH``): ``python3 -m pip install`` without network says how to get
packages in when it fails, as the ``pip`` command does.

Without network the sandbox's environment makes pip fail at once (``PIP_NO_INDEX``), with
pip's own "No matching distribution", which names no way out. Only a ``python -m pip``
run with a downloading subcommand in a sandbox without network (``LLMSAFESPACE_OFFLINE``)
is touched, and only its failing exit: the hint goes to stderr before it. pip ends
through ``sys.exit(main())`` (its ``__main__``), so wrapping ``sys.exit`` sees its status.

Copied as is into every runtime (standard library only); ``tools`` takes ``OFFLINE_HINT``
from here for ``npm``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

OFFLINE = "LLMSAFESPACE_OFFLINE"
OFFLINE_HINT = (
    "{tool}: this sandbox has no network, so {tool} cannot download packages. Create the "
    "sandbox with networkAccess {{enabled: true}}, or install through the API: "
    "POST /sandboxes/{{id}}/packages (served from the package mirror configured for exec-svc), "
    "or upload the package files (PUT /sandboxes/{{id}}/files) and install them from there."
)
PIP_DOWNLOADS = frozenset({"install", "download", "wheel"})


def pip_downloads(argv: list[str]) -> bool:
    """Whether ``argv`` (an interpreter's ``sys.orig_argv``) runs ``-m pip`` with a
    subcommand that downloads (anywhere after it: ``pip -q install`` too)."""
    if "-m" not in argv:
        return False
    module = argv.index("-m") + 1
    return argv[module : module + 1] == ["pip"] and not PIP_DOWNLOADS.isdisjoint(argv[module:])


def _hint_on_failure() -> None:
    exit = sys.exit

    def exit_saying_why(status: str | int | None = None) -> NoReturn:
        if status not in (None, 0):
            print(OFFLINE_HINT.format(tool="pip"), file=sys.stderr)
        exit(status)

    sys.exit = exit_saying_why


if os.environ.get(OFFLINE) and pip_downloads(getattr(sys, "orig_argv", [])):
    _hint_on_failure()
