"""The KPI catalogue: every KPI a run reports, written once, with what a reader needs.

One entry per KPI: its unit, whether it is a share (a value between 0 and 1, shown in
percent), which way is better, whether it is a headline rate, a one-line definition,
and the published figure it is judged against. The command line, the figures, the
HTML report, comparisons, sweeps and the regression-testing helpers all read it; none
keeps a list of its own. docs/kpis.md gives each definition in full.

The published targets come from seeds/published_figures.yaml, through
:func:`sim.model.reference.published_figures` (the one place that file is read), and
only when first asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sim.model.reference import published_figures

SHARE = "share"
"""The unit of a KPI that is a fraction of something: between 0 and 1."""

# The network whose published rates are the targets (seed 002, the Dongfeng light-truck
# network: "客诉闭环率、及时到达率、及时修复率达到93%").
PUBLISHED_SOURCE = "dongfeng_light_truck"

_AXIS_LABELS = {SHARE: "percent", "h": "hours", "s": "seconds"}


@dataclass(frozen=True)
class KPI:
    """What one KPI is and how to show it."""

    name: str
    unit: str  # SHARE, "h", "s", "per 1000 calls", "calls/day", "CNY/day", "km/day"...
    higher_is_better: bool | None  # None: neither way (a volume, a load)
    text: str  # one-line definition: numerator / denominator
    headline: bool = False  # one of the rates the network publishes
    published_as: str | None = None  # its key in published_figures.yaml, if any
    # The part of a scenario a KPI needs ("roster", "roster.rest"); None: every run has it.
    only_with: str | None = None

    @property
    def share(self) -> bool:
        """A fraction between 0 and 1 (shown in percent; its interval is cut to [0, 1])."""
        return self.unit == SHARE

    @property
    def target(self) -> float | None:
        """The published figure this KPI is judged against, or None."""
        return published_targets().get(self.name)

    @property
    def axis_label(self) -> str:
        """The unit as an axis says it (a share is plotted in percent)."""
        return _AXIS_LABELS.get(self.unit, self.unit)

    def format(self, value: float | None, *, signed: bool = False, missing: str = "-") -> str:
        """A value for a table: shares in percent (a difference in points), others with
        their unit. ``signed`` writes a difference (``+1.20 pt``, ``-0.150 h``)."""
        if value is None or not math.isfinite(value):
            return missing
        if self.share:
            return f"{value * 100:+.2f} pt" if signed else f"{value:.1%}"
        number = f"{value:+,.3f}" if signed else f"{value:,.2f}"
        return f"{number} {self.unit}" if self.unit in ("h", "s") else number


CATALOGUE: dict[str, KPI] = {
    k.name: k
    for k in (
        KPI(
            "on_time_arrival_rate",
            SHARE,
            True,
            "arrived within the arrival promise / dispatched calls whose promise was met "
            "or expired",
            headline=True,
            published_as="on_time_arrival_rate",
        ),
        KPI(
            "on_time_repair_rate",
            SHARE,
            True,
            "repaired by the repair deadline / roadside jobs repaired or past their deadline",
            headline=True,
            published_as="on_time_repair_rate",
        ),
        KPI(
            "complaint_closure_rate",
            SHARE,
            True,
            "complaints closed within the deadline / complaints closed or past their deadline",
            headline=True,
            published_as="complaint_closure_rate",
        ),
        KPI(
            "contact_on_time_rate",
            SHARE,
            True,
            "customer called back within the contact promise / dispatched calls",
        ),
        KPI(
            "service_level",
            SHARE,
            True,
            "calls answered within the service-level threshold / calls answered or abandoned",
        ),
        KPI(
            "abandonment_rate",
            SHARE,
            False,
            "calls whose caller gave up on every attempt / calls answered or abandoned",
        ),
        KPI("avg_speed_of_answer_s", "s", False, "mean wait of the answered attempt, seconds"),
        KPI("response_p50_h", "h", False, "median hours from call to arrival on site"),
        KPI("response_p90_h", "h", False, "90th percentile of hours from call to arrival"),
        KPI("response_p95_h", "h", False, "95th percentile of hours from call to arrival"),
        KPI("remote_fix_rate", SHARE, True, "solved by remote diagnosis / calls answered"),
        KPI(
            "fixed_on_site_rate",
            SHARE,
            True,
            "repaired on site / jobs whose on-site outcome is known",
        ),
        KPI("tow_rate", SHARE, False, "towed to a workshop / jobs whose on-site outcome is known"),
        KPI(
            "complaints_per_1000_calls", "per 1000 calls", False, "complaints raised per 1000 calls"
        ),
        KPI(
            "contractor_rate",
            SHARE,
            None,
            "jobs given to local third-party shops / dispatched calls",
        ),
        KPI(
            "contractor_cost_cny_per_day",
            "CNY/day",
            False,
            "contractor jobs x scenario cost per job, per day after the warm-up",
        ),
        KPI("calls_per_day", "calls/day", None, "calls made per day after the warm-up"),
        KPI(
            "van_utilisation",
            SHARE,
            None,
            "share of van time not idle (driving, on site, returning, relocating)",
        ),
        KPI("agent_utilisation", SHARE, None, "agent time handling calls / agent time on duty"),
        KPI(
            "relocations_per_day",
            "moves/day",
            None,
            "vans sent to a new base by move-up, per day after the warm-up",
        ),
        KPI(
            "relocation_km_per_day",
            "km/day",
            None,
            "road km of move-up drives started after the warm-up, per day",
        ),
        # Costs (sim.analysis.costs): the scenario's cost block, a year of 365 days.
        KPI(
            "cost_cny_per_year",
            "CNY/year",
            False,
            "the network's yearly cost: the sum of the six parts below",
        ),
        KPI(
            "cost_crew_cny_per_year",
            "CNY/year",
            False,
            "vans x crew per van x wage x (1 + employer's on-cost)",
        ),
        KPI(
            "cost_vehicles_cny_per_year",
            "CNY/year",
            False,
            "vans x a vehicle's yearly cost",
        ),
        KPI(
            "cost_fuel_cny_per_year",
            "CNY/year",
            False,
            "road km of jobs (out and back) and move-up drives x fuel per km, a year",
        ),
        KPI(
            "cost_stations_cny_per_year",
            "CNY/year",
            False,
            "stations x a station's yearly cost + workshop bays x a bay's",
        ),
        KPI(
            "cost_contractors_cny_per_year",
            "CNY/year",
            False,
            "contractor jobs x cost per job, a year",
        ),
        KPI(
            "cost_hotline_cny_per_year",
            "CNY/year",
            False,
            "agent hours on duty x cost per agent-hour, a year",
        ),
        # Rostered runs only (sim.analysis.rosters).
        KPI(
            "overtime_h_per_day",
            "van-h/day",
            False,
            "van-hours on duty past a rostered shift's end, per day after the warm-up",
            only_with="roster",
        ),
        KPI(
            "breaks_missed_rate",
            SHARE,
            False,
            "breaks not started when due (van at work) / breaks due under the rest rule",
            only_with="roster.rest",
        ),
        KPI(
            "breaks_per_van_day",
            "per van-day",
            None,
            "rest breaks taken per van per day",
            only_with="roster.rest",
        ),
    )
}

HEADLINE_KPIS: tuple[str, ...] = tuple(k.name for k in CATALOGUE.values() if k.headline)
"""The rates the network publishes, in the catalogue's order."""


