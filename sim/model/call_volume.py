"""How many calls a scenario expects, from its fields alone: nothing is drawn or built.

Apart from :mod:`sim.model.demand`, which draws the calls, so that ``rescue-sim validate``
and the work estimate can tell a run's size without importing pandas.
"""

from __future__ import annotations

from sim.model.scenario import Scenario
from sim.model.schema import HOURS_PER_DAY


def expected_calls_per_day(scenario: Scenario) -> float:
    """Mean calls per day over the horizon, surges included (a trace's own, when replayed)."""
    if scenario.demand.trace is not None:
        from sim.model.trace import trace_calls_per_day  # reads the trace (and pandas)

        return trace_calls_per_day(scenario)
    base = scenario.demand.mean_calls_per_day
    total_h = scenario.horizon.hours
    extra = sum(
        max(0.0, s.demand_multiplier - 1.0)
        * base
        / HOURS_PER_DAY
        * max(0.0, min(s.end_h, total_h) - s.start_h)
        for s in scenario.surges
    )
    # The surge's extra is an upper bound: it assumes all demand lies inside the region.
    return base + extra / scenario.horizon.days
