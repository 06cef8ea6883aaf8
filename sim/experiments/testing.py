"""Regression testing of dispatch policies: run helpers, statistical assertions, baselines.

Assertions use 95% intervals over replications. Because every run of a scenario and seed
sees the same call streams (common random numbers), a new result is compared with a
reference or a stored baseline replication by replication: the paired difference.

Used from pytest through the plugin in :mod:`sim.pytest_plugin` (fixtures
``rescue_run`` and ``rescue_baseline``, option ``--update-baselines``), or directly.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sim.analysis.kpi_catalogue import CATALOGUE, kpi_entry, unknown_kpis
from sim.analysis.kpis import confidence_interval
from sim.experiments.runs.arguments import shortened_horizon
from sim.experiments.runs.compare import PairedDifference, paired_difference
from sim.experiments.runs.run import RunResult, run
from sim.model.loading import load_scenario
from sim.model.scenario import Scenario

BASELINE_FORMAT = 1


class KPIAssertionError(AssertionError):
    """A KPI failed a statistical check; the message names KPI, values and interval."""


def run_policy(
    scenario: Scenario | str | Path,
    policy: str | None = None,
    *,
    replications: int | None = None,
    days: float | None = None,
    workers: int = 1,
) -> RunResult:
    """Run a scenario (object or file) with a policy, optionally on a shorter horizon."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if days is not None:
        sc = sc.with_overrides(horizon=shortened_horizon(sc, days))
    return run(sc, replications=replications, policy=policy, workers=workers)


def _interval(result: RunResult, kpi: str) -> tuple[float, float, float]:
    if kpi not in result.kpis_by_replication:
        kpi_entry(kpi)  # KeyError naming the known KPIs
        raise KeyError(f"{kpi!r} is not among this run's KPIs")
    ci = confidence_interval(result.kpis_by_replication[kpi].to_numpy())
    return ci.mean, ci.low, ci.high


def assert_kpi_at_least(result: RunResult, kpi: str, threshold: float) -> None:
    """Fail when the KPI is significantly below ``threshold`` (its whole interval is)."""
    mean, low, high = _interval(result, kpi)
    upper = mean if math.isnan(high) else high
    if upper < threshold:
        raise KPIAssertionError(
            f"{kpi} = {mean:.4g} [95% CI {low:.4g}, {high:.4g}] "
            f"is below the required {threshold:.4g}"
        )


def assert_kpi_at_most(result: RunResult, kpi: str, threshold: float) -> None:
    """Fail when the KPI is significantly above ``threshold``."""
    mean, low, high = _interval(result, kpi)
    lower = mean if math.isnan(low) else low
    if lower > threshold:
        raise KPIAssertionError(
            f"{kpi} = {mean:.4g} [95% CI {low:.4g}, {high:.4g}] "
            f"is above the allowed {threshold:.4g}"
        )


def _worse_by(diff: PairedDifference, kpi: str) -> float:
    """How much worse the candidate is for certain (the interval's best case), >= 0."""
    higher_is_better = kpi_entry(kpi).higher_is_better
    if higher_is_better is None:
        raise ValueError(f"{kpi} has no better direction; compare it with assert_kpi_at_least/most")
    best_case = diff.high if higher_is_better else -diff.low
    return max(0.0, -best_case)


def assert_no_worse(
    candidate: RunResult, reference: RunResult, kpi: str, margin: float = 0.0
) -> PairedDifference:
    """Fail when ``candidate`` is worse than ``reference`` by more than ``margin`` for certain.

    Both runs must come from the same scenario and seed, so that replication r of each saw
    the same calls; the check uses the 95% interval of the paired difference.
    """
    diff = paired_difference(kpi, candidate, reference)
    if _worse_by(diff, kpi) > margin:
        raise KPIAssertionError(
            f"{kpi}: {candidate.policy} is worse than {reference.policy} by "
            f"{abs(diff.mean):.4g} (paired 95% CI of the difference {diff.low:.4g}, "
            f"{diff.high:.4g}; allowed margin {margin:.4g})"
        )
    return diff


# ------------------------------------------------------------------ baselines


