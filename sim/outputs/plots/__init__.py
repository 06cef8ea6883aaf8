"""Figures planners look at, drawn from the results of a run (never from a new simulation).

Every function takes result tables -- ``RunResult.calls`` / ``.units`` / ``.summary``, the
``(calls, units, summary)`` that :func:`sim.outputs.run_folder.read_run` returns, or
``Comparison.table()`` -- and returns a :class:`matplotlib.figure.Figure`. Figures are
built with the object-oriented API (``Figure()`` and ``fig.subplots()``), never pyplot's
global state, so they work headless (Agg) and in worker processes; save one with
``fig.savefig(path)`` or show it in a notebook by leaving it as a cell's value.

Labels are plain ASCII (adcodes and pinyin province names), so the figures render with
the fonts every machine has; Chinese names are left to the HTML report. docs/plots.md
describes each figure and how to read it.

One module per kind of figure: :mod:`.dashboard` (the KPIs against the published
targets), :mod:`.response` (response-time distributions), :mod:`.hourly` (calls and
agents by hour of day), :mod:`.vans` (van utilisation), :mod:`.maps` (the network on a
map of China), :mod:`.timeline` (a surge over the run) and :mod:`.panels` (one panel per
KPI: policies compared, sweeps). The tables they draw are computed in
:mod:`sim.analysis.tables` and :mod:`sim.analysis.kpis`; what each KPI is (unit, share,
target) comes from :mod:`sim.analysis.kpi_catalogue`.
"""

from sim.outputs.plots._style import province_label
from sim.outputs.plots.dashboard import kpi_dashboard
from sim.outputs.plots.hourly import hourly_profile
from sim.outputs.plots.maps import network_map, schematic_province_boundaries, schematic_provinces
from sim.outputs.plots.panels import policy_comparison, sweep_parameters, sweep_plot
from sim.outputs.plots.response import response_time_cdf
from sim.outputs.plots.timeline import surge_timeline
from sim.outputs.plots.vans import van_utilisation

__all__ = [
    "hourly_profile",
    "kpi_dashboard",
    "network_map",
    "policy_comparison",
    "province_label",
    "response_time_cdf",
    "schematic_province_boundaries",
    "schematic_provinces",
    "surge_timeline",
    "sweep_parameters",
    "sweep_plot",
    "van_utilisation",
]
