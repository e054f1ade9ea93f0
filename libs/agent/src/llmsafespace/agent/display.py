"""Rich results: IPython's display protocol turned into MIME bundles, without IPython.

An object offers richer forms through ``_repr_mimebundle_(include, exclude)`` and the
``_repr_<type>_`` methods; ``text/plain`` is always there (its ``repr``). Binary forms
(PNG, JPEG) travel as base64. A bundle past ``MAX_BUNDLE_BYTES`` keeps its text/plain
(shortened if need be), loses its largest entries and says ``"truncated": true``.
A method that raises or returns the wrong type is skipped: a result never fails a cell.
"""

from __future__ import annotations

import builtins
import json
import sys
from collections.abc import Callable, Collection
from functools import partial

from .protocol import TYPE_CHECKING

MAX_BUNDLE_BYTES = 256 * 1024  # per bundle, data values as sent (base64 for binary)
TEXT = "text/plain"
_SHORTENED = "\n[truncated: the result exceeded the display size limit]"

METHODS = {
    "image/png": "_repr_png_",
    "image/jpeg": "_repr_jpeg_",
    "image/svg+xml": "_repr_svg_",
    "text/html": "_repr_html_",
    "text/markdown": "_repr_markdown_",
    "application/json": "_repr_json_",
    "text/latex": "_repr_latex_",
}
BINARY = frozenset({"image/png", "image/jpeg"})

if TYPE_CHECKING:
    from typing import Any

    Bundle = dict[str, Any]
else:
    Bundle = dict
"""``{"data": {mime: value}, "isMainResult": bool, "truncated": bool}``."""

Publish = Callable[[Bundle], None]


def _wanted(mime: str, include: Collection[str] | None, exclude: Collection[str] | None) -> bool:
    return (include is None or mime in include) and (exclude is None or mime not in exclude)


def _value(mime: str, value: Any) -> Any:
    """The JSON form of one entry; None when the method returned nothing usable."""
    if isinstance(value, tuple) and len(value) == 2:  # (data, metadata)
        value = value[0]
    if value is None:
        return None
    if mime in BINARY:
        if isinstance(value, bytes | bytearray | memoryview):
            import base64  # on the first image: idle workers stay small

            return base64.b64encode(bytes(value)).decode("ascii")
        return value if isinstance(value, str) else None  # already base64
    if mime == "application/json":
        if isinstance(value, str):
            value = json.loads(value)
        json.dumps(value)  # raises if it cannot be sent
        return value
    return value if isinstance(value, str) else None


def _from_mimebundle(obj: Any, include: Any, exclude: Any) -> dict[str, Any]:
    method = getattr(obj, "_repr_mimebundle_", None)
    if not callable(method):
        return {}
    offered = method(include=include, exclude=exclude)
    if isinstance(offered, tuple):  # (data, metadata)
        offered = offered[0]
    return dict(offered) if isinstance(offered, dict) else {}


def _figure_png(obj: Any) -> bytes | None:
    """A matplotlib figure as PNG (only if matplotlib is already imported)."""
    figure = sys.modules.get("matplotlib.figure")
    if figure is None or not isinstance(obj, figure.Figure):
        return None
    from .mplbackend import png

    return png(obj)


def _same(value: Any) -> Any:
    return value


def _call(obj: Any, name: str, mime: str) -> Any:
    method = getattr(obj, name, None)
    if callable(method):
        return method()
    return _figure_png(obj) if mime == "image/png" else None


def _add(data: dict[str, Any], mime: str, produce: Callable[[], Any]) -> None:
    """``data[mime]`` from ``produce()``, unless it raises or gives nothing usable."""
    try:
        converted = _value(mime, produce())
    except Exception:  # a broken formatter only loses its form
        return
    if converted is not None:
        data[mime] = converted


def mimebundle(
    obj: Any,
    *,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
) -> dict[str, Any]:
    """The MIME data ``obj`` offers, as IPython's display formatter computes it."""
    data: dict[str, Any] = {}
    try:
        offered = _from_mimebundle(obj, include, exclude)
    except Exception:  # a broken formatter only loses its forms
        offered = {}
    for mime, value in offered.items():
        if isinstance(mime, str) and _wanted(mime, include, exclude):
            _add(data, mime, partial(_same, value))
    for mime, name in METHODS.items():
        if mime not in data and _wanted(mime, include, exclude):
            _add(data, mime, partial(_call, obj, name, mime))
    if TEXT not in data:
        data[TEXT] = _repr(obj)
    return data


def _repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:
        return f"<repr of {type(obj).__name__} failed: {type(exc).__name__}: {exc}>"


def _size(value: Any) -> int:
    """Bytes as sent (JSON-escaped: control and non-ASCII characters cost more)."""
    return len(json.dumps(value))


def _shortened(text: str, limit: int) -> str:
    """The longest start of ``text``, with the marker, within ``limit`` bytes as sent."""
    room = max(0, limit - _size(_SHORTENED))
    keep = min(len(text), room)
    while keep > 0 and (size := _size(text[:keep])) > room:
        keep = min(keep - 1, keep * room // size)
    return text[:keep] + _SHORTENED


def capped(data: dict[str, Any], main: bool, limit: int = MAX_BUNDLE_BYTES) -> Bundle:
    """The bundle of ``data``, within ``limit`` bytes: the largest entries but text/plain
    go first; text/plain itself is shortened last."""
    sizes = {mime: _size(value) for mime, value in data.items()}
    truncated = False
    for mime in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if sum(sizes.values()) <= limit:
            break
        if mime != TEXT:
            truncated = True
            del data[mime], sizes[mime]
    text = data.get(TEXT)
    if isinstance(text, str) and sizes.get(TEXT, 0) > limit:
        truncated = True
        data[TEXT] = _shortened(text, limit)
    return {"data": data, "isMainResult": main, "truncated": truncated}


class Display:
    """The ``display`` builtin and the cell's main result, handed to ``publish``."""

    def __init__(self, publish: Publish, limit: int = MAX_BUNDLE_BYTES) -> None:
        self._publish = publish
        self._limit = limit

    def show(self, obj: Any, *, main: bool = False, **options: Any) -> Bundle:
        """Publish one object (its bundle, capped); returns that bundle."""
        bundle = capped(mimebundle(obj, **options), main, self._limit)
        self._publish(bundle)
        return bundle

    def __call__(
        self,
        *objs: Any,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        raw: bool = False,
        **_ignored: Any,
    ) -> None:
        """``display(obj, ...)`` as in IPython: each object becomes one result, in order.
        With ``raw=True`` each object already is a ``{mime: data}`` dict."""
        for obj in objs:
            if raw and isinstance(obj, dict):
                data: dict[str, Any] = {}
                for mime, value in obj.items():
                    if _wanted(str(mime), include, exclude):
                        _add(data, str(mime), partial(_same, value))
                data.setdefault(TEXT, "")
                self._publish(capped(data, False, self._limit))
            else:
                self.show(obj, include=include, exclude=exclude)

    def install(self) -> None:
        """Become the ``display`` builtin (the matplotlib backend shows figures with it)."""
        builtins.display = self  # type: ignore[attr-defined]
