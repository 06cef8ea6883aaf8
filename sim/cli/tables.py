"""The tables the commands print: KPIs with intervals, and paired differences (Δ) coloured
by the KPI catalogue's verdict. Written once for run, compare, sweep and optimise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

DELTA_CAPTION = "Δ = {what}, paired over replications; * the 95% interval excludes 0"


def kpi_label(kpi: str) -> str:
    """A KPI's name for a table, in bold for the published headline rates."""
    from sim.analysis.kpi_catalogue import HEADLINE_KPIS

    return f"[bold]{kpi}[/bold]" if kpi in HEADLINE_KPIS else kpi


def interval_text(kpi: str, low: float, high: float, separator: str = " - ") -> str:
    """``92.1% - 93.4%``; empty where there is no interval (one replication)."""
    from sim.analysis.kpi_catalogue import format_kpi

    return "" if math.isnan(low) else f"{format_kpi(kpi, low)}{separator}{format_kpi(kpi, high)}"


def kpi_table(summary: pd.DataFrame, title: str) -> Table:
    """The KPIs with their intervals; the published target beside the rates that have one."""
    from sim.analysis.kpi_catalogue import CATALOGUE, format_kpi

    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("mean", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("published target", justify="right")
    for kpi, row in summary.iterrows():
        name = str(kpi)
        entry = CATALOGUE.get(name)
        target = entry.target if entry is not None else None
        table.add_row(
            kpi_label(name),
            format_kpi(name, row["mean"]),
            interval_text(name, row["low"], row["high"]),
            "" if target is None else format_kpi(name, target),
        )
    return table


def delta_cells(kpi: str, row: Mapping[Any, Any] | pd.Series[Any]) -> tuple[str, str]:
    """A paired difference and its interval as two cells: ``+1.2 pt*`` coloured by its
    verdict (green better, red worse), and ``+0.8 pt / +1.6 pt``.

    ``row`` holds ``diff``, ``diff_low``, ``diff_high``, ``significant`` and ``verdict``
    (as :func:`sim.analysis.kpis.paired_difference` gives them)."""
    from sim.analysis.kpi_catalogue import format_kpi

    diff = format_kpi(kpi, float(row["diff"]), signed=True) + ("*" if row["significant"] else "")
    colour = {"better": "green", "worse": "red"}.get(str(row["verdict"]), "")
    if colour:
        diff = f"[{colour}]{diff}[/{colour}]"
    low, high = float(row["diff_low"]), float(row["diff_high"])
    if math.isnan(low):
        return diff, ""
    return diff, f"{format_kpi(kpi, low, signed=True)} / {format_kpi(kpi, high, signed=True)}"
