"""The KPI summary: Student-t intervals over replications, kept to the values a KPI can take."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim.analysis.kpi_catalogue import is_share
from sim.analysis.kpis import confidence_interval, summarise


def test_a_rate_near_one_has_its_interval_cut_at_one() -> None:
    rates = [0.99, 1.0, 0.97]
    raw = confidence_interval(rates)
    assert raw.high > 1.0  # what the Student-t interval gives on its own
    table = pd.DataFrame({"replication": [0, 1, 2], "on_time_arrival_rate": rates})
    row = summarise(table).loc["on_time_arrival_rate"]
    assert row["mean"] == pytest.approx(raw.mean)
    assert row["low"] == pytest.approx(raw.low)
    assert row["high"] == 1.0
    assert row["n"] == 3


def test_a_rate_near_zero_has_its_interval_cut_at_zero() -> None:
    rates = [0.0, 0.02, 0.001]
    assert confidence_interval(rates).low < 0.0
    row = summarise(pd.DataFrame({"abandonment_rate": rates})).loc["abandonment_rate"]
    assert row["low"] == 0.0 and row["high"] < 1.0


def test_a_time_is_cut_at_zero_only() -> None:
    """A time or a count is not bounded by 1, but cannot be negative."""
    values = [0.4, 1.9, 0.2]
    raw = confidence_interval(values)
    assert raw.low < 0.0 and raw.high > 1.0
    row = summarise(pd.DataFrame({"response_p90_h": values})).loc["response_p90_h"]
    assert row["low"] == 0.0 and row["high"] == pytest.approx(raw.high)


def test_an_interval_within_the_bounds_is_the_student_t_interval() -> None:
    values = [2.1, 2.4, 2.2, 2.6]
    raw = confidence_interval(values)
    row = summarise(pd.DataFrame({"response_p90_h": values})).loc["response_p90_h"]
    assert (row["low"], row["high"]) == pytest.approx((raw.low, raw.high))


def test_one_replication_has_no_interval() -> None:
    row = summarise(pd.DataFrame({"on_time_repair_rate": [0.93]})).loc["on_time_repair_rate"]
    assert row["mean"] == 0.93 and math.isnan(row["low"]) and math.isnan(row["high"])


def test_which_kpis_are_proportions() -> None:
    assert is_share("on_time_arrival_rate") and is_share("service_level")
    assert is_share("van_utilisation")
    assert not is_share("response_p90_h") and not is_share("calls_per_day")
    assert not is_share("complaints_per_1000_calls")
