"""Which parameters a KPI depends on: Morris screening and, on request, Sobol indices.

Both are SALib's (the reference implementation of these methods): Morris for a cheap
ranking, ``r x (k + 1)`` runs for ``k`` parameters, and Sobol first-order and total
indices for a variance decomposition, ``N x (k + 2)`` runs. Every point is a run of the
scenario on its own seed (common random numbers, see :mod:`sim.experiments.fitting.points`),
so an elementary effect is a parameter's effect on the same calls, not the noise
between two call streams.

Morris's ``mu_star`` is the mean absolute elementary effect of a parameter over its
range (in the KPI's unit, for a move across the whole range scaled to [0, 1]), with a
bootstrap 95% interval; a large ``sigma`` beside it means the effect depends on the
other parameters (interaction or non-linearity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from sim.experiments.fitting.points import ParameterRange, bind_ranges, evaluate_points, mean_kpis
from sim.experiments.runs.run import Execution
from sim.model.scenario import Scenario

Method = Literal["morris", "sobol"]

# The fewest Sobol' base samples taken: with fewer, noise in the KPIs alone puts
# first-order or total indices outside [0, 1] (a quarter of them at 8 samples of a
# noisy two-parameter test function; under a tenth at 16).
MIN_SOBOL_SAMPLES = 16


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SensitivityResult:
    """Indices per (KPI, parameter), and every point that was run with its KPI means.

    ``indices`` columns: kpi, parameter, then for Morris mu, mu_star, mu_star_low,
    mu_star_high, sigma, rank; for Sobol S1, S1_low, S1_high, ST, ST_low, ST_high, rank.
    Rank 1 is the most influential parameter for that KPI.
    """

    method: Method
    indices: pd.DataFrame
    points: pd.DataFrame
    replications: int


def _problem(ranges: Sequence[ParameterRange]) -> dict[str, Any]:
    # SALib draws in the unit cube here; the values are mapped to each range below, so
    # that mu_star is per whole range and parameters of different units compare.
    return {
        "num_vars": len(ranges),
        "names": [r.path for r in ranges],
        "bounds": [[0, 1]] * len(ranges),
    }


def unit_to_values(ranges: Sequence[ParameterRange], unit: np.ndarray) -> np.ndarray:
    """The parameter values of points of the unit cube (one row per point)."""
    low = np.array([r.low for r in ranges])
    high = np.array([r.high for r in ranges])
    values: np.ndarray = low + unit * (high - low)
    return values


def _check_finite(y: np.ndarray, kpis: Sequence[str]) -> None:
    from sim.errors import UserInputError

    for j, kpi in enumerate(kpis):
        if not np.isfinite(y[:, j]).all():
            raise UserInputError(
                "undefined at some points (no calls it applies to): choose another KPI or"
                " a longer horizon",
                field=f"--kpi {kpi}",
            )


@dataclass(frozen=True)
class Screening:
    """Which points a screening runs, and how its indices are bootstrapped.

    Morris: ``trajectories x (k + 1)`` points on a grid of ``levels``; Sobol (Saltelli's
    scheme without second-order indices): ``samples x (k + 2)`` (``samples`` a power of
    2). ``seed`` drives the design and the bootstrap, not the simulation, which keeps the
    scenario's seed at every point.
    """

    method: Method = "morris"
    trajectories: int = 10
    levels: int = 4
    samples: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        from sim.errors import UserInputError

        if self.method not in ("morris", "sobol"):
            raise UserInputError("must be morris or sobol", field="--method")
        if self.method == "morris":
            if not _whole(self.trajectories) or self.trajectories < 2:
                raise UserInputError("must be a whole number, at least 2", field="--trajectories")
            return
        samples = self.samples
        if not _whole(samples) or samples < MIN_SOBOL_SAMPLES:
            raise UserInputError(
                f"must be a power of 2, at least {MIN_SOBOL_SAMPLES}: fewer give indices "
                "outside [0, 1] from sampling noise alone",
                field="--samples",
            )
        if samples & (samples - 1):
            below = 1 << (samples.bit_length() - 1)
            raise UserInputError(
                f"Sobol' samples are balanced only in powers of two: use {below} or {below * 2}",
                field="--samples",
            )

    @property
    def size_option(self) -> str:
        """The option that sets the design's size."""
        return "--trajectories" if self.method == "morris" else "--samples"

    def points(self, parameters: int) -> int:
        """How many points the design of ``parameters`` ranges has, counted before it
        is drawn (the work is checked on this)."""
        if self.method == "morris":
            return self.trajectories * (parameters + 1)
        return self.samples * (parameters + 2)

    def design(self, ranges: Sequence[ParameterRange]) -> np.ndarray:
        """The points to run, in the unit cube of the ranges: one row per point. The same
        screening gives the same design, so that the work can be counted before any run."""
        from sim.experiments.runs.work_estimate import check_design_points

        check_design_points(self.points(len(ranges)), self.size_option)
        problem = _problem(ranges)
        if self.method == "morris":
            unit: np.ndarray = morris_sample.sample(
                problem, self.trajectories, num_levels=self.levels, seed=self.seed
            )
        else:
            unit = sobol_sample.sample(
                problem, self.samples, calc_second_order=False, seed=self.seed
            )
        return unit


