"""The independent pieces of a folder of figures or of a report, made side by side.

Once a run folder is read, each of its figures (and the report's replay) is a pure
function of it. Drawing and encoding a figure (matplotlib's text layout, the PNG
encoder) is CPU-bound Python, one figure at a time in one process, so :func:`run_jobs`
runs the pieces in processes forked after the folder is read: they start at once with
the modules and the tables of this process, and only the results (PNG bytes, HTML text)
come back. The results are returned in the order of the jobs, whatever order they end
in, and a job gives the same result in a worker as here (tests/test_report.py checks the
bytes), so the output does not depend on the number of cores.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from typing import Any

# The jobs of the pool under way: a forked worker finds them here (inherited, not
# pickled: they are closures over the run's tables).
_JOBS: dict[str, Callable[[], Any]] = {}


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the platform says)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _others_running() -> int | None:
    """How many other processes are runnable at this instant (the kernel's count in
    ``/proc/loadavg`` less this one); None where it cannot be read."""
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            running = int(handle.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)


def idle_cores() -> int:
    """The usable cores that no other process is running on right now (at least 1).

    On a machine that other work keeps busy, a second process drawing beside this one
    finds no core of its own and only adds the cost of starting it. Where the count of
    runnable processes cannot be read, every usable core.
    """
    cores = usable_cores()
    others = _others_running()
    if others is None:
        return cores
    return max(1, min(cores, cores - others))


def _can_fork() -> bool:
    """Forking is safe only while this process runs a single thread (the command line
    does; a notebook's kernel does not): a lock held by another thread at the fork would
    stay locked in the worker. Elsewhere than on Linux the jobs run here."""
    return (
        sys.platform == "linux"
        and "fork" in get_all_start_methods()
        and threading.active_count() == 1
    )


def _start_worker() -> None:
    # ^C is the parent's to handle: it stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The inherited tables stay shared page by page: the collector must not touch them.
    gc.freeze()


def _run_job(name: str) -> Any:
    return _JOBS[name]()


def run_jobs(jobs: Mapping[str, Callable[[], Any]], workers: int | None = None) -> dict[str, Any]:
    """Each job's result by name, in the order of ``jobs``.

    ``workers``: processes to use (default: one per idle core, :func:`idle_cores`; at
    most one per job); 1, or a platform or process that cannot fork safely, runs the
    jobs here one after another. The results are the same either way. Give the longest
    jobs first: a worker takes the next job as it ends one.
    """
    count = min(len(jobs), workers if workers is not None else idle_cores())
    if count <= 1 or not _can_fork():
        return {name: job() for name, job in jobs.items()}
    global _JOBS
    _JOBS = dict(jobs)
    pool = ProcessPoolExecutor(count, mp_context=get_context("fork"), initializer=_start_worker)
    try:
        futures = {name: pool.submit(_run_job, name) for name in jobs}
        results = {name: future.result() for name, future in futures.items()}
    except BaseException:
        # A job failed or ^C: drop the jobs not started rather than wait for them.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        _JOBS = {}
    pool.shutdown(wait=True)
    return results


__all__ = ["idle_cores", "run_jobs", "usable_cores"]
