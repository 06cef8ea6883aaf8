"""The KPI catalogue is the one description of every KPI, and everything reads it."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from sim.analysis.kpi_catalogue import (
    CATALOGUE,
    HEADLINE_KPIS,
    SHARE,
    format_kpi,
    is_share,
    kpi_entry,
    published_targets,
)
from sim.experiments.runs.run import RunResult, run_replication
from sim.experiments.testing import check_baseline
from sim.model.loading import load_scenario
from sim.model.reference import published_figures
from sim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"


def test_the_catalogue_names_every_kpi_a_replication_reports_in_order() -> None:
    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 1, "warmup_days": 0.1})
    reported = run_replication(scenario, 0).kpis
    assert list(reported) == [name for name, k in CATALOGUE.items() if k.only_with is None]
    # A rostered run with a rest rule reports the rest too (tests/test_rosters.py runs them).
    assert [k.only_with for k in CATALOGUE.values() if k.only_with] == [
        "roster",
        "roster.rest",
        "roster.rest",
    ]


def test_which_kpis_are_shares() -> None:
    shares = {name for name, k in CATALOGUE.items() if k.share}
    assert shares == {
        "on_time_arrival_rate",
        "on_time_repair_rate",
        "complaint_closure_rate",
        "contact_on_time_rate",
        "service_level",
        "abandonment_rate",
        "remote_fix_rate",
        "fixed_on_site_rate",
        "tow_rate",
        "contractor_rate",
        "van_utilisation",
        "agent_utilisation",
        "breaks_missed_rate",
    }
    assert all(is_share(name) == (CATALOGUE[name].unit == SHARE) for name in CATALOGUE)
    assert not is_share("not_a_kpi_rate")  # unknown: nothing bounds it


def test_headline_rates_are_the_published_ones_with_their_targets() -> None:
    published = ["on_time_arrival_rate", "on_time_repair_rate", "complaint_closure_rate"]
    assert list(HEADLINE_KPIS) == published
    figures = published_figures("dongfeng_light_truck")
    assert published_targets() == {name: figures[name] for name in HEADLINE_KPIS}
    assert published_targets() == dict.fromkeys(HEADLINE_KPIS, 0.93)
    assert CATALOGUE["on_time_repair_rate"].target == 0.93
    assert CATALOGUE["response_p90_h"].target is None
    assert all(CATALOGUE[k].higher_is_better for k in HEADLINE_KPIS)


@pytest.mark.parametrize(
    ("kpi", "value", "signed", "text"),
    [
        ("on_time_arrival_rate", 0.93124, False, "93.1%"),
        ("on_time_arrival_rate", -0.01234, True, "-1.23 pt"),
        ("response_p90_h", 3.456, False, "3.46 h"),
        ("response_p90_h", 0.25, True, "+0.250 h"),
        ("avg_speed_of_answer_s", 12.345, False, "12.35 s"),
        ("calls_per_day", 2003.4, False, "2,003.40"),
        ("van_utilisation", math.nan, False, "-"),
        ("something_else", 1.5, False, "1.50"),
    ],
)
def test_values_are_formatted_by_their_unit(
    kpi: str, value: float, signed: bool, text: str
) -> None:
    assert format_kpi(kpi, value, signed=signed) == text


def test_an_unknown_kpi_is_refused_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown KPI 'speed'; known: on_time_arrival_rate"):
        kpi_entry("speed")
    with pytest.raises(KeyError, match="unknown KPI 'on_time'"):
        check_baseline(RunResult(Scenario(), "nearest_station"), "nowhere.json", kpis=["on_time"])


def test_docs_define_every_kpi() -> None:
    page = (ROOT / "docs" / "kpis.md").read_text(encoding="utf-8")
    # The docs group the percentiles as `response_p50_h`, `_p90_h`, `_p95_h`.
    missing = [n for n in CATALOGUE if f"`{n}`" not in page and f"`{n[8:]}`" not in page]
    assert missing == []


def test_the_cli_table_shows_the_target_beside_the_published_rates() -> None:
    from sim.cli.tables import kpi_table as _kpi_table

    summary = pd.DataFrame(
        {"mean": [0.9, 2.5], "low": [0.88, 2.4], "high": [0.92, 2.6], "n": [5, 5]},
        index=pd.Index(["on_time_arrival_rate", "response_p90_h"], name="kpi"),
    )
    console = Console(record=True, width=200, color_system=None)
    console.print(_kpi_table(summary, "t"))
    lines = console.export_text().splitlines()
    (rate,) = [line for line in lines if "on_time_arrival_rate" in line]
    (hours,) = [line for line in lines if "response_p90_h" in line]
    assert "published target" in "\n".join(lines)

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.split("│") if cell.strip()]

    assert cells(rate) == ["on_time_arrival_rate", "90.0%", "88.0% - 92.0%", "93.0%"]
    assert cells(hours) == ["response_p90_h", "2.50 h", "2.40 h - 2.60 h"]


# One source of truth: the rules below are written once in sim/ (read with ast, so
# that docstrings and comments mentioning them do not count).


def _sim_trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "sim").rglob("*.py"))
    }


def test_published_figures_yaml_is_read_in_one_module() -> None:
    readers = [
        name
        for name, tree in _sim_trees().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == "published_figures.yaml"
    ]
    assert readers == ["sim/model/reference.py"]


def test_no_second_headline_list_and_no_share_rule_by_name() -> None:
    lists = []
    suffix_rules = []
    for name, tree in _sim_trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(names & set(HEADLINE_KPIS)) >= 2:
                    lists.append(f"{name}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "endswith"
                and any(
                    isinstance(c, ast.Constant) and c.value in ("_rate", "_utilisation", "_h")
                    for arg in node.args
                    for c in ast.walk(arg)
                )
            ):
                suffix_rules.append(f"{name}:{node.lineno}")
    assert lists == []
    assert suffix_rules == []
