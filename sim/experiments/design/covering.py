"""Covering and median models of station and van location, solved exactly as MILPs.

Every model here is a mixed-integer linear programme handed to HiGHS through
:func:`scipy.optimize.milp`; nothing is solved by hand. The models are the classical
ones of emergency-service location:

* :func:`maximal_covering`: the maximal covering location problem (MCLP) of Church &
  ReVelle (1974): open at most ``p`` sites so as to cover the most demand, a point being
  covered when an open site lies within its coverage set.
* :func:`p_median`: the p-median problem of Hakimi (1964) in the MILP form of ReVelle &
  Swain (1970): open ``p`` sites so as to minimise the demand-weighted distance from each
  point to its nearest open site.
* :func:`expected_covering`: the maximum expected covering location problem (MEXCLP) of
  Daskin (1983): vans are busy independently with one system-wide probability ``q``, so a
  point covered by ``k`` vans is covered with probability ``1 - q**k``; place a fleet so
  as to maximise the expected covered demand.
* :func:`separable_allocation`: MEXCLP's expected covering when each point is covered by
  one station only (the published rule keeps an order at its nearest station), with a
  busy fraction of its own at each station (the local busy fractions of ReVelle & Hogan
  1989). The value of a station's ``v``-th van is then a table, and the allocation a
  multiple-choice MILP over binary increments.

Each function takes plain arrays, so that a test can check it against brute force on
a tiny instance, and returns the solution with HiGHS's status: a solve stopped by its
time limit says so (``proven_optimal`` False, with its MIP gap) rather than posing as
optimal.

References: R. Church, C. ReVelle, The maximal covering location problem, Papers of the
Regional Science Association 32 (1974) 101-118. S.L. Hakimi, Optimum locations of
switching centers and the absolute centers and medians of a graph, Operations Research
12 (1964) 450-459. C. ReVelle, R. Swain, Central facilities location, Geographical
Analysis 2 (1970) 30-42. M.S. Daskin, A maximum expected covering location model,
Transportation Science 17 (1983) 48-70. C. ReVelle, K. Hogan, The maximum availability
location problem, Transportation Science 23 (1989) 192-200.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, OptimizeResult, milp

# HiGHS's relative MIP gap at which a solution counts as optimal (its own default).
MIP_REL_GAP = 1e-4


class InfeasibleModel(ValueError):
    """The constraints of a location model admit no solution (too few sites, say)."""


@dataclass(frozen=True)
class Solve:
    """How HiGHS finished: ``proven_optimal``, the objective, the MIP gap, the seconds."""

    proven_optimal: bool
    status: str
    objective: float
    mip_gap: float
    seconds: float


@dataclass(frozen=True)
class SiteSolution:
    """Which sites are open, and how the solver got there."""

    open: np.ndarray  # bool, one per site
    solve: Solve


@dataclass(frozen=True)
class Allocation:
    """Vans at each site, and how the solver got there."""

    vans: np.ndarray  # int64, one per site
    solve: Solve


def _solve(
    c: np.ndarray,
    constraints: Sequence[LinearConstraint],
    integrality: np.ndarray,
    bounds: Bounds,
    time_limit_s: float,
    presolve: bool = True,
) -> tuple[OptimizeResult, Solve]:
    started = time.perf_counter()
    result = milp(
        c,
        integrality=integrality,
        bounds=bounds,
        constraints=list(constraints),
        options={"time_limit": time_limit_s, "mip_rel_gap": MIP_REL_GAP, "presolve": presolve},
    )
    seconds = time.perf_counter() - started
    if result.x is None:
        if result.status == 2:
            raise InfeasibleModel("the location model has no feasible solution")
        raise RuntimeError(f"HiGHS found no solution: {result.message}")
    gap = getattr(result, "mip_gap", None)
    solve = Solve(
        proven_optimal=result.status == 0,
        status=str(result.message),
        objective=float(result.fun),
        mip_gap=float(gap) if gap is not None else 0.0,
        seconds=seconds,
    )
    return result, solve


def _as_sparse(matrix: np.ndarray | sparse.spmatrix | sparse.sparray) -> sparse.csr_array:
    return sparse.csr_array(matrix, dtype=float)


def _site_bounds(
    n_sites: int, fixed: np.ndarray | None, closed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    lower = np.zeros(n_sites)
    upper = np.ones(n_sites)
    if fixed is not None:
        lower[np.asarray(fixed, dtype=bool)] = 1.0
    if closed is not None:
        upper[np.asarray(closed, dtype=bool)] = 0.0
    if (lower > upper).any():
        raise InfeasibleModel("a site is both fixed open and closed")
    return lower, upper


def maximal_covering(
    weight: np.ndarray,
    cover: np.ndarray | sparse.spmatrix | sparse.sparray,
    max_sites: int,
    *,
    fixed: np.ndarray | None = None,
    closed: np.ndarray | None = None,
    cost: np.ndarray | None = None,
    budget: float | None = None,
    tie_break: np.ndarray | None = None,
    time_limit_s: float = 60.0,
) -> SiteSolution:
    """MCLP (Church & ReVelle 1974): open at most ``max_sites`` sites to cover the most weight.

    ``weight``: demand of each point (n). ``cover``: (n, m) 0/1, point i covered by site j.
    ``fixed``/``closed``: sites that must be open / may not be. ``cost`` and ``budget``:
    the opening costs of the open sites may not exceed the budget. ``tie_break``: among
    the solutions that cover the most, the one with the smallest ``tie_break @ open``
    (a second MILP with the coverage held at its optimum), e.g. to change as few current
    stations as possible.

    Variables: ``x_j`` binary (site open) and ``y_i`` in [0, 1] (point covered). For any
    binary ``x`` the best ``y_i`` is ``min(1, sum_j a_ij x_j)``, which is 0 or 1: leaving
    ``y`` continuous does not change the optimum.
    """
    w = np.asarray(weight, dtype=float)
    a = _as_sparse(cover)
    n, m = a.shape
    if len(w) != n:
        raise ValueError("weight and cover disagree on the number of points")
    lower, upper = _site_bounds(m, fixed, closed)
    bounds = Bounds(np.concatenate([lower, np.zeros(n)]), np.concatenate([upper, np.ones(n)]))
    integrality = np.concatenate([np.ones(m), np.zeros(n)])
    # y_i - sum_j a_ij x_j <= 0
    link = sparse.hstack([-a, sparse.eye_array(n)], format="csr")
    constraints = [
        LinearConstraint(link, -np.inf, 0.0),
        LinearConstraint(np.concatenate([np.ones(m), np.zeros(n)])[None, :], 0, max_sites),
    ]
    if budget is not None:
        if cost is None:
            raise ValueError("a budget needs the sites' costs")
        row = np.concatenate([np.asarray(cost, dtype=float), np.zeros(n)])
        constraints.append(LinearConstraint(row[None, :], -np.inf, budget))
    c = np.concatenate([np.zeros(m), -w])
    result, solve = _solve(c, constraints, integrality, bounds, time_limit_s)
    covered = -solve.objective
    if tie_break is not None and solve.proven_optimal:
        # Hold the coverage at its optimum (to the solver's tolerance), then break the tie.
        tolerance = 1e-7 * max(1.0, float(w.sum()))
        hold = LinearConstraint(-c[None, :], covered - tolerance, np.inf)
        c2 = np.concatenate([np.asarray(tie_break, dtype=float), np.zeros(n)])
        result, second = _solve(c2, [*constraints, hold], integrality, bounds, time_limit_s)
        covered = float(w @ result.x[m:])
        solve = Solve(
            second.proven_optimal,
            second.status,
            covered,
            max(solve.mip_gap, second.mip_gap),
            solve.seconds + second.seconds,
        )
    else:
        solve = Solve(solve.proven_optimal, solve.status, covered, solve.mip_gap, solve.seconds)
    return SiteSolution(np.round(result.x[:m]).astype(bool), solve)


def p_median(
    weight: np.ndarray,
    distance: np.ndarray,
    p: int,
    *,
    fixed: np.ndarray | None = None,
    closed: np.ndarray | None = None,
    time_limit_s: float = 60.0,
) -> SiteSolution:
    """p-median (Hakimi 1964; ReVelle & Swain 1970): ``p`` sites, least weighted distance.

    ``distance``: (n, m) from point i to site j. Variables: ``x_j`` binary and the share
    ``z_ij`` of point i served by site j. For binary ``x`` the best ``z`` sends each point
    wholly to its nearest open site, so ``z`` may stay continuous. The model has n*m
    assignment variables: keep instances small (or use :func:`maximal_covering`).
    """
    w = np.asarray(weight, dtype=float)
    d = np.asarray(distance, dtype=float)
    n, m = d.shape
    if len(w) != n:
        raise ValueError("weight and distance disagree on the number of points")
    if not 1 <= p <= m:
        raise InfeasibleModel(f"cannot open {p} of {m} sites")
    lower, upper = _site_bounds(m, fixed, closed)
    # Variables: x (m), then z row by row (n*m).
    bounds = Bounds(
        np.concatenate([lower, np.zeros(n * m)]), np.concatenate([upper, np.ones(n * m)])
    )
    integrality = np.concatenate([np.ones(m), np.zeros(n * m)])
    assign = sparse.hstack(
        [sparse.csr_array((n, m)), sparse.kron(sparse.eye_array(n), np.ones((1, m)))], format="csr"
    )
    # z_ij - x_j <= 0
    open_only = sparse.hstack(
        [-sparse.kron(np.ones((n, 1)), sparse.eye_array(m)), sparse.eye_array(n * m)],
        format="csr",
    )
    count = np.concatenate([np.ones(m), np.zeros(n * m)])[None, :]
    constraints = [
        LinearConstraint(assign, 1.0, 1.0),
        LinearConstraint(open_only, -np.inf, 0.0),
        LinearConstraint(count, p, p),
    ]
    c = np.concatenate([np.zeros(m), (w[:, None] * d).ravel()])
    result, solve = _solve(c, constraints, integrality, bounds, time_limit_s)
    return SiteSolution(np.round(result.x[:m]).astype(bool), solve)


def expected_covering(
    weight: np.ndarray,
    cover: np.ndarray | sparse.spmatrix | sparse.sparray,
    total_vans: int,
    busy_fraction: float,
    *,
    min_vans: np.ndarray | None = None,
    max_vans: np.ndarray | None = None,
    max_levels: int | None = None,
    exact: bool = False,
    tie_break: np.ndarray | None = None,
    time_limit_s: float = 60.0,
) -> Allocation:
    """MEXCLP (Daskin 1983): place ``total_vans`` so as to maximise expected covered demand.

    Each van is busy with probability ``busy_fraction`` (q), independently, so a point
    covered by k vans is covered with probability ``1 - q**k`` and the k-th of them adds
    ``(1 - q) q**(k-1)`` of its weight. Variables: ``v_j`` integer (vans at site j,
    between ``min_vans`` and ``max_vans``) and ``y_ik`` in [0, 1] (point i covered at
    least k times), k = 1..K with K the most vans that can reach the point. The values
    decrease in k, so an optimum fills ``y_i1..y_in`` first; for integer ``v`` they come
    out 0 or 1, and ``y`` may stay continuous. ``max_levels`` caps K for large instances:
    the levels left out are worth at most ``q**max_levels`` of a point's weight each.

    ``exact``: place every van (vans beyond the levels counted add nothing, so without it
    the optimum may leave some unplaced). ``tie_break``: among allocations of equal
    expected coverage, prefer vans at the sites with the larger values; its whole weight
    is kept below a thousandth of the smallest coverage term, so it only breaks ties.
    """
    w = np.asarray(weight, dtype=float)
    a = _as_sparse(cover)
    n, m = a.shape
    q = float(busy_fraction)
    if not 0.0 <= q < 1.0:
        raise ValueError("the busy fraction must lie in [0, 1)")
    lo = np.zeros(m) if min_vans is None else np.asarray(min_vans, dtype=float)
    hi = np.full(m, float(total_vans)) if max_vans is None else np.asarray(max_vans, dtype=float)
    if lo.sum() > total_vans:
        raise InfeasibleModel(f"{total_vans} vans cannot give every site its minimum")
    # K: the most vans that can cover any point (more levels could never be filled).
    reach = a @ np.minimum(hi, total_vans)
    levels = int(min(total_vans, max(1.0, float(reach.max(initial=0.0)))))
    if max_levels is not None:
        levels = max(1, min(levels, max_levels))
    value = (1 - q) * q ** np.arange(levels)  # k = 1..K
    terms = (w[:, None] * value[None, :]).ravel()
    preference = np.zeros(m)
    if tie_break is not None and (positive := terms[terms > 0]).size:
        t = np.clip(np.asarray(tie_break, dtype=float), 0.0, None)
        if t.max() > 0:
            preference = 1e-3 * positive.min() * t / (t.max() * max(total_vans, 1))
    c = np.concatenate([-preference, -terms])
    bounds = Bounds(
        np.concatenate([lo, np.zeros(n * levels)]), np.concatenate([hi, np.ones(n * levels)])
    )
    integrality = np.concatenate([np.ones(m), np.zeros(n * levels)])
    # sum_k y_ik - sum_j a_ij v_j <= 0
    link = sparse.hstack([-a, sparse.kron(sparse.eye_array(n), np.ones((1, levels)))], format="csr")
    fleet = np.concatenate([np.ones(m), np.zeros(n * levels)])[None, :]
    if exact and hi.sum() < total_vans:
        raise InfeasibleModel(f"the sites' limits hold fewer than {total_vans} vans")
    least = total_vans if exact else 0
    constraints = [
        LinearConstraint(link, -np.inf, 0.0),
        LinearConstraint(fleet, least, total_vans),
    ]
    result, solve = _solve(c, constraints, integrality, bounds, time_limit_s)
    vans = np.round(result.x[:m]).astype(np.int64)
    covered = float(terms @ result.x[m:])
    return Allocation(
        vans, Solve(solve.proven_optimal, solve.status, covered, solve.mip_gap, solve.seconds)
    )


def local_availability(load: np.ndarray, vans: np.ndarray) -> np.ndarray:
    """P(a station's call finds a van free): ``1 - q**v`` with the local busy fraction q = load/v.

    ``load`` is the station's offered load in vans (busy van-hours per hour), ``vans`` its
    fleet; the busy fraction of a van is ``min(1, load / vans)`` (ReVelle & Hogan 1989),
    and, as in Daskin's MEXCLP, vans are taken to be busy independently. No van: 0.
    """
    a = np.asarray(load, dtype=float)
    v = np.asarray(vans, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.minimum(1.0, np.where(v > 0, a / np.where(v > 0, v, 1.0), 1.0))
        out = np.where(v > 0, 1.0 - q**v, 0.0)
    return np.asarray(out, dtype=float)


def separable_allocation(
    value: Sequence[np.ndarray],
    min_vans: np.ndarray,
    *,
    total_vans: int | None = None,
    exact: bool = False,
    target: float | None = None,
    time_limit_s: float = 60.0,
) -> Allocation:
    """Vans per station when each station's value depends on its own vans only.

    ``value[j][k]`` is what station j is worth with ``min_vans[j] + k`` vans (k = 0, 1,
    ...; the table's length bounds its vans). With ``total_vans``: maximise the total
    value with at most that many vans (``exact``: with all of them). With ``target``: the
    fewest vans whose total value reaches ``target``.

    MILP over binary increments ``u_jk`` (station j has at least ``min_vans[j] + k``
    vans), each worth ``value[j][k] - value[j][k-1]``, with ``u_jk >= u_j,k+1`` so that a
    station's vans are counted from the first: exact whatever the shape of the tables.
    """
    if (total_vans is None) == (target is None):
        raise ValueError("give exactly one of total_vans or target")
    tables = [np.asarray(t, dtype=float) for t in value]
    lo = np.asarray(min_vans, dtype=np.int64)
    if len(tables) != len(lo):
        raise ValueError("one value table per station")
    gains = [np.diff(t) for t in tables]
    sizes = np.array([len(g) for g in gains], dtype=np.int64)
    n_u = int(sizes.sum())
    start = np.concatenate([[0], np.cumsum(sizes)])
    gain = np.concatenate(gains) if n_u else np.zeros(0)
    base_value = float(sum(t[0] for t in tables))
    base_vans = int(lo.sum())
    # u_j,k+1 - u_jk <= 0 within each station
    rows, cols, vals = [], [], []
    r = 0
    for j in range(len(tables)):
        for k in range(int(sizes[j]) - 1):
            rows += [r, r]
            cols += [int(start[j]) + k + 1, int(start[j]) + k]
            vals += [1.0, -1.0]
            r += 1
    constraints = []
    if r:
        order = sparse.csr_array((vals, (rows, cols)), shape=(r, n_u))
        constraints.append(LinearConstraint(order, -np.inf, 0.0))
    bounds = Bounds(np.zeros(n_u), np.ones(n_u))
    integrality = np.ones(n_u)
    if total_vans is not None:
        if base_vans > total_vans:
            raise InfeasibleModel(f"{total_vans} vans cannot give every station its minimum")
        spare = total_vans - base_vans
        if exact and spare > n_u:
            raise InfeasibleModel(f"the stations' limits hold fewer than {total_vans} vans")
        constraints.append(LinearConstraint(np.ones((1, n_u)), spare if exact else 0, spare))
        c = -gain
    else:
        assert target is not None
        if base_value + gain[gain > 0].sum() < target - 1e-12:
            raise InfeasibleModel("no allocation within the stations' limits reaches the target")
        constraints.append(LinearConstraint(gain[None, :], target - base_value, np.inf))
        c = np.ones(n_u)
    if n_u == 0:
        vans = lo.copy()
        return Allocation(vans, Solve(True, "nothing to choose", base_value, 0.0, 0.0))
    # HiGHS's presolve spends long on this knapsack-like model (1050 stations, 4000
    # increments: 25 s with it, 0.3 s without, same optimum); it needs none.
    result, solve = _solve(c, constraints, integrality, bounds, time_limit_s, presolve=False)
    u = np.round(result.x).astype(np.int64)
    station = np.repeat(np.arange(len(tables)), sizes)
    vans = lo + np.bincount(station, weights=u, minlength=len(tables)).astype(np.int64)
    objective = base_value + float(gain @ u) if total_vans is not None else float(vans.sum())
    return Allocation(
        vans.astype(np.int64),
        Solve(solve.proven_optimal, solve.status, objective, solve.mip_gap, solve.seconds),
    )


__all__ = [
    "Allocation",
    "InfeasibleModel",
    "SiteSolution",
    "Solve",
    "expected_covering",
    "local_availability",
    "maximal_covering",
    "p_median",
    "separable_allocation",
]
