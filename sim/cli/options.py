"""The options several commands share, written once: as annotated types, and the
experiment options of run, compare and sweep as one value (:class:`ExperimentOptions`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

ScenarioArgument = Annotated[Path, typer.Argument(help="Scenario YAML file.")]
DaysOption = Annotated[float | None, typer.Option(help="Override the horizon in days.")]
ReplicationsOption = Annotated[int | None, typer.Option(help="Override the replications.")]
SeedOption = Annotated[int | None, typer.Option(help="Override the seed.")]
PolicyOption = Annotated[str | None, typer.Option(help="Dispatch policy name or module:Class.")]
WorkersOption = Annotated[
    int, typer.Option(help="Worker processes for the runs (local, or of a Dask LocalCluster).")
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine", help="Where the runs go: local (processes here) or dask (a LocalCluster)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler", help="Run on the Dask cluster at tcp://HOST:PORT (docs/cluster.md)."
    ),
]
PrecisionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--precision",
        help="KPI=HALFWIDTH: add replications until each point's 95% half-width of the KPI "
        "is at most HALFWIDTH; repeat for several KPIs.",
    ),
]
MaxReplicationsOption = Annotated[
    int, typer.Option("--max-replications", help="With --precision: the most per point.")
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an output folder that already holds files.")
]
OverwriteFileOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an output file that already exists.")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run even if the work estimate exceeds this machine.")
]
TraceOption = Annotated[
    Path | None,
    typer.Option(
        "--trace", help="Replay this call trace CSV: time, lat, lon[, fault, segment...]."
    ),
]
BaselineOption = Annotated[
    Path | None,
    typer.Option("--baseline", help="Another run folder: also map how this run's network differs."),
]
ParamOption = Annotated[
    list[str], typer.Option("--param", help="PATH=LOW..HIGH a field as in the YAML; repeat.")
]


def out_option(help: str) -> Any:
    """The ``--out`` option (a file or a folder), with what the command writes there."""
    return typer.Option("--out", help=help)


@dataclass(frozen=True)
class ExperimentOptions:
    """The options every command that runs experiments takes, in one value.

    :func:`experiment_options` adds them to a command's signature (so typer shows and
    parses them as ordinary options) and hands them to the command as ``options``.
    """

    days: float | None = None
    replications: int | None = None
    seed: int | None = None
    trace: Path | None = None
    workers: int = 1
    overwrite: bool = False
    force: bool = False
    engine: str = "local"
    scheduler: str | None = None
    precision: list[str] | None = None
    max_replications: int = 100
    out_dir: Path | None = None


# Each shared option's type, as a command would declare it.
_SHARED: dict[str, Any] = {
    "days": DaysOption,
    "replications": ReplicationsOption,
    "seed": SeedOption,
    "trace": TraceOption,
    "workers": WorkersOption,
    "overwrite": OverwriteOption,
    "force": ForceOption,
    "engine": EngineOption,
    "scheduler": SchedulerOption,
    "precision": PrecisionOption,
    "max_replications": MaxReplicationsOption,
}
_DEFAULTS = ExperimentOptions()

R = TypeVar("R")


def shared_options(
    *names: str, out: str | None = None
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Give a command the shared options ``names`` (all of them when none is named); it
    receives them as one :class:`ExperimentOptions` named ``options`` (the options it does
    not take keep their defaults there). ``out``: the help of its ``--out`` folder
    (``options.out_dir``), saying what the command writes there.

    The command declares ``options: ExperimentOptions`` and its own parameters; the
    wrapper's signature (what typer reads) is those parameters followed by the shared
    options, so that each is declared once for every command that takes it.
    """
    unknown = set(names) - set(_SHARED)
    if unknown:
        raise ValueError(f"not a shared option: {sorted(unknown)}")
    taken = [name for name in _SHARED if name in names or not names]

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        own = inspect.signature(command, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != "options"]
        shared = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_SHARED[name],
                default=getattr(_DEFAULTS, name),
            )
            for name in taken
        ]
        if out is not None:
            annotation = Annotated[Path | None, out_option(out)]
            shared.append(
                inspect.Parameter(
                    "out_dir", inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None
                )
            )
        optional = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept if p.default is not p.empty
        ]
        required = [p for p in kept if p.default is p.empty]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> R:
            given = [*taken, "out_dir"] if out is not None else taken
            values = {name: kwargs.pop(name) for name in given if name in kwargs}
            return command(*args, options=replace(_DEFAULTS, **values), **kwargs)

        signature = own.replace(parameters=[*required, *optional, *shared])
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = {
            **{p.name: p.annotation for p in signature.parameters.values()},
            "return": own.return_annotation,
        }
        return wrapper

    return decorate
