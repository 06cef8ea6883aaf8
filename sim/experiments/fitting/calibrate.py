"""Calibration: parameter values that make the simulated KPIs match targets.

The fit is weighted non-linear least squares, solved by ``scipy.optimize.least_squares``
(trust-region reflective, bounded). Why that rather than a derivative-free or Bayesian
optimiser (Nelder-Mead, optuna): every evaluation runs on the scenario's own seed
(common random numbers), so the KPIs are a deterministic function of the parameters,
only slightly rough where an event crosses another; a finite-difference Jacobian with a
step of a few percent of each range sees through that roughness. The Jacobian's ``k``
moved points are run together with the centre in one batch (worker processes shared),
the solver needs a handful of Jacobians for two or three parameters, and the same
Jacobian gives the uncertainty of the fitted values for free.

Each residual is ``(simulated mean - target) / scale``: the scale combines the KPI's
standard error over replications at the start point with the target's own standard
error when one is given (an observed rate is itself an estimate), floored so that a KPI
with no noise does not dominate; targets in different units thus weigh by how precisely
they are known. Parameters are searched in the unit cube of their ranges.

Uncertainty of the fitted values: the delta method. With ``J`` the Jacobian of the
scaled residuals at the solution, ``(J^T J)^-1`` is the covariance of the parameters that
the noise of the KPIs and of the targets (their standard errors) allows; a target given
without a standard error counts as exact, and then the interval reflects the
replications only. When ``J^T J`` is singular (a parameter no target depends on, or two
that move the targets in exactly the same way), the covariance is that of the parameters
the targets do determine, and only the others are flagged: with the singular value
decomposition ``J = U S V^T`` and numpy's rank rule (singular values at most
``S_max * max(m, n) * eps`` count as zero), the pseudo-inverse ``V_r S_r^-2 V_r^T`` gives
the variance of each parameter whose unit vector lies in the row space of ``J`` (an
estimable parameter, as in a rank-deficient linear model; its part in the null space is
at most ``NULL_SPACE_SHARE``); a parameter with a part in the null space has an
infinite standard error. When one parameter has no effect at all, this is the inverse
of ``J^T J`` restricted to the others: they are estimated with it held at its value.
The square roots, in each parameter's units, are the standard errors reported, with a
95% interval cut to the range (Student-t with replications - 1 degrees of freedom: the
standard errors are estimated from a few replications). A parameter is identified when
its standard error is finite and its 95% interval is narrower than its range; one whose
interval is wider is pinned down by the targets no better than by the range itself
(two parameters that nearly trade off against each other, say).

The number of points run is bounded exactly by ``max_evaluations``: the start point and
its ``k`` moved points come first, then the solver's steps, each a trial point or the
``k`` moved points of the Jacobian at a point it accepts. A trial point is run only when
its Jacobian would fit in the bound too, so that the fit always ends at a point whose
Jacobian was run: the solver's end point when it converges first, else the best point
it accepted before the next step would have passed the bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from sim.analysis.kpi_catalogue import CATALOGUE
from sim.errors import UserInputError
from sim.experiments.fitting.points import (
    ParameterRange,
    bind_ranges,
    evaluate_points,
    field_value,
    point_scenario,
)
from sim.experiments.runs.run import Execution, ProgressFn
from sim.model.scenario import Scenario

# Finite-difference step, as a share of each parameter's range.
STEP = 0.04
# Smallest residual scale, as a share of the target (or an absolute floor for a target 0).
MIN_SCALE_SHARE = 0.002
MIN_SCALE = 1e-4
# A parameter whose unit vector has more than this share of its squared length in the
# null space of the Jacobian is not estimable: its standard error is infinite.
NULL_SPACE_SHARE = 1e-6


class PointLimitReached(Exception):
    """The next step would run more than ``max_evaluations`` points: the fit ends."""


@dataclass
class CalibrationResult:
    """The fitted values, their uncertainty, and how well the KPIs match at the end.

    ``parameters``: one row per parameter (start, value, std_error, low, high, identified);
    ``residuals``: one row per target KPI (target, simulated, low, high, residual);
    ``history``: every point evaluated with its KPI means.
    """

    scenario: Scenario
    parameters: pd.DataFrame
    residuals: pd.DataFrame
    history: pd.DataFrame
    evaluations: int
    replications: int
    message: str
    success: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, float]:
        """The fitted value of each parameter path."""
        return {str(k): float(v) for k, v in self.parameters["value"].items()}


def parse_target(text: str) -> tuple[str, float, float]:
    """``KPI=VALUE`` or ``KPI=VALUE+-SE`` (the target's standard error) -> (KPI, value, se)."""
    name, sep, value = text.partition("=")
    number, pm, se_text = value.replace("±", "+-").partition("+-")
    try:
        if not sep or not name.strip() or (pm and not se_text.strip()):
            raise ValueError
        target, se = float(number), float(se_text or 0.0)
    except ValueError:
        raise UserInputError(
            f"{text!r}: write KPI=VALUE or KPI=VALUE+-SE", field="--target"
        ) from None
    if not (math.isfinite(target) and math.isfinite(se)) or se < 0:
        raise UserInputError(f"{text!r}: needs a finite value and SE >= 0", field="--target")
    name = name.strip()
    if pm and se == 0:
        # +-0 claims an exact target: it would weigh the KPI by its noise alone.
        raise UserInputError(
            "the standard error must be positive (leave out +-SE for none)",
            field=f"--target {name}",
        )
    check_target(name, target)
    return name, target, se


def parse_targets(texts: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Every ``--target``, each KPI once -> (target values, their standard errors)."""
    targets: dict[str, float] = {}
    target_se: dict[str, float] = {}
    for text in texts:
        name, value, se = parse_target(text)
        if name in targets:
            raise UserInputError("given twice; give each KPI once", field=f"--target {name}")
        targets[name], target_se[name] = value, se
    return targets, target_se


# Units of the KPIs that are times: none can be negative.
_TIME_UNITS = ("h", "s")


def check_target(name: str, value: float) -> None:
    """Refuse a target a KPI cannot take: a share outside [0, 1], a negative time, or a
    value that is not a finite number (a KPI not in the catalogue is left to the KPI
    check)."""
    entry = CATALOGUE.get(name)
    if not math.isfinite(value):
        raise UserInputError(f"{value!r} is not a finite number", field=f"--target {name}")
    if entry is None:
        return
    if entry.share and not 0.0 <= value <= 1.0:
        raise UserInputError(
            f"{value:g} is not a share: give a value between 0 and 1", field=f"--target {name}"
        )
    if entry.unit in _TIME_UNITS and value < 0:
        raise UserInputError(
            f"{value:g} {entry.unit} is a negative time: give 0 or more", field=f"--target {name}"
        )


class _Objective:
    """Scaled residuals and their Jacobian, each point run once (results cached)."""

    def __init__(
        self,
        base: Scenario,
        ranges: Sequence[ParameterRange],
        targets: Mapping[str, float],
        replications: int,
        max_points: int,
        execution: Execution,
    ) -> None:
        self.base, self.ranges, self.targets = base, list(ranges), dict(targets)
        self.kpis = list(targets)
        self.replications, self.max_points = replications, max_points
        # The fit follows its progress in points; the runs go without it.
        self.progress: ProgressFn | None = execution.progress
        self.execution = replace(execution, progress=None)
        self.low = np.array([r.low for r in ranges])
        self.span = np.array([r.high - r.low for r in ranges])
        self.cache: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}
        # The Jacobian at each point where the solver asked for one (its k moved points run).
        self.jacobians: dict[tuple[float, ...], np.ndarray] = {}
        self.scale = np.ones(len(self.kpis))

    def values(self, u: np.ndarray) -> np.ndarray:
        values: np.ndarray = self.low + np.clip(u, 0.0, 1.0) * self.span
        return values

    def run(self, units: list[np.ndarray], reserve: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """KPI means and standard errors at points of the unit cube (new ones run in a batch).

        New points are run only if they and ``reserve`` more fit in ``max_points``.
        """
        new = list({tuple(u): u for u in units if tuple(u) not in self.cache}.values())
        if new and len(self.cache) + len(new) + reserve > self.max_points:
            raise PointLimitReached
        if new:
            tables = evaluate_points(
                self.base,
                self.ranges,
                np.array([self.values(u) for u in new]),
                replications=self.replications,
                execution=self.execution,
            )
            for u, table in zip(new, tables, strict=True):
                mean = np.array([float(table[k].mean()) for k in self.kpis])
                n = len(table)
                se = np.array(
                    [
                        float(table[k].std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
                        for k in self.kpis
                    ]
                )
                if not np.isfinite(mean).all():
                    bad = self.kpis[int(np.flatnonzero(~np.isfinite(mean))[0])]
                    raise UserInputError(
                        "undefined at a point tried (no calls it applies to)",
                        field=f"--target {bad}",
                    )
                self.cache[tuple(u)] = (mean, se)
            if self.progress is not None:
                self.progress(min(1.0, len(self.cache) / self.max_points))
        return [self.cache[tuple(u)] for u in units]

    def residuals(self, u: np.ndarray) -> np.ndarray:
        """Scaled residuals at ``u``; a new point is run only if its Jacobian fits too."""
        ((mean, _),) = self.run([u], reserve=len(self.ranges))
        target = np.array([self.targets[k] for k in self.kpis])
        scaled: np.ndarray = (mean - target) / self.scale
        return scaled

    def jacobian(self, u: np.ndarray) -> np.ndarray:
        """Forward differences (backward at the upper bound), the k + 1 points in one batch."""
        steps = np.where(u + STEP <= 1.0, STEP, -STEP)
        moved = [u.copy() for _ in u]
        for k, point in enumerate(moved):
            point[k] += steps[k]
        centre, *others = self.run([u, *moved])
        columns = [(m[0] - centre[0]) / steps[k] / self.scale for k, m in enumerate(others)]
        jac = np.column_stack(columns)
        self.jacobians[tuple(u)] = jac
        return jac

    def cost(self, point: tuple[float, ...]) -> float:
        """Half the sum of squared scaled residuals at a point already run."""
        residuals = self.residuals(np.array(point))
        return 0.5 * float(residuals @ residuals)

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """The point of least cost among those whose Jacobian was run, and that Jacobian.

        Where the solver converged this is its end point: it asks for the Jacobian at
        every point it accepts, and accepts every point that lowers the cost.
        """
        point = min(self.jacobians, key=self.cost)
        return np.array(point), self.jacobians[point]


def calibrate(
    base: Scenario,
    ranges: Sequence[ParameterRange],
    targets: Mapping[str, float],
    *,
    target_se: Mapping[str, float] | None = None,
    start: Mapping[str, float] | None = None,
    replications: int = 3,
    max_evaluations: int = 30,
    execution: Execution | None = None,
) -> CalibrationResult:
    """Fit ``ranges`` so that the mean KPIs meet ``targets``; every run on the base seed.

    ``target_se`` gives the standard error of targets that are estimates (default 0).
    ``start`` gives a start value per path (default: the base scenario's value when it
    lies in the range, else the middle). ``max_evaluations`` bounds the points run
    (each of ``replications`` runs), exactly: at least ``k + 1`` for ``k`` parameters,
    the start point and its Jacobian's moved points. ``execution`` says where the runs
    go (default: one local process); with a result store there (see
    :func:`~sim.experiments.fitting.points.evaluate_points`) a rerun reuses every run
    already finished. Its ``progress`` follows the points run, out of ``max_evaluations``.
    """
    check_calibration(replications, max_evaluations, len(ranges))
    for name, value in targets.items():
        check_target(name, value)
    for name, given in (target_se or {}).items():
        if not (math.isfinite(given) and given >= 0):
            raise UserInputError(
                f"the standard error {given!r} must be a finite number, at least 0",
                field=f"--target {name}",
            )
    ranges = bind_ranges(base, ranges)
    objective = _Objective(
        base, ranges, targets, replications, max_evaluations, execution or Execution()
    )
    u0 = np.array([_start_unit(base, r, (start or {}).get(r.path)) for r in ranges])
    target = np.array([targets[k] for k in objective.kpis])
    ((_, se0),) = objective.run([u0], reserve=len(ranges))
    given_se = np.array([(target_se or {}).get(k, 0.0) for k in objective.kpis])
    objective.scale = np.maximum.reduce(
        [np.hypot(se0, given_se), MIN_SCALE_SHARE * np.abs(target), np.full(len(target), MIN_SCALE)]
    )
    try:
        solution = optimize.least_squares(
            objective.residuals,
            u0,
            jac=objective.jacobian,
            bounds=(0.0, 1.0),
            method="trf",
            x_scale=1.0,
            diff_step=None,
        )
        message, success = str(solution.message), bool(solution.success)
    except PointLimitReached:
        message = f"stopped: the next step would pass the limit of {max_evaluations} points"
        success = False
    u, jac = objective.best()
    ((mean, se),) = objective.run([u])
    parameters = _parameter_table(ranges, u0, u, jac, objective, replications)
    # Standard errors come from a few replications: Student-t quantiles, as for every KPI.
    z = float(stats.t.ppf(0.975, replications - 1))
    residuals = pd.DataFrame(
        {
            "target": target,
            "simulated": mean,
            "low": mean - z * se,
            "high": mean + z * se,
            "residual": mean - target,
        },
        index=pd.Index(objective.kpis, name="kpi"),
    )
    history = pd.DataFrame(
        [
            {
                **{
                    r.path: r.value(v)
                    for r, v in zip(ranges, objective.values(np.array(p)), strict=True)
                },
                **dict(zip(objective.kpis, m, strict=True)),
            }
            for p, (m, _) in objective.cache.items()
        ]
    )
    fitted = point_scenario(base, ranges, objective.values(u).tolist())
    return CalibrationResult(
        scenario=fitted,
        parameters=parameters,
        residuals=residuals,
        history=history,
        evaluations=len(objective.cache),
        replications=replications,
        message=message,
        success=success,
    )


def check_calibration(
    replications: int, max_points: int, parameters: int, replications_field: str = "--replications"
) -> None:
    """Fail before any work on a fit that cannot be made: fewer than 2 replications (no
    noise to weigh the KPIs by), or fewer points than the start point and one moved
    point per parameter."""
    if replications < 2:
        raise UserInputError(
            "needs at least 2 replications for the KPIs' noise", field=replications_field
        )
    if max_points < parameters + 1:
        raise UserInputError(
            f"must be at least {parameters + 1}: the start point and one moved point for "
            f"each of the {parameters} parameter(s)",
            field="--max-points",
        )


def _start_unit(base: Scenario, r: ParameterRange, given: float | None) -> float:
    """Where the search starts, in the unit cube: the given value, the base's, or the middle."""
    value = given if given is not None else field_value(base, r.path)
    if not isinstance(value, int | float) or not r.low <= value <= r.high:
        return 0.5
    return (float(value) - r.low) / (r.high - r.low)


def _parameter_table(
    ranges: Sequence[ParameterRange],
    u0: np.ndarray,
    u: np.ndarray,
    jac: np.ndarray,
    objective: _Objective,
    replications: int,
) -> pd.DataFrame:
    """Fitted values with delta-method standard errors (in each parameter's units)."""
    z = float(stats.t.ppf(0.975, replications - 1))
    sd_unit = parameter_std_errors(jac)
    rows = []
    for k, r in enumerate(ranges):
        value = float(objective.values(u)[k])
        sd = float(sd_unit[k] * (r.high - r.low))
        rows.append(
            {
                "parameter": r.path,
                "start": r.value(float(objective.values(u0)[k])),
                "value": r.value(value),
                "std_error": sd,
                "low": max(r.low, value - z * sd) if math.isfinite(sd) else r.low,
                "high": min(r.high, value + z * sd) if math.isfinite(sd) else r.high,
                # Identified: the targets pin it to less than its whole range.
                "identified": bool(math.isfinite(sd) and 2 * z * sd < r.high - r.low),
            }
        )
    return pd.DataFrame(rows).set_index("parameter")


def parameter_std_errors(jac: np.ndarray) -> np.ndarray:
    """Delta-method standard errors of the parameters (in the unit cube), from the Jacobian.

    The square roots of the diagonal of the pseudo-inverse of ``J^T J``, computed from the
    singular value decomposition of ``J`` with numpy's rank rule; infinite for a parameter
    that is not estimable, one whose unit vector has more than ``NULL_SPACE_SHARE`` of its
    squared length in the null space of ``J`` (module docstring). Full rank: the plain
    inverse; a parameter without effect: the inverse restricted to the others.
    """
    m, n = jac.shape
    _, singular, vt = np.linalg.svd(jac, full_matrices=False)
    tolerance = (singular.max() if singular.size else 0.0) * max(m, n) * np.finfo(float).eps
    kept = singular > tolerance
    rows, values = vt[kept], singular[kept]  # an orthonormal basis of J's row space
    in_row_space = (rows**2).sum(axis=0)  # the squared length of each unit vector's part there
    variance = ((rows / values[:, None]) ** 2).sum(axis=0)
    estimable = in_row_space >= 1.0 - NULL_SPACE_SHARE
    errors: np.ndarray = np.where(estimable, np.sqrt(variance), np.inf)
    return errors
