"""matplotlib figures as results, as Jupyter's inline backend makes them.

When user code imports matplotlib, its backend becomes the agent's (``mplbackend``), unless
``MPLBACKEND`` says otherwise: ``plt.show()`` then displays the open figures, and figures
left open are displayed at the end of the cell. Nothing is set in the environment (a
subprocess's matplotlib keeps its own default) and nothing runs until matplotlib is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import ModuleType

from .protocol import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.abc would load importlib.resources and more in every agent
    from importlib.machinery import ModuleSpec
    from typing import Any

BACKEND = "module://llmsafespace.agent.mplbackend"


class _SelectBackend:
    """matplotlib's own loader, then the agent's backend in its rcParams."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if "MPLBACKEND" not in os.environ:
            module.rcParams["backend"] = BACKEND


class MatplotlibFinder:
    """Finds nothing itself: wraps the loader of ``matplotlib`` to select the backend (then
    leaves ``sys.meta_path``; it stays while matplotlib is not installed)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != "matplotlib":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec: ModuleSpec | None = find(fullname, path, target) if find else None
            if spec is not None and spec.loader is not None:
                sys.meta_path.remove(self)
                spec.loader = _SelectBackend(spec.loader)  # type: ignore[assignment]
                return spec
        return None


def watch() -> None:
    """Select the agent's backend when matplotlib is imported (from now on)."""
    sys.meta_path.insert(0, MatplotlibFinder())


def flush() -> None:
    """Display the figures still open (and close them), if the agent's backend is in use."""
    backend = sys.modules.get("llmsafespace.agent.mplbackend")
    matplotlib = sys.modules.get("matplotlib")
    if backend is None or matplotlib is None or matplotlib.rcParams["backend"] != BACKEND:
        return
    backend.show()
