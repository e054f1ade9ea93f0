"""The agent's matplotlib backend (``module://llmsafespace.agent.mplbackend``): Agg rendering;
``show()`` displays every open figure as a PNG result and closes it. Imported by matplotlib
only (see ``figures``)."""

from __future__ import annotations

import builtins
import io
from typing import Any

from matplotlib import pyplot
from matplotlib._pylab_helpers import Gcf
from matplotlib.backends.backend_agg import FigureCanvasAgg

FigureCanvas = FigureCanvasAgg


def png(figure: Any) -> bytes:
    """``figure`` rendered as PNG, trimmed to what it draws (as Jupyter shows it)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def show(*_args: Any, **_kwargs: Any) -> None:
    """Display the open figures, in the order they were made, then close them."""
    managers = Gcf.get_all_fig_managers()
    if not managers:
        return
    for manager in managers:
        builtins.display(manager.canvas.figure)  # type: ignore[attr-defined]
    pyplot.close("all")