def sensitivity(
    base: Scenario,
    ranges: Sequence[ParameterRange],
    kpis: Sequence[str],
    screening: Screening | None = None,
    *,
    replications: int = 1,
    execution: Execution | None = None,
) -> SensitivityResult:
    """Screen ``ranges`` for their effect on each of ``kpis`` (default: Morris, 10
    trajectories; see :class:`Screening`).

    ``execution`` says where the runs go (default: one local process); with a result
    store there a rerun reuses every run already finished in it
    (:func:`~sim.experiments.fitting.points.evaluate_points`).
    """
    screening = screening or Screening()
    method, levels, seed = screening.method, screening.levels, screening.seed
    ranges = bind_ranges(base, ranges)
    problem = _problem(ranges)
    unit = screening.design(ranges)
    x = unit_to_values(ranges, unit)
    tables = evaluate_points(base, ranges, x, replications=replications, execution=execution)
    y = mean_kpis(tables, kpis)
    _check_finite(y, kpis)

    rows: list[dict[str, Any]] = []
    for j, kpi in enumerate(kpis):
        if method == "morris":
            res = morris_analyze.analyze(
                problem, unit, y[:, j], num_resamples=1000, num_levels=levels, seed=seed
            )
            for k, r in enumerate(ranges):
                mu_star, half = float(res["mu_star"][k]), float(res["mu_star_conf"][k])
                rows.append(
                    {
                        "kpi": kpi,
                        "parameter": r.path,
                        "mu": float(res["mu"][k]),
                        "mu_star": mu_star,
                        "mu_star_low": max(0.0, mu_star - half),
                        "mu_star_high": mu_star + half,
                        "sigma": float(res["sigma"][k]),
                    }
                )
            key = "mu_star"
        else:
            res = sobol_analyze.analyze(
                problem, y[:, j], calc_second_order=False, num_resamples=1000, seed=seed
            )
            for k, r in enumerate(ranges):
                s1, s1_half = float(res["S1"][k]), float(res["S1_conf"][k])
                st, st_half = float(res["ST"][k]), float(res["ST_conf"][k])
                rows.append(
                    {
                        "kpi": kpi,
                        "parameter": r.path,
                        "S1": s1,
                        "S1_low": s1 - s1_half,
                        "S1_high": s1 + s1_half,
                        "ST": st,
                        "ST_low": st - st_half,
                        "ST_high": st + st_half,
                    }
                )
            key = "ST"
    indices = pd.DataFrame(rows)
    indices["rank"] = (
        indices.groupby("kpi")[key].rank(ascending=False, method="min").astype(np.int64)
    )
    points = pd.DataFrame({r.path: [r.value(v) for v in x[:, k]] for k, r in enumerate(ranges)})
    for j, kpi in enumerate(kpis):
        points[kpi] = y[:, j]
    return SensitivityResult(method, indices, points, replications)
