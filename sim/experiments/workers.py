"""Worker processes for replications: started cleanly, stopped whatever interrupts the run.

:func:`map_in_workers` runs a function over tasks in a pool of spawned processes and
yields the results in task order. The parent alone decides when work stops:

* workers ignore SIGINT and SIGTERM from birth, so a Ctrl-C (which the terminal sends
  to the whole process group) or a SIGTERM to the group reaches the parent only, and no
  worker prints a traceback of its own;
* on any exception in the parent (KeyboardInterrupt, :class:`~sim.errors.Terminated`,
  an error in one replication, a consumer that stops early) every worker is killed and
  joined before the exception goes on: no orphaned process, no leaked semaphore;
* on Linux a worker dies with its parent even when the parent is killed outright;
* the caller's script is not imported again in the workers (they only need sim's own
  modules), so ``run(..., workers=2)`` works from a plain script without an
  ``if __name__ == "__main__":`` guard. A policy class defined in that script needs
  the script in the workers: then it is imported, and a missing guard is named.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, TypeVar

from sim.errors import UserInputError

T = TypeVar("T")
R = TypeVar("R")

_HELD = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


def _init_worker() -> None:
    """In each worker: leave interruption to the parent, and die with it."""
    for number in _HELD:
        signal.signal(number, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


@contextlib.contextmanager
def _children_deaf() -> Iterator[None]:
    """While processes start: they inherit SIGINT and SIGTERM ignored.

    An ignored signal stays ignored across exec, and Python then installs no
    KeyboardInterrupt handler of its own: a worker is deaf to both from its first
    instruction, before :func:`_init_worker` runs. The signals are blocked meanwhile, so
    one sent to the parent in this window is delivered (to its own handler) afterwards.
    """
    can_block = hasattr(signal, "pthread_sigmask")
    if can_block:
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in _HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if can_block:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


@contextlib.contextmanager
def _main_hidden(hide: bool) -> Iterator[None]:
    """While processes start: a spawned worker does not import the caller's ``__main__``.

    multiprocessing's spawn re-runs the main script in every worker (as ``__mp_main__``)
    when ``sys.modules["__main__"]`` has a file; an unguarded script would then start
    its run again in each worker. A stand-in module without a file prevents that.
    """
    main = sys.modules.get("__main__")
    if not hide or main is None:
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _stop(pool: ProcessPoolExecutor) -> None:
    """Kill every worker now and wait for them (nothing they hold needs a clean exit)."""
    processes = dict(getattr(pool, "_processes", None) or {})  # no public way before 3.14
    for process in processes.values():
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    for process in processes.values():
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join()
    pool.shutdown(wait=True, cancel_futures=True)


def _main_script() -> str | None:
    main = sys.modules.get("__main__")
    return getattr(main, "__file__", None)


def map_in_workers(
    function: Callable[[T], R],
    tasks: Iterable[T],
    workers: int,
    *,
    needs_main: bool = False,
) -> Iterator[R]:
    """``function(task)`` for every task in ``workers`` spawned processes, in task order.

    ``needs_main``: the tasks refer to something defined in the caller's ``__main__``
    module (a policy class in a script), which the workers must then import.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker
    )
    try:
        # ProcessPoolExecutor starts its processes as tasks are submitted: all of them here.
        with _children_deaf(), _main_hidden(not needs_main):
            futures: list[Future[R]] = [pool.submit(function, task) for task in tasks]
        for future in futures:
            yield _result(future, needs_main)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _result(future: Future[Any], needs_main: bool) -> Any:
    try:
        return future.result()
    except BrokenProcessPool:
        script = _main_script()
        if needs_main and script is not None:
            raise UserInputError(
                f"worker processes could not start: {script} runs again in each of them "
                "(it defines the policy class they need) and starts the run again; put "
                "the run under 'if __name__ == \"__main__\":' or move the policy class into "
                "a module",
                field="workers",
            ) from None
        raise RuntimeError(
            "a worker process died (killed, or out of memory?); run with fewer workers "
            "or a smaller scenario"
        ) from None
