"""What a network design optimises, under which limits, and how hard it searches.

A :class:`DesignSpec` is written in a small YAML file (``rescue-sim optimise --config``)
or given on the command line; :func:`load_spec` reads the one and lays the other on
top, naming the file, line and field (or the option) of any mistake. For example::

    maximise: on_time_arrival_rate       # or  minimise: vans  (then a requirement)
    require:
      on_time_repair_rate: {at_least: 0.93}
    max_stations: 1100                   # default: the current stations
    max_vans: 2000                       # default: the current fleet
    fixed_stations: all                  # or a list of current station ids
    candidates_csv: dealers.csv          # id, lat, lon[, opening_cost_cny, workshop_bays]
    stations_model: mclp                 # keep (default), mclp or p_median
    replications: 5
    max_evaluations: 30
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from sim.analysis.kpi_catalogue import CATALOGUE
from sim.analysis.kpis import Interval
from sim.errors import UserInputError
from sim.model.loading import field_line

MoveKind = Literal["vans", "remove", "open", "close", "move"]
VANS = "vans"
"""The objective "minimise vans"."""


def _higher_is_better(kpi: str) -> bool | None:
    """Whether more of ``kpi`` is better (None: neither way, or not a KPI)."""
    entry = CATALOGUE.get(kpi)
    return None if entry is None else entry.higher_is_better


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Requirement(_Spec):
    """A KPI that must stay on one side of a threshold: ``at_least`` or ``at_most``."""

    kpi: str
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Requirement:
        if self.kpi not in CATALOGUE:
            raise ValueError(f"unknown KPI {self.kpi!r}")
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least or at_most")
        return self

    @property
    def threshold(self) -> float:
        value = self.at_least if self.at_least is not None else self.at_most
        assert value is not None
        return value

    def slack(self, mean: float) -> float:
        """How far a mean is on the good side of the threshold (negative: short of it)."""
        return mean - self.threshold if self.at_least is not None else self.threshold - mean

    def met_by(self, interval: Interval) -> bool:
        """The whole interval lies on the good side of the threshold."""
        if math.isnan(interval.low):
            return False
        if self.at_least is not None:
            return interval.low >= self.at_least
        return interval.high <= self.threshold

    def __str__(self) -> str:
        op = ">=" if self.at_least is not None else "<="
        return f"{self.kpi}{op}{self.threshold:g}"


def parse_requirement(text: str) -> Requirement:
    """``on_time_arrival_rate>=0.93`` (or ``<=``) as written on the command line."""
    for op, key in ((">=", "at_least"), ("<=", "at_most")):
        if op in text:
            kpi, _, value = text.partition(op)
            try:
                number = float(value)
            except ValueError:
                raise UserInputError(
                    f"{text!r}: {value!r} is not a number", field="--require"
                ) from None
            try:
                return Requirement.model_validate({"kpi": kpi.strip(), key: number})
            except ValidationError as exc:
                raise UserInputError(f"{text!r}: {_message(exc)}", field="--require") from None
    raise UserInputError(f"{text!r}: write KPI>=VALUE or KPI<=VALUE", field="--require")


class DesignSpec(_Spec):
    """What to optimise, under which limits, and how hard to search.

    Written in a small YAML file (``rescue-sim optimise --config``) or given on the
    command line. Counts of stations and vans default to the scenario's own network.
    """

    maximise: str | None = Field(None, description="a KPI that is better higher")
    minimise: str | None = Field(None, description="'vans', or a KPI that is better lower")
    require: tuple[Requirement, ...] = ()
    max_stations: int | None = Field(None, ge=1, description="None: the current number")
    max_vans: int | None = Field(None, ge=1, description="None: the current fleet")
    min_vans_per_station: int = Field(1, ge=1)
    max_vans_per_station: int | None = Field(None, ge=1)
    fixed_stations: tuple[str, ...] | Literal["all"] = Field(
        (), description="ids of current stations that must stay open, or 'all'"
    )
    candidates_csv: Path | None = Field(
        None, description="extra sites: id, lat, lon[, opening_cost_cny, workshop_bays]"
    )
    seat_opening_cost_cny: float = Field(0.0, ge=0)
    opening_budget_cny: float | None = Field(None, ge=0)
    stations_model: Literal["keep", "mclp", "p_median"] = "keep"
    coverage_level: float = Field(
        0.93, gt=0, lt=1, description="on-time chance that defines the coverage radius"
    )
    moves: tuple[MoveKind, ...] | None = Field(None, description="None: by objective")
    replications: int | None = Field(None, ge=2, description="None: the scenario's own")
    days: float | None = Field(None, gt=0, description="None: the scenario's horizon")
    seed: int | None = Field(None, ge=0, description="None: the scenario's seed")
    max_evaluations: int = Field(30, ge=1, description="designs run on the search streams")
    time_limit_min: float | None = Field(None, gt=0)
    confirm_seed: int | None = Field(None, ge=0, description="None: the search seed + 1")
    confirm_replications: int | None = Field(None, ge=2, description="None: replications")
    level: float = Field(0.95, gt=0.5, lt=1)
    probe_days: float = Field(7.0, gt=0)
    demand_sample_calls: int = Field(20_000, ge=100)
    cell_km: float = Field(10.0, gt=0)
    first_vans_move: int | None = Field(None, ge=1, description="None: 5% of the fleet")
    milp_time_limit_s: float = Field(120.0, gt=0)

    @field_validator("require")
    @classmethod
    def _consistent(cls, require: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
        """Refuse requirements on one KPI that no value meets (>=0.95 and <=0.90)."""
        for req in require:
            if req.at_least is None:
                continue
            for other in require:
                at_most = other.at_most
                if other.kpi == req.kpi and at_most is not None and req.at_least > at_most:
                    raise ValueError(f"{req} and {other} cannot both hold")
        return require

    @model_validator(mode="after")
    def _objective(self) -> DesignSpec:
        if self.maximise is not None and self.minimise is not None:
            raise ValueError("give one of maximise or minimise")
        if self.maximise is not None and _higher_is_better(self.maximise) is not True:
            raise ValueError(f"maximise: {self.maximise!r} is not a KPI that is better higher")
        kind = None if self.minimise is None else _higher_is_better(self.minimise)
        if self.minimise not in (None, VANS) and kind is not False:
            raise ValueError(
                f"minimise: {self.minimise!r} is neither 'vans' nor a KPI that is better lower"
            )
        if self.minimise == VANS and not self.require:
            raise ValueError("minimise vans needs a requirement, e.g. on_time_arrival_rate>=0.93")
        return self

    @property
    def objective(self) -> str:
        """The KPI optimised, or 'vans'."""
        if self.minimise is not None:
            return self.minimise
        return self.maximise or "on_time_arrival_rate"

    @property
    def higher_is_better(self) -> bool:
        return self.minimise is None

    @property
    def move_kinds(self) -> tuple[MoveKind, ...]:
        if self.moves is not None:
            return self.moves
        if self.objective == VANS:
            return ("remove", "vans", "close")
        return ("vans", "open", "move")


_OBJECTIVE = ("maximise", "minimise", "require")


def _message(exc: ValidationError) -> str:
    msg = str(exc.errors()[0]["msg"])
    return msg.removeprefix("Value error, ")


def load_spec(
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    option_names: Mapping[str, str] | None = None,
) -> DesignSpec:
    """A design spec from YAML (``path`` may be None: defaults), with ``overrides`` on top.

    A mistake in the file is a :class:`UserInputError` naming the file, line and field;
    a mistake in an override names its command-line option (``option_names`` maps a
    field to its option; by default ``--field-name``). A relative ``candidates_csv`` in
    the file is taken from the file's folder.
    """
    data: dict[str, Any] = {}
    source = Path(path) if path is not None else None
    if source is not None:
        try:
            tree = YAML(typ="safe").load(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserInputError("design spec not found", file=source) from None
        except (OSError, YAMLError, UnicodeDecodeError) as exc:
            raise UserInputError(f"cannot read design spec: {exc}", file=source) from None
        if tree is not None and not isinstance(tree, dict):
            raise UserInputError("a design spec must be a mapping of fields", file=source, line=1)
        data = dict(tree or {})
        if data.get("candidates_csv") is not None:
            data["candidates_csv"] = source.parent / str(data["candidates_csv"])
        if isinstance(data.get("require"), dict):
            # require: {on_time_arrival_rate: {at_least: 0.93}} is the natural YAML.
            data["require"] = [{"kpi": k, **(v or {})} for k, v in data["require"].items()]
        try:
            DesignSpec.model_validate(data)
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            dotted = ".".join(str(part) for part in loc if not isinstance(part, int))
            if not dotted:  # an error of the whole spec: the objective and its requirements
                dotted = next((k for k in _OBJECTIVE if data.get(k) is not None), "")
            line = field_line(source, dotted) if dotted else None
            raise UserInputError(
                _message(exc), file=source, line=line, field=dotted or None
            ) from None
    given = dict(overrides or {})
    data.update(given)
    try:
        spec = DesignSpec.model_validate(data)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        # A field's own error names it; an error of the whole spec (the objective and its
        # requirements) names the first of those given as options.
        named = [k for k in _OBJECTIVE if given.get(k) is not None]
        name: str | None = str(loc[0]) if loc else (named[0] if named else None)
        if name is None or name not in given:
            line = field_line(source, name) if source is not None and name else None
            raise UserInputError(_message(exc), file=source, line=line, field=name) from None
        option = (option_names or {}).get(name, f"--{name.replace('_', '-')}")
        raise UserInputError(_message(exc), field=option) from None
    if spec.candidates_csv is not None and not spec.candidates_csv.is_file():
        raise UserInputError("candidate sites file not found", file=spec.candidates_csv)
    return spec


__all__ = ["VANS", "DesignSpec", "MoveKind", "Requirement", "load_spec", "parse_requirement"]
