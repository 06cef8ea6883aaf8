"""pytest plugin (entry point ``pytest11``): fixtures for regression tests of policies.

* ``rescue_run(scenario, policy=None, replications=None, days=None)``: run (cached for
  the session, so several tests can share one run);
* ``rescue_baseline(result, name, kpis=None, margin=0.0)``: check ``result`` against
  ``tests/baselines/NAME.json`` under the rootdir, or rewrite that file when pytest runs
  with ``--update-baselines``. ``kpis`` are names of the KPI catalogue
  (:mod:`sim.analysis.kpi_catalogue`); by default every KPI with a better direction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim.analysis.kpi_catalogue import kpi_entry, unknown_kpis
from sim.experiments.runs.run import RunResult
from sim.experiments.testing import check_baseline, run_policy, write_baseline


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rescue-sim")
    group.addoption(
        "--update-baselines",
        action="store_true",
        default=False,
        help="rewrite rescue-sim KPI baselines instead of checking them",
    )
    parser.addini("rescue_sim_baselines", "folder of KPI baselines", default="tests/baselines")


_CACHE: dict[tuple[Any, ...], RunResult] = {}


@pytest.fixture
def rescue_run() -> Callable[..., RunResult]:
    """Run a scenario with a policy; identical calls in one session share one run."""

    def _run(
        scenario: str | Path,
        policy: str | None = None,
        *,
        replications: int | None = None,
        days: float | None = None,
    ) -> RunResult:
        key = (str(scenario), policy, replications, days)
        if key not in _CACHE:
            _CACHE[key] = run_policy(scenario, policy, replications=replications, days=days)
        return _CACHE[key]

    return _run


@pytest.fixture
def rescue_baseline(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Check a result against a stored baseline, or store it with --update-baselines."""
    folder = Path(request.config.rootpath) / str(request.config.getini("rescue_sim_baselines"))
    update = bool(request.config.getoption("--update-baselines"))

    def _check(
        result: RunResult, name: str, *, kpis: list[str] | None = None, margin: float = 0.0
    ) -> None:
        for kpi in unknown_kpis(kpis or ()):
            kpi_entry(kpi)  # a misspelt KPI fails here, also when updating the baselines
        path = folder / f"{name}.json"
        if update:
            write_baseline(result, path)
            return
        check_baseline(result, path, kpis=kpis, margin=margin)

    return _check
