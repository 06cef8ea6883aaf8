"""The ``rescue-sim`` command line.

One module per command family, each registering its commands on the one typer
:data:`~sim.cli.app.app`: ``runs`` (validate, run, compare, sweep), ``design``
(optimise), ``fitting`` (sensitivity, calibrate), ``files`` (fit-demand, travel-matrix,
plot, report). What they share is written once: ``options`` (the shared options),
``setup`` (scenario and options, engine, work check, failures), ``output`` (the output
folder and its result store), ``progress`` and ``tables``; ``guard`` turns every ending
into one line and an exit code.

User mistakes (a bad scenario, an unknown policy, a missing file, an output place that
cannot be written, work past this machine's limits) end with one line on stderr naming
file, line and field, and exit code 2; never a traceback. Everything is checked before
the first simulation: the scenario, the options, the output folder (claimed and locked)
and the work estimate. Heavy modules are imported inside the commands that use them, so
that ``rescue-sim --help`` stays quick.
"""

# ruff: noqa: I001
from __future__ import annotations

# Imported in this order (not sorted), the commands are listed in it by --help.
from sim.cli import runs
from sim.cli import fitting
from sim.cli import design
from sim.cli import files
from sim.cli.app import app, main

__all__ = ["app", "design", "files", "fitting", "main", "runs"]
