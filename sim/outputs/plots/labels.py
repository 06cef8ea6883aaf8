"""Names and values written on the maps without overlapping: a greedy placement.

Labels are tried in order of importance (a province's area, a prefecture's population,
as the caller ranks them); each is measured with the renderer's own text extents and
kept only if its box, padded, meets no box kept before and stays inside the axes. The
rest are left out: a crowded coast shows its main names, not a smudge.

The boxes are measured on the axes where they will be drawn: a map's axes sit at fixed
margins (no layout engine moves them after the labels are placed), with the map's
aspect applied first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from sim.model.outlines import Outlines
from sim.model.reference import areas
from sim.outputs.place_names import label_point, latin_name


@dataclass(frozen=True)
class Label:
    """A text to write at (x, y) in data coordinates; higher ``rank`` is placed first."""

    x: float
    y: float
    text: str
    rank: float


def place_labels(ax: Axes, labels: Sequence[Label], *, pad_px: float = 2.0, **style: Any) -> int:
    """Write the labels that fit, most important first; returns how many were written.

    ``style``: keyword arguments of :meth:`Axes.text` (fontsize, colour, bbox...).
    """
    if not labels:
        return 0
    fig = cast(Figure, ax.figure)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]  # untyped in matplotlib
    ax.apply_aspect()
    frame = ax.get_window_extent(renderer)
    kept: list[Bbox] = []
    for label in sorted(labels, key=lambda a: -a.rank):
        if not (np.isfinite(label.x) and np.isfinite(label.y)):
            continue
        text: Text = ax.text(
            label.x, label.y, label.text, ha="center", va="center", clip_on=True, **style
        )
        box = text.get_window_extent(renderer).padded(pad_px)
        inside = (
            box.x0 >= frame.x0 and box.y0 >= frame.y0 and box.x1 <= frame.x1 and box.y1 <= frame.y1
        )
        if inside and not any(box.overlaps(other) for other in kept):
            kept.append(box)
        else:
            text.remove()
    return len(kept)


@cache
def population_weights() -> dict[str, float]:
    """Each prefecture's population weight by adcode (seeds/prefectures.csv)."""
    table = areas()
    return dict(zip(table["adcode"], table["population_weight"].astype(float), strict=True))


def _in_view(ax: Axes, x: float, y: float) -> bool:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    return bool(x0 <= x <= x1 and y0 <= y <= y1)


def name_places(ax: Axes, outlines: Outlines, *, national: bool) -> int:
    """Province names on a national map, prefecture names on a provincial one.

    Provinces rank by area (the big ones always have room), prefectures by population
    (the cities a planner looks for first). Only places whose name point is in view.
    """
    labels: list[Label] = []
    if national:
        for region in outlines.provinces:
            x, y = label_point(region)
            x0, y0, x1, y1 = region.bounds
            labels.append(Label(x, y, latin_name(region), (x1 - x0) * (y1 - y0)))
        style: dict[str, Any] = {"fontsize": 7.5, "color": "#222222", "fontweight": "bold"}
    else:
        weight = population_weights()
        for region in outlines.cells:
            x, y = label_point(region)
            if _in_view(ax, x, y):
                labels.append(Label(x, y, latin_name(region), float(weight.get(region.adcode, 0))))
        style = {"fontsize": 7, "color": "#333333"}
    return place_labels(ax, labels, zorder=5, **style)
