"""The building blocks of the scenario schema: its base model, size bounds and checks.

Kept apart from :mod:`sim.model.scenario` so that the parts of the schema that live in
modules of their own (rosters, costs, road demand) share one base without an import
cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo

HOURS_PER_DAY = 24
SHARE_TOLERANCE = 1e-6

# Bounds on sizes, far beyond any real network (the national one has 1050 stations, 2000
# vans, ~2000 calls a day): a typo of a few zeros is refused here, before anything is
# built or allocated. The work a valid scenario asks for is judged by
# sim.experiments.runs.work_estimate.
MAX_DAYS = 3660  # ten years
MAX_REPLICATIONS = 10_000
MAX_STATIONS = 100_000
MAX_VANS = 200_000
MAX_AGENTS = 100_000
MAX_CALLS_PER_DAY = 10_000_000
MAX_SCENARIO_BYTES = 10_000_000


class FieldError(ValueError):
    """A cross-field error that knows which field it is about.

    Raised by a validator; :mod:`sim.model.loading` appends ``loc`` to the location
    pydantic reports, so that the message names the field itself.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class FrozenModel(BaseModel):
    """A part of the scenario: frozen, no unknown fields, no infinities or NaNs."""

    # YAML reads .inf and .nan as numbers: no field of a scenario means either.
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )


def check_shares(items: Sequence[Any], what: str) -> None:
    """Refuse shares that do not sum to 1, or repeated names."""
    total = sum(item.share for item in items)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ValueError(f"{what} shares must sum to 1, they sum to {total:g}")
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names must be unique")


def resolve_file(value: Path | None, info: ValidationInfo) -> Path | None:
    """Resolve a path relative to the scenario file and insist that it exists."""
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    path = value if value.is_absolute() or base is None else Path(base) / value
    if not path.is_file():
        raise ValueError(f"file not found: {value}")
    return path
