"""Checks of the arguments of run, compare and sweep, shared by the Python API and the CLI.

Each raises :class:`~sim.errors.UserInputError` with the same message whichever way it
is called; only the field differs (``replications`` in Python, ``--replications`` on the
command line).
"""

from __future__ import annotations

import numbers
from typing import Any

from sim.errors import PolicyError, UserInputError
from sim.model.dispatch import DispatchPolicy, resolve_policy
from sim.model.scenario import Scenario
from sim.model.schema import MAX_DAYS, MAX_REPLICATIONS


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
