"""Paired differences on common random numbers, and which way they go: written once.

Runs that share a seed see the same calls replication by replication, so the difference
of a KPI between two of them is taken replication by replication (a paired comparison):
the shared noise cancels, and two identical runs differ by exactly zero. ``compare``,
the optimiser's judgements and its current-vs-optimised table, and the regression
helpers all take their intervals and verdicts from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.kpi_catalogue import CATALOGUE
from sim.analysis.kpis import Interval, confidence_interval


def paired_interval(
    candidate: pd.DataFrame, reference: pd.DataFrame, kpi: str, level: float = 0.95
) -> Interval:
    """``candidate - reference`` of ``kpi``, over the replications both hold.

    Each frame has a ``replication`` column and one column per KPI (a run's
    ``kpis_by_replication``). Raises ValueError when they share no replication.
    """
    a = candidate.set_index("replication")[kpi]
    b = reference.set_index("replication")[kpi]
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError("the two runs share no replication")
    diff = a.loc[common].to_numpy(float) - b.loc[common].to_numpy(float)
    if np.all(diff == 0):  # the same decisions on the same calls: no noise at all
        return Interval(0.0, 0.0, 0.0, len(diff))
    return confidence_interval(diff, level)


def excludes_zero(interval: Interval) -> bool:
    """The interval lies wholly on one side of zero (NaN bounds: no)."""
    return bool(interval.low > 0 or interval.high < 0)


def verdict(kpi: str, interval: Interval) -> str:
    """``better`` or ``worse`` when the difference is significant and the KPI catalogue says
    which way is better; otherwise ``""``."""
    entry = CATALOGUE.get(kpi)
    better = None if entry is None else entry.higher_is_better
    if better is None or not excludes_zero(interval):
        return ""
    return "better" if (interval.mean > 0) == better else "worse"


def difference_columns(kpi: str, interval: Interval) -> dict[str, Any]:
    """The columns a table of paired differences carries for one KPI."""
    return {
        "diff": interval.mean,
        "diff_low": interval.low,
        "diff_high": interval.high,
        "significant": excludes_zero(interval),
        "verdict": verdict(kpi, interval),
        "replications": interval.n,
    }
