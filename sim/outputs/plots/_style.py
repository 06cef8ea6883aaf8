"""What every figure shares: colours, the figure itself, interval bars, target lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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
    return Figure(figsize=(width, height), layout="constrained")


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
