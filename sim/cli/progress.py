"""Progress of long work on stderr: a bar on a terminal, plain timed lines elsewhere.

Both redraw from the caller's thread (no refresh thread), so that worker processes can be
forked safely while a bar is shown. ``rich.progress`` is imported only when a bar is drawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sim.cli.app import err

if TYPE_CHECKING:
    from sim.experiments.runs.progress import ProgressState, ReportFn

# Seconds between two progress lines when stderr is not a terminal.
PROGRESS_INTERVAL_S = 5.0


@contextmanager
def monitor(label: str) -> Iterator[ReportFn]:
    """Progress of an experiment on stderr: finished, failed, remaining and ETA.

    On a terminal, a bar redrawn in place; otherwise one plain line every
    ``PROGRESS_INTERVAL_S`` seconds and a last one at the end.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.experiments.runs.progress import LineReporter, format_duration

    if not err.is_terminal:
        lines = LineReporter(sys.stderr, label, interval_s=PROGRESS_INTERVAL_S)
        # No last line when the command stops inside: it ends with its own one line.
        yield lines
        lines.close()
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task(label, total=1.0, counts="", eta="?")
        drawn = [0.0]

        def report(state: ProgressState) -> None:
            counts = f"{state.finished} finished, {state.failed} failed, {state.remaining} left"
            eta = format_duration(state.eta_s)
            bar.update(task, completed=state.fraction, counts=counts, eta=eta)
            now = time.monotonic()
            if now - drawn[0] >= 0.1:
                bar.refresh()
                drawn[0] = now

        yield report


@contextmanager
def fraction_done(label: str) -> Iterator[Callable[[float], None]]:
    """Progress of a command that knows only the fraction of its work done (0..1).

    For the commands whose runs come in rounds an optimiser picks (sensitivity,
    calibrate): a bar on a terminal; otherwise one line every ``PROGRESS_INTERVAL_S``
    seconds with the share done, the time elapsed and the time still to go at the pace
    so far.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.experiments.runs.progress import format_duration

    start = time.monotonic()
    if not err.is_terminal:
        last = [start]

        def line(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL_S and fraction < 1.0:
                return
            last[0] = now
            elapsed = now - start
            eta = elapsed * (1.0 - fraction) / fraction if fraction > 0 else None
            print(
                f"{label}: {fraction:.0%} done, elapsed {format_duration(elapsed)}, "
                f"ETA {format_duration(eta)}",
                file=sys.stderr,
                flush=True,
            )

        yield line
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task(label, total=1.0)

        def redraw(fraction: float) -> None:
            bar.update(task, completed=fraction)
            bar.refresh()

        yield redraw