def baseline_record(result: RunResult) -> dict[str, Any]:
    """What a baseline file stores: the per-replication KPIs and their intervals."""
    by_rep = result.kpis_by_replication
    return {
        "format": BASELINE_FORMAT,
        "scenario": result.scenario.name,
        "policy": result.policy,
        "seed": result.scenario.seed,
        "days": result.scenario.horizon.days,
        "replications": len(result.replications),
        "kpis": {
            kpi: {
                "mean": ci.mean,
                "low": ci.low,
                "high": ci.high,
                "by_replication": [None if math.isnan(v) else v for v in by_rep[kpi].tolist()],
            }
            for kpi in by_rep.columns
            if kpi != "replication"
            for ci in [confidence_interval(by_rep[kpi].to_numpy())]
        },
    }


def write_baseline(result: RunResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: an interrupted --update-baselines leaves the old file whole.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(baseline_record(result), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_baseline(path: Path) -> dict[str, Any]:
    """A stored baseline; a corrupt, truncated or foreign file is one error naming it."""
    refresh = "rewrite it with pytest --update-baselines"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise KPIAssertionError(f"baseline {path} cannot be read ({exc}); {refresh}") from None
    kpis = stored.get("kpis") if isinstance(stored, dict) else None
    if not isinstance(kpis, dict) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("by_replication"), list)
        and all(isinstance(entry.get(k), int | float | None) for k in ("mean", "low", "high"))
        for entry in kpis.values()
    ):
        raise KPIAssertionError(f"baseline {path} is not a rescue-sim baseline; {refresh}")
    baseline: dict[str, Any] = stored
    return baseline


def check_baseline(
    result: RunResult,
    path: str | Path,
    *,
    kpis: list[str] | None = None,
    margin: float = 0.0,
) -> None:
    """Fail when any KPI is significantly worse than the stored baseline (paired by replication).

    ``kpis``: the KPIs to check (default: every KPI of the catalogue that has a better
    direction); a name the catalogue does not know raises KeyError, before any check.
    """
    for name in unknown_kpis(kpis or ()):
        kpi_entry(name)  # KeyError naming the known KPIs
    path = Path(path)
    if not path.is_file():
        raise KPIAssertionError(f"no baseline at {path}; create it with pytest --update-baselines")
    stored = _read_baseline(path)
    if (
        stored.get("seed") != result.scenario.seed
        or stored.get("days") != result.scenario.horizon.days
    ):
        raise KPIAssertionError(
            f"baseline {path} was made with seed {stored.get('seed')} "
            f"over {stored.get('days')} days; "
            f"this run has seed {result.scenario.seed} over {result.scenario.horizon.days} days"
        )
    by_rep = result.kpis_by_replication
    failures = []
    names = kpis or [k.name for k in CATALOGUE.values() if k.higher_is_better is not None]
    for kpi in names:
        if kpi not in stored["kpis"]:
            if kpis is not None:
                failures.append(f"{kpi}: not in the baseline; refresh it with --update-baselines")
            continue  # a KPI newer than the baseline has nothing to compare with
        old = stored["kpis"][kpi]
        old_values = [math.nan if v is None else v for v in old["by_replication"]]
        new_values = by_rep[kpi].tolist()
        n = min(len(old_values), len(new_values))
        diffs = [new_values[r] - old_values[r] for r in range(n)]
        if all(d == 0 for d in diffs):
            continue
        ci = confidence_interval(diffs)
        diff = PairedDifference(kpi, ci.mean, ci.low, ci.high, ci.n)
        if math.isnan(diff.low):  # one replication: no interval, any worsening counts
            diff = PairedDifference(kpi, ci.mean, ci.mean, ci.mean, ci.n)
        if _worse_by(diff, kpi) > margin:
            new_ci = confidence_interval(new_values)
            failures.append(
                f"{kpi}: baseline {old['mean']:.4g} [{old['low']:.4g}, {old['high']:.4g}], "
                f"new {new_ci.mean:.4g} [{new_ci.low:.4g}, {new_ci.high:.4g}], "
                f"paired difference {diff.mean:+.4g} [95% CI {diff.low:+.4g}, {diff.high:+.4g}]"
            )
    if failures:
        raise KPIAssertionError(
            f"{result.policy} on {result.scenario.name} regressed against {path}: "
            + "; ".join(failures)
        )
