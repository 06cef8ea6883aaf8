"""The MILP location models against brute-force enumeration on tiny instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sim.experiments.design.covering import (
    InfeasibleModel,
    expected_covering,
    local_availability,
    maximal_covering,
    p_median,
    separable_allocation,
)


def _instance(seed: int, n_points: int = 9, n_sites: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.random((n_points, 2)) * 100
    sites = rng.random((n_sites, 2)) * 100
    weight = rng.integers(1, 20, n_points).astype(float)
    distance = np.linalg.norm(points[:, None, :] - sites[None, :, :], axis=2)
    return weight, distance


def _subsets(m: int, most: int) -> list[tuple[int, ...]]:
    return [s for k in range(most + 1) for s in itertools.combinations(range(m), k)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_maximal_covering_equals_brute_force(seed: int, p: int) -> None:
    weight, distance = _instance(seed)
    cover = distance <= 35.0
    cost = np.arange(1.0, 7.0)
    fixed = np.zeros(6, dtype=bool)
    fixed[seed % 6] = True
    budget = 9.0

    def covered(sites: tuple[int, ...]) -> float:
        return float(weight[cover[:, list(sites)].any(axis=1)].sum()) if sites else 0.0

    feasible = [s for s in _subsets(6, p) if seed % 6 in s and cost[list(s)].sum() <= budget]
    best = max(covered(s) for s in feasible)
    solution = maximal_covering(weight, cover, p, fixed=fixed, cost=cost, budget=budget)
    chosen = tuple(np.flatnonzero(solution.open))
    assert solution.solve.proven_optimal
    assert chosen in feasible
    assert covered(chosen) == pytest.approx(best)
    assert solution.solve.objective == pytest.approx(best)


@pytest.mark.parametrize("seed", range(4))
def test_maximal_covering_tie_break_keeps_the_optimum_and_prefers_the_cheapest(seed: int) -> None:
    weight, distance = _instance(seed)
    cover = distance <= 60.0  # wide: many subsets tie
    prefer = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 0.5])

    def covered(sites: tuple[int, ...]) -> float:
        return float(weight[cover[:, list(sites)].any(axis=1)].sum()) if sites else 0.0

    subsets = _subsets(6, 2)
    best = max(covered(s) for s in subsets)
    cheapest = min(prefer[list(s)].sum() for s in subsets if covered(s) >= best - 1e-9)
    solution = maximal_covering(weight, cover, 2, tie_break=prefer)
    chosen = tuple(np.flatnonzero(solution.open))
    assert covered(chosen) == pytest.approx(best)
    assert prefer[list(chosen)].sum() == pytest.approx(cheapest)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_p_median_equals_brute_force(seed: int, p: int) -> None:
    weight, distance = _instance(seed)
    closed = np.zeros(6, dtype=bool)
    closed[(seed + 1) % 6] = True

    def cost(sites: tuple[int, ...]) -> float:
        return float((weight * distance[:, list(sites)].min(axis=1)).sum())

    feasible = [s for s in itertools.combinations(range(6), p) if (seed + 1) % 6 not in s]
    best = min(cost(s) for s in feasible)
    solution = p_median(weight, distance, p, closed=closed)
    chosen = tuple(np.flatnonzero(solution.open))
    assert solution.solve.proven_optimal
    assert len(chosen) == p and chosen in feasible
    assert cost(chosen) == pytest.approx(best)


def _allocations(m: int, total: int, lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    ranges = [range(int(lo[j]), int(hi[j]) + 1) for j in range(m)]
    return [np.array(v) for v in itertools.product(*ranges) if sum(v) <= total]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [0.2, 0.6])
def test_expected_covering_equals_brute_force(seed: int, q: float) -> None:
    weight, distance = _instance(seed, n_points=8, n_sites=4)
    cover = distance <= 55.0
    total = 5
    lo = np.array([1, 0, 0, 0])
    hi = np.array([3, 3, 2, 3])

    def expected(v: np.ndarray) -> float:
        k = cover.astype(int) @ v
        return float((weight * (1 - q**k)).sum())

    best = max(expected(v) for v in _allocations(4, total, lo, hi))
    solution = expected_covering(weight, cover, total, q, min_vans=lo, max_vans=hi)
    assert solution.solve.proven_optimal
    assert solution.vans.sum() <= total
    assert ((solution.vans >= lo) & (solution.vans <= hi)).all()
    assert expected(solution.vans) == pytest.approx(best)
    assert solution.solve.objective == pytest.approx(best)
    # Every van placed, and a tie-break that never costs coverage.
    whole = expected_covering(
        weight, cover, total, q, min_vans=lo, max_vans=hi, exact=True, tie_break=np.arange(4.0)
    )
    assert whole.vans.sum() == total
    assert expected(whole.vans) == pytest.approx(
        max(expected(v) for v in _allocations(4, total, lo, hi) if v.sum() == total)
    )


@pytest.mark.parametrize("seed", range(6))
def test_separable_allocation_equals_brute_force_even_for_tables_that_are_not_concave(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    lo = rng.integers(0, 2, 4)
    # Increasing but not concave: the ordering constraints must keep vans counted in order.
    tables = [np.concatenate([[0.0], np.cumsum(rng.random(3) * 10)]) for _ in range(4)]
    hi = lo + 3
    total = int(lo.sum()) + 5

    def value(v: np.ndarray) -> float:
        return float(sum(tables[j][v[j] - lo[j]] for j in range(4)))

    allocations = _allocations(4, total, lo, hi)
    best = max(value(v) for v in allocations)
    solution = separable_allocation(tables, lo, total_vans=total)
    assert solution.vans.sum() <= total
    assert value(solution.vans) == pytest.approx(best)
    # The whole fleet placed.
    whole = separable_allocation(tables, lo, total_vans=total, exact=True)
    assert whole.vans.sum() == total
    assert value(whole.vans) == pytest.approx(
        max(value(v) for v in allocations if v.sum() == total)
    )
    # The fewest vans that reach a target value.
    target = 0.8 * best
    fewest = min(int(v.sum()) for v in allocations if value(v) >= target - 1e-9)
    smallest = separable_allocation(tables, lo, target=target)
    assert value(smallest.vans) >= target - 1e-9
    assert smallest.vans.sum() == fewest


def test_local_availability_is_daskins_formula_with_a_local_busy_fraction() -> None:
    load = np.array([0.5, 0.5, 1.5, 2.0, 1.0])
    vans = np.array([1, 2, 3, 1, 0])
    expected = [1 - 0.5, 1 - 0.25**2, 1 - 0.5**3, 0.0, 0.0]
    assert local_availability(load, vans) == pytest.approx(expected)


def test_impossible_models_say_so() -> None:
    weight, distance = _instance(0)
    with pytest.raises(InfeasibleModel):
        p_median(weight, distance, 7)
    with pytest.raises(InfeasibleModel):
        separable_allocation([np.zeros(3)] * 3, np.array([2, 2, 2]), total_vans=5)
    with pytest.raises(InfeasibleModel):
        separable_allocation([np.array([0.0, 1.0])], np.array([1]), target=5.0)


def test_expected_covering_breaks_ties_by_preference_only() -> None:
    # Every site covers every point: all allocations of five vans cover alike.
    weight = np.array([3.0, 1.0, 2.0])
    cover = np.ones((3, 4), dtype=bool)
    hi = np.full(4, 3)
    solution = expected_covering(
        weight, cover, 5, 0.3, max_vans=hi, exact=True, tie_break=np.array([0.0, 0.0, 5.0, 1.0])
    )
    assert solution.vans.tolist() == [0, 0, 3, 2]
    assert solution.solve.objective == pytest.approx(weight.sum() * (1 - 0.3**5))
