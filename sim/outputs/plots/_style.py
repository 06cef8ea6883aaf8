"""What every figure shares: colours, the figure itself, interval bars, target lines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from sim.analysis.kpi_catalogue import CATALOGUE, is_share
from sim.model.reference import PROVINCE_PINYIN

TARGET_COLOUR = "#c0392b"
SURGE_COLOUR = "#e67e22"
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def province_label(adcode: str | int) -> str:
    """``410100 Henan``: an adcode with its province in pinyin (renders in any font)."""
    code = str(adcode)
    return f"{code} {PROVINCE_PINYIN.get(code[:2], '')}".strip()


def kpi_scale(kpi: str) -> float:
    """What a KPI is multiplied by on an axis: 100 for a share (shown in percent), else 1."""
    return 100.0 if is_share(kpi) else 1.0


def axis_label(kpi: str) -> str:
    """The unit of a KPI's axis (``percent``, ``hours``...; ``value`` when not catalogued)."""
    entry = CATALOGUE.get(kpi)
    return entry.axis_label if entry is not None else "value"


def new_figure(width: float, height: float) -> Figure:
    """A figure laid out by matplotlib's constrained layout (panels of varying content)."""
    return Figure(figsize=(width, height), layout="constrained")


@dataclass(frozen=True)
class Margins:
    """Where a figure's grid of axes sits, in inches: from each edge of the figure, and
    between the columns (``gap_x``) and rows (``gap_y``) of its ``ncols`` x ``nrows``."""

    left: float
    right: float
    bottom: float
    top: float
    gap_x: float = 0.0
    gap_y: float = 0.0
    ncols: int = 1
    nrows: int = 1


def fixed_figure(width: float, height: float, margins: Margins) -> Figure:
    """A figure whose axes grid sits at fixed margins (inches), with no layout engine.

    For a figure whose titles, axis labels and tick labels take a known room: the
    margins are those the constrained layout gave it, with a little to spare. The
    constrained layout measures every text of the figure at each save, again before
    drawing it: half the time of saving such a figure.
    """
    m = margins
    fig = Figure(figsize=(width, height))
    cell_w = (width - m.left - m.right - (m.ncols - 1) * m.gap_x) / m.ncols
    cell_h = (height - m.bottom - m.top - (m.nrows - 1) * m.gap_y) / m.nrows
    fig.subplots_adjust(
        left=m.left / width,
        right=1.0 - m.right / width,
        bottom=m.bottom / height,
        top=1.0 - m.top / height,
        wspace=m.gap_x / cell_w,
        hspace=m.gap_y / cell_h,
    )
    return fig


def text_width_in(texts: Iterable[str], fontsize: float) -> float:
    """The width of the widest of ``texts`` in inches, at ``fontsize`` points in the
    default font (measured as matplotlib lays text out; 0 for none)."""
    renderer = RendererAgg(1, 1, 72)  # type: ignore[no-untyped-call]  # 72 dpi: pixel = point
    font = FontProperties(size=fontsize)
    measure = renderer.get_text_width_height_descent
    widths = [measure(t, font, ismath=False)[0] for t in texts]  # type: ignore[no-untyped-call]
    return max(widths, default=0.0) / 72.0


def errorbar_x(values: pd.DataFrame, scale: float, clip: tuple[float, float] | None) -> np.ndarray:
    """Asymmetric x errors from mean/low/high; zero where there is no interval."""
    mean = values["mean"].to_numpy(float) * scale
    low = values["low"].to_numpy(float) * scale
    high = values["high"].to_numpy(float) * scale
    if clip is not None:
        low, high = np.clip(low, *clip), np.clip(high, *clip)
    err = np.vstack((mean - low, high - mean))
    return np.where(np.isfinite(err), np.maximum(err, 0.0), 0.0)


def target_line(draw: Callable[..., Any], percent: float) -> None:
    """A published target across a panel: ``draw`` is the axes' axvline or axhline."""
    draw(
        percent, color=TARGET_COLOUR, linestyle="--", linewidth=1.5, label=f"target {percent:.0f}%"
    )
