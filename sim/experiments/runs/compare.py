"""Comparing dispatch policies on common random numbers, with paired intervals.

Every policy runs on the same scenario and seed, so replication r of each policy sees the
same call stream. The difference of a KPI between two policies is then taken
replication by replication (a paired comparison), which removes the shared noise: the
interval of a paired difference is far narrower than that of two independent runs, and
for two identical policies it is exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim.analysis.paired import difference_columns, paired_interval
from sim.errors import UserInputError
from sim.experiments.runs.run import ProgressFn, RunResult, run_all
from sim.model.scenario import Scenario


@dataclass(frozen=True)
class PairedDifference:
    """``candidate - reference`` of one KPI, mean and 95% interval over replications."""

    kpi: str
    mean: float
    low: float
    high: float
    n: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return bool(self.low > 0 or self.high < 0)


def paired_difference(kpi: str, candidate: RunResult, reference: RunResult) -> PairedDifference:
    """``candidate - reference`` of ``kpi`` over the replications both ran
    (:func:`sim.analysis.paired.paired_interval`)."""
    ci = paired_interval(candidate.kpis_by_replication, reference.kpis_by_replication, kpi)
    return PairedDifference(kpi, ci.mean, ci.low, ci.high, ci.n)


@dataclass
class Comparison:
    """Runs of several policies on one scenario, the first being the reference."""

    scenario: Scenario
    results: dict[str, RunResult]

    @property
    def policies(self) -> list[str]:
        return list(self.results)

    def table(self) -> pd.DataFrame:
        """Long table: one row per (kpi, policy) with the KPI and its paired difference."""
        reference_name = self.policies[0]
        reference = self.results[reference_name]
        rows = []
        for policy, result in self.results.items():
            summary = result.summary
            for kpi, row in summary.iterrows():
                diff = paired_interval(
                    result.kpis_by_replication, reference.kpis_by_replication, str(kpi)
                )
                columns = difference_columns(str(kpi), diff)
                if policy == reference_name:
                    columns["verdict"] = ""
                rows.append(
                    {
                        "kpi": kpi,
                        "policy": policy,
                        "mean": row["mean"],
                        "low": row["low"],
                        "high": row["high"],
                        **columns,
                    }
                )
        return pd.DataFrame(rows)


def compare(
    scenario: Scenario,
    policies: list[str],
    *,
    replications: int | None = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
    **options: Any,
) -> Comparison:
    """Run every policy on the scenario's call streams; the first policy is the reference.

    The runs of all policies share one pool of ``workers`` processes. ``options`` are
    those of :func:`~sim.experiments.runs.run.run_all` (``engine``, ``store``, ``precision``...);
    a comparison keeps the tables in memory unless ``keep_tables=False``.
    """
    if not policies:
        raise UserInputError("name at least one policy", field="policies")
    n = replications if replications is not None else scenario.replications
    runs = run_all(
        [(scenario, policy) for policy in policies],
        n,
        workers=workers,
        progress=progress,
        **{"keep_tables": True, **options},
    )
    results: dict[str, RunResult] = {}
    for k, (policy, result) in enumerate(zip(policies, runs, strict=True)):
        results[policy if policy not in results else f"{policy}#{k + 1}"] = result
    return Comparison(scenario, results)