def kpi_entry(name: str) -> KPI:
    """The catalogue entry of a KPI; KeyError naming the known KPIs for any other name."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"unknown KPI {name!r}; known: {', '.join(CATALOGUE)}") from None


def unknown_kpis(names: Iterable[str]) -> list[str]:
    """The names that are not KPIs of the catalogue, in the order given."""
    return [name for name in names if name not in CATALOGUE]


def is_share(name: str) -> bool:
    """Whether a KPI is a share of something, between 0 and 1 (False for a name not in
    the catalogue: nothing is known to bound it)."""
    entry = CATALOGUE.get(name)
    return entry is not None and entry.share


def format_kpi(name: str, value: float | None, *, signed: bool = False, missing: str = "-") -> str:
    """:meth:`KPI.format` by name; a name not in the catalogue is shown as a plain number."""
    entry = CATALOGUE.get(name) or KPI(name, "", None, "")
    return entry.format(value, signed=signed, missing=missing)


def published_targets() -> dict[str, float]:
    """KPI -> the published figure it is judged against (the 93% rates)."""
    return dict(_published_targets())


@cache
def _published_targets() -> tuple[tuple[str, float], ...]:
    figures = published_figures(PUBLISHED_SOURCE)
    return tuple(
        (k.name, float(figures[k.published_as]))
        for k in CATALOGUE.values()
        if k.published_as is not None
    )


__all__ = [
    "CATALOGUE",
    "HEADLINE_KPIS",
    "KPI",
    "SHARE",
    "format_kpi",
    "is_share",
    "kpi_entry",
    "published_targets",
    "unknown_kpis",
]
