"""The options several commands share, written once as annotated types."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
ParamOption = Annotated[
    list[str], typer.Option("--param", help="PATH=LOW..HIGH a field as in the YAML; repeat.")
]
