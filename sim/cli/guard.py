"""How a command of the ``rescue-sim`` line ends when something goes wrong: one line, a code.

:func:`guarded` wraps each command:

* a :class:`~sim.errors.UserInputError` (bad scenario, bad option, an output place that
  cannot be written, work past a limit, a policy that raised, a corrupt file): one
  ``error:`` line on stderr, exit code 2;
* Ctrl-C (SIGINT): one ``interrupted:`` line, exit code 130; SIGTERM: one
  ``terminated:`` line, exit code 143 (128 + the signal, as shells report them). Worker
  processes are stopped and temporary folders removed on the way out;
* anything else is a bug: one ``error: internal error`` line, exit code 1.

With ``--debug`` (or ``RESCUE_SIM_DEBUG=1``) the full traceback, a worker's included,
is printed before the line.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from sim.errors import PolicyFailure, Terminated, UserInputError

P = ParamSpec("P")
R = TypeVar("R")

DEBUG_ENV = "RESCUE_SIM_DEBUG"
EXIT_USER = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

err = Console(stderr=True)


class _State:
    debug = False
    # What an interruption leaves behind, said in its one line; commands update it.
    left = "nothing was written"


def set_debug(on: bool) -> None:
    _State.debug = on


def debug_enabled() -> bool:
    return _State.debug or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes"}


def leaves(description: str) -> None:
    """Say what an interruption from now on leaves behind (``runs/x is as it was``)."""
    _State.left = description


def say_error(message: str) -> None:
    """One ``error:`` line on stderr, printed as is (no markup, no wrapping)."""
    err.print(f"error: {message}", highlight=False, soft_wrap=True, markup=False)


def _traceback(exc: BaseException) -> None:
    if debug_enabled():
        err.print(
            "".join(traceback.format_exception(exc)).rstrip(),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread, as SIGINT raises KeyboardInterrupt.

    Without it a SIGTERM ends the process on the spot: no ``finally`` runs, worker
    processes are orphaned and multiprocessing warns of leaked semaphores.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(word: str, code: int, exc: BaseException) -> typer.Exit:
    # A second signal while cleaning up must not print a second traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _traceback(exc)
    err.print(f"{word}: {_State.left}", highlight=False, soft_wrap=True, markup=False)
    return typer.Exit(code=code)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that it ends with one line and the right exit code (module doc)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _State.left = "nothing was written"
        previous_int = signal.getsignal(signal.SIGINT)
        try:
            with sigterm_raises():
                try:
                    return command(*args, **kwargs)
                except (typer.Exit, typer.Abort):
                    raise
                except UserInputError as exc:
                    _traceback(exc)
                    # A planner's policy failed in its own code: its traceback is the help.
                    own_code = isinstance(exc, PolicyFailure) and not debug_enabled()
                    say_error(str(exc) + (" (--debug shows the traceback)" if own_code else ""))
                    raise typer.Exit(code=EXIT_USER) from None
                except KeyboardInterrupt as exc:
                    raise _interrupted("interrupted", EXIT_INTERRUPTED, exc) from None
                except Terminated as exc:
                    raise _interrupted("terminated", EXIT_TERMINATED, exc) from None
                except Exception as exc:
                    _traceback(exc)
                    hint = "" if debug_enabled() else " (--debug shows the traceback)"
                    detail = " ".join(str(exc).split()) or "no message"
                    say_error(f"internal error: {type(exc).__name__}: {detail}{hint}")
                    raise typer.Exit(code=1) from None
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, previous_int)

    return wrapper
