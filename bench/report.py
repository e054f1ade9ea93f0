"""Figures side by side with the peer: the printed table and the JSON record."""

import json
import os
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from harness import Stats

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Target:
    """What we aim for: `stat` of our figure at most (or at least) `bound`; with
    `relative`, the bound is on ours / the peer's (the same stat of both)."""

    bound: float
    at_most: bool = True
    stat: Literal["median", "p99"] = "median"
    relative: bool = False

    def met(self, ours: Stats, peer: Stats | None = None) -> bool | None:
        value = self._value(ours)
        if value is not None and self.relative:
            theirs = self._value(peer) if peer is not None else None
            value = value / theirs if theirs else None
        if value is None:
            return None
        return value <= self.bound if self.at_most else value >= self.bound

    def _value(self, stats: Stats) -> float | None:
        return stats.median if self.stat == "median" else stats.p99

    def __str__(self) -> str:
        sign = "≤" if self.at_most else "≥"
        stat = "" if self.stat == "median" else f"{self.stat} "
        bound = f"{self.bound:g}x KG" if self.relative else f"{self.bound:g}"
        return f"{stat}{sign} {bound}"


@dataclass(frozen=True)
class Figure:
    """One row: our figure, the peer's (when it has one) and our target."""

    number: int  # the figure's number in issue 10's list
    name: str
    unit: str
    ours: Stats | None
    peer: Stats | None = None
    target: Target | None = None
    note: str = ""
    examples: tuple[str, ...] = ()  # e.g. the first errors, printed below the table

    @property
    def ratio(self) -> float | None:
        """ours / theirs, medians (for times lower is better, for rates higher)."""
        if self.ours is None or self.peer is None or not self.peer.median:
            return None
        return self.ours.median / self.peer.median


@dataclass
class Run:
    """Everything one `make bench` measured, plus the conditions it measured under."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def add(self, figures: list[Figure]) -> None:
        self.figures.extend(figures)

    def write(self, conditions: Mapping[str, object]) -> Path:
        RESULTS.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = RESULTS / f"bench-{stamp}.json"
        record = {
            "started": self.started,
            "seconds": round(time.time() - self.started, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": sys.version.split()[0],
                "loadBefore": self.load_before,
                "loadAfter": os.getloadavg(),
            },
            "conditions": conditions,
            "figures": [
                {**asdict(figure), "target": _target(figure), "ratio": figure.ratio}
                for figure in self.figures
            ],
            "notes": self.notes,
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path


def _target(figure: Figure) -> dict[str, object] | None:
    if figure.target is None:
        return None
    met = figure.target.met(figure.ours, figure.peer) if figure.ours else None
    return {**asdict(figure.target), "text": str(figure.target), "met": met}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(figures: list[Figure]) -> str:
    """The side-by-side table: ours (median, p95, p99, n), the peer's median, the ratio."""
    header = ("#", "figure", "unit", "median", "p95", "p99", "n", "KG median", "ours/KG", "goal")
    rows: list[tuple[str, ...]] = [header]
    for figure in figures:
        ours = figure.ours
        target = ""
        if figure.target is not None:
            met = figure.target.met(ours, figure.peer) if ours else None
            target = f"{figure.target} {'-' if met is None else 'PASS' if met else 'MISS'}"
        rows.append(
            (
                str(figure.number),
                figure.name + (f" ({figure.note})" if figure.note else ""),
                figure.unit,
                _number(ours.median) if ours else "failed",
                _number(ours.p95 if ours else None),
                _number(ours.p99 if ours else None),
                str(ours.n) if ours else "-",
                _number(figure.peer.median) if figure.peer else "",
                f"{figure.ratio:.2f}" if figure.ratio is not None else "",
                target,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    left = {1, 2, 9}
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column in left else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
