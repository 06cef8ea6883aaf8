"""Checks of the arguments of run, compare and sweep, shared by the Python API and the CLI.

Each raises :class:`~sim.errors.UserInputError` with the same message whichever way it
is called; only the field differs (``replications`` in Python, ``--replications`` on the
command line).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import PolicyError, UserInputError
from sim.model.dispatch import DispatchPolicy, resolve_policy
from sim.model.scenario import Scenario
from sim.model.schema import MAX_DAYS, MAX_REPLICATIONS

if TYPE_CHECKING:
    from sim.experiments.runs.executor import Engine
    from sim.experiments.runs.precision import PrecisionTarget
    from sim.experiments.runs.store import ResultStore


def check_scenario(scenario: Any, field: str = "scenario") -> Scenario:
    """A validated :class:`Scenario`; a path or text is named, with what to call instead."""
    if isinstance(scenario, Scenario):
        return scenario
    hint = " (load it with sim.load_scenario)" if isinstance(scenario, str | bytes) else ""
    raise UserInputError(f"expected a Scenario, got {type(scenario).__name__}{hint}", field=field)


def check_count(value: Any, field: str, *, low: int = 1, high: int | None = None) -> int:
    """A whole number in [low, high] (a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserInputError(f"must be a whole number, got {value!r}", field=field)
    number = int(value)
    if number < low:
        raise UserInputError(f"must be at least {low}", field=field)
    if high is not None and number > high:
        raise UserInputError(f"must be at most {high:,}", field=field)
    return number


def check_replications(value: Any, field: str = "replications") -> int:
    return check_count(value, field, high=MAX_REPLICATIONS)


def check_workers(value: Any, field: str = "workers") -> int:
    return check_count(value, field, high=1024)


def check_days(value: Any, field: str = "days") -> float:
    """A horizon in days: a positive finite number no larger than the schema allows."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserInputError(f"must be a number, got {value!r}", field=field)
    days = float(value)
    if not days > 0:  # NaN too
        raise UserInputError("must be positive", field=field)
    if days > MAX_DAYS:
        raise UserInputError(f"must be at most {MAX_DAYS:,}", field=field)
    return days


def check_seed(value: Any, field: str = "seed") -> int:
    return check_count(value, field, low=0)


def check_policy(policy: Any, field: str = "policy") -> None:
    """A registered name, ``module:Class``, a DispatchPolicy subclass, or None."""
    if policy is None:
        return
    if isinstance(policy, type):
        if not issubclass(policy, DispatchPolicy):
            raise PolicyError(f"{policy.__name__} is not a DispatchPolicy subclass", field=field)
        return
    if not isinstance(policy, str):
        raise PolicyError(
            f"expected a policy name or class, got {type(policy).__name__}", field=field
        )
    try:
        resolve_policy(policy)
    except PolicyError as exc:
        raise PolicyError(exc.message, field=field) from None


def shortened_horizon(scenario: Scenario, days: Any, field: str = "days") -> dict[str, Any]:
    """The ``horizon`` section of ``scenario`` run for ``days`` days instead (``--days``).

    The one rule for every command and helper that changes a horizon: the warm-up stays
    what the scenario states (a run shortened for speed must not start counting from an
    empty network), so ``days`` must be longer than it; otherwise one line naming
    ``field``. Everything else in the section (the start date) is kept.
    """
    days = check_days(days, field)
    warmup_days = scenario.horizon.warmup_days
    if days <= warmup_days:
        raise UserInputError(
            f"{days:g} day(s) leave nothing after the scenario's warm-up of {warmup_days:g} "
            "day(s) (horizon.warmup_days): give more days, or a shorter warm-up",
            field=field,
        )
    return {**scenario.horizon.model_dump(), "days": days}


def check_list(value: Any, expected: str, field: str) -> list[Any]:
    """``value`` as a list when it is a list or a tuple; else one line saying what was
    ``expected`` (``a list of (scenario, policy) pairs``) and what was given."""
    if not isinstance(value, list | tuple):
        raise UserInputError(f"expected {expected}, got {type(value).__name__}", field=field)
    return list(value)


def _refielded(exc: UserInputError, field: str) -> UserInputError:
    """``exc`` naming ``field`` (the API's argument, or the option) instead of its own."""
    exc.field = field
    return exc


def check_precision(precision: Any, field: str = "precision") -> list[PrecisionTarget]:
    """Precision targets: :class:`PrecisionTarget` values or ``KPI=HALFWIDTH`` texts (as
    ``--precision`` takes them), one or a list; every KPI one the model reports."""
    from sim.analysis.kpi_catalogue import CATALOGUE
    from sim.experiments.runs.precision import PrecisionTarget, parse_precision

    if precision is None:
        return []
    one = isinstance(precision, str | PrecisionTarget)
    expected = "PrecisionTarget values or KPI=HALFWIDTH texts"
    targets = []
    for target in [precision] if one else check_list(precision, expected, field):
        try:
            if isinstance(target, str):
                target = parse_precision(target, list(CATALOGUE))
            elif not isinstance(target, PrecisionTarget):
                raise UserInputError(
                    f"expected a PrecisionTarget or a KPI=HALFWIDTH text, got "
                    f"{type(target).__name__}",
                    field=field,
                )
            elif target.kpi not in CATALOGUE:
                known = ", ".join(CATALOGUE)
                raise UserInputError(f"unknown KPI {target.kpi!r}; known: {known}", field=field)
        except UserInputError as exc:
            raise _refielded(exc, field) from None
        targets.append(target)
    return targets


def check_max_replications(
    value: Any, replications: int, targets: Sequence[object], field: str = "max_replications"
) -> int:
    """The most replications a point gets with precision targets: at least those to start
    with, and two (an interval needs them)."""
    cap = check_count(value, field, high=MAX_REPLICATIONS)
    if targets and cap < max(2, replications):
        raise UserInputError(
            f"must be at least the replications to start with ({max(2, replications)})",
            field=field,
        )
    return cap


def check_engine(engine: Any, workers: int, field: str = "engine") -> Engine | None:
    """An :class:`Engine`, None (``workers`` local processes), or an engine's name (as
    ``--engine`` takes it: ``local``, ``dask``), made now; the caller enters a made one."""
    from sim.experiments.runs.executor import Engine, make_engine

    if engine is None or isinstance(engine, Engine):
        return engine
    if not isinstance(engine, str):
        raise UserInputError(
            f"expected an engine or its name (local, dask), got {type(engine).__name__}",
            field=field,
        )
    try:
        return make_engine(engine, check_workers(workers))
    except UserInputError as exc:
        raise _refielded(exc, field) from None


def check_store(store: Any, field: str = "store") -> ResultStore | None:
    """A :class:`ResultStore`, its folder (a path), or None; a path that is a file is
    refused (a store is a folder)."""
    from sim.errors import OutputError
    from sim.experiments.runs.store import ResultStore

    if store is None or isinstance(store, ResultStore):
        return store
    if not isinstance(store, str | PathLike):
        raise UserInputError(
            f"expected a ResultStore or its folder, got {type(store).__name__}", field=field
        )
    path = Path(store)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file: a result store is a folder", field=field)
    return ResultStore(path)


def check_runs(runs: Any, field: str = "runs") -> list[tuple[Scenario, Any]]:
    """(scenario, policy) pairs, each checked."""
    checked = []
    for k, pair in enumerate(check_list(runs, "a list of (scenario, policy) pairs", field)):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise UserInputError(
                f"expected a (scenario, policy) pair, got {type(pair).__name__}",
                field=f"{field}[{k}]",
            )
        scenario, policy = pair
        check_policy(policy)
        checked.append((check_scenario(scenario), policy))
    return checked


def check_jobs(jobs: Any, field: str = "jobs") -> list[tuple[Scenario, int, Any]]:
    """(scenario, replication number, policy) triples, each checked."""
    expected = "a list of (scenario, replication, policy)"
    checked = []
    for k, job in enumerate(check_list(jobs, expected, field)):
        where = f"{field}[{k}]"
        if not isinstance(job, tuple | list) or len(job) != 3:
            raise UserInputError(
                f"expected a (scenario, replication, policy) triple, got {type(job).__name__}",
                field=where,
            )
        scenario, replication, policy = job
        check_policy(policy, where)
        checked.append(
            (check_scenario(scenario, where), check_count(replication, where, low=0), policy)
        )
    return checked
